"""TradeMaster ML platform: warehouse, features, training and the stack's command line."""
