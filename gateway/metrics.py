"""Every Prometheus metric of the gateway, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

PREDICTION_REQUESTS = Counter(
    "ml_prediction_requests_total", "Prediction requests received", ["model_name"]
)
PREDICTION_DURATION = Histogram(
    "ml_prediction_duration_seconds",
    "End-to-end prediction latency inside the gateway",
    ["model_name"],
    buckets=LATENCY_BUCKETS,
)
PREDICTION_ERRORS = Counter(
    "ml_prediction_errors_total", "Prediction requests that failed", ["model_name", "error"]
)
CACHE_LOOKUPS = Counter(
    "ml_prediction_cache_lookups_total", "Prediction cache lookups", ["model_name", "result"]
)
CACHE_BYPASSED = Counter(
    "ml_prediction_cache_bypassed_total", "Cache operations skipped because Redis failed", ["op"]
)
MODEL_READY = Gauge(
    "ml_model_ready", "1 when the model has a ready version in Triton", ["model_name"]
)
