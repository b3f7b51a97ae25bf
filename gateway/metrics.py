"""Every Prometheus metric of the gateway, declared once. Labels are bounded: model names
come from Triton's repository (unknown names become "unknown"), versions from Triton."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Set (by ``python -m gateway``) only when uvicorn runs several workers.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip

PREDICTION_REQUESTS = Counter(
    "ml_prediction_requests_total", "Predictions requested (batch rows count one each)",
    ["model_name"],
)  # fmt: skip
PREDICTION_DURATION = Histogram(
    "ml_prediction_duration_seconds",
    "Prediction latency inside the gateway (a batch observes once per model)",
    ["model_name"],
    buckets=LATENCY_BUCKETS,
)
COALESCED_BATCH_ROWS = Histogram(
    "ml_coalesced_batch_rows",
    "Single predictions served together in one batch (gateway/coalesce.py); 1: alone",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)
PREDICTION_ERRORS = Counter(
    "ml_prediction_errors_total", "Predictions that failed", ["model_name", "error"]
)
VERSION_PREDICTIONS = Counter(
    "ml_version_predictions_total",
    "Predictions answered, by served version and route (primary, canary)",
    ["model_name", "model_version", "route"],
)
ROUTE_ANSWERS = Counter(
    "ml_route_answers_total",
    "Answers by served version and route; outcome: ok, error (server side, 5xx) or "
    "rejected (the request's fault, 4xx). The canary analysis compares routes on these",
    ["model_name", "model_version", "route", "outcome"],
)
ROUTE_DURATION = Histogram(
    "ml_route_duration_seconds",
    "Time to answer one version's share of a request (features, cache, Triton)",
    ["model_name", "model_version", "route"],
    buckets=LATENCY_BUCKETS,
)
FEAST_DURATION = Histogram(
    "feast_feature_retrieval_duration_seconds",
    "One Feast online read (all rows of a request or batch)",
    ["model_name", "model_version"],
    buckets=LATENCY_BUCKETS,
)
TRITON_DURATION = Histogram(
    "ml_triton_request_duration_seconds",
    "One Triton inference call",
    ["model_name", "model_version"],
    buckets=LATENCY_BUCKETS,
)
TRITON_REPLICA_UP = Gauge(
    "ml_triton_replica_up",
    "1 when the Triton replica answered its last repository index and is not ejected",
    ["replica"],
    multiprocess_mode="livemin",
)
TRITON_REPLICA_FAILURES = Counter(
    "ml_triton_replica_failures_total",
    "Inference calls that failed on a replica (the call then goes to the next replica, "
    "except after a timeout)",
    ["replica", "model_name", "reason"],
)
CACHE_LOOKUPS = Counter(
    "ml_prediction_cache_lookups_total",
    "Prediction cache lookups",
    ["model_name", "model_version", "result"],
)
CACHE_HIT_RATIO = Gauge(
    "ml_prediction_cache_hit_ratio",
    "Cache hits / lookups since the gateway (worker) started",
    ["model_name", "model_version"],
    multiprocess_mode="liveall",
)
CACHE_BYPASSED = Counter(
    "ml_prediction_cache_bypassed_total", "Cache operations skipped because Redis failed", ["op"]
)
STALE_FEATURES = Counter(
    "ml_stale_features_total",
    "Predictions made with features older than their view's ttl",
    ["model_name", "feature_view"],
)
MODEL_READY = Gauge(
    "ml_model_ready",
    "1 when the model has a ready version in Triton",
    ["model_name"],
    multiprocess_mode="livemin",
)
SHADOW_PREDICTIONS = Counter(
    "ml_shadow_predictions_total", "Shadow answers compared", ["model_name", "shadow_version"]
)
SHADOW_ERRORS = Counter(
    "ml_shadow_errors_total", "Shadow calls that failed", ["model_name", "shadow_version"]
)
SHADOW_DIFFERENCE = Histogram(
    "ml_shadow_difference",
    "|primary - shadow| prediction (0/1 for labels)",
    ["model_name", "shadow_version"],
    buckets=(0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0),
)
PREDICTION_LOG_RECORDS = Counter(
    "ml_prediction_log_records_total", "Prediction records written to the prediction log"
)
PREDICTION_LOG_DROPPED = Counter(
    "ml_prediction_log_dropped_total",
    "Prediction records not logged: queue_full (the writer fell behind), sink_error (the "
    "store failed their batch) or shutdown (still queued when the flush time ran out)",
    ["reason"],
)
for _reason in ("queue_full", "sink_error", "shutdown"):
    PREDICTION_LOG_DROPPED.labels(_reason)  # every series exists from the start, at 0
PREDICTION_LOG_QUEUE_DEPTH = Gauge(
    "ml_prediction_log_queue_depth",
    "Records waiting to be written (summed over workers)",
    multiprocess_mode="livesum",
)
PREDICTION_LOG_WRITE_DURATION = Histogram(
    "ml_prediction_log_write_duration_seconds",
    "One batch written to the prediction log (encoding and transaction)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
