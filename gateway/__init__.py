"""TradeMaster inference gateway: features from Feast, predictions from Triton, cache in Redis."""
