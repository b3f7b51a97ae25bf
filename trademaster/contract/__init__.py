"""What the exporters publish and the gateway reads, in one dependency-free place.

Standard library only: the gateway image imports this without training, MLflow or torch.
``models`` names the served models, ``parameters`` the task kinds and Triton config
parameters a model declares, ``deployment_status`` which models are deployed and why not.
"""
