"""Start and drive the serving stack's processes (tritonserver, redis-server, perf_analyzer)."""
