"""The warehouse: real and generated market data, generated users and trades."""
