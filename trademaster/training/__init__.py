"""Model training: datasets from Feast, labels from the warehouse, models, baselines."""
