"""TradeMaster inference gateway: features from Feast, predictions from Triton, cache in Redis."""

# Importing feast sets PROMETHEUS_MULTIPROC_DIR in os.environ (feast/metrics.py), which would
# switch prometheus_client into multiprocess value storage if it were imported afterwards.
# Import our metrics (and so prometheus_client) first, whatever module is imported first.
from gateway import metrics as _metrics  # noqa: F401
