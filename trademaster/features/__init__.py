"""Feature engineering from the warehouse and the Feast feature store around it."""
