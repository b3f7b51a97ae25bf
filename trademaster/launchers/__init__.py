"""Launchers of the stack's processes (tritonserver, redis-server, PostgreSQL, perf_analyzer)."""
