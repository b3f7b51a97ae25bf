"""Production monitoring of data and models: reference profiles, drift, realized accuracy,
freshness and the batch-side metrics the pipeline pushes to Prometheus's Pushgateway."""
