"""Turn trained models into Triton model-repository entries (artifacts plus CPU and GPU configs)."""
