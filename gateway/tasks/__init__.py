"""How each kind of model (Triton config parameter ``task``) is called and answered."""
