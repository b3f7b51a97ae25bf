"""What the exporters publish and the gateway reads, in one dependency-free place.

Standard library only (``prediction_log`` adds SQLAlchemy and orjson, which the gateway image
has): the gateway image imports this without training, MLflow or torch. ``models`` names the
served models, ``parameters`` the task kinds and Triton config parameters a model declares,
``deployment_status`` which models are deployed and why not, ``prediction_log`` the table of
served predictions the gateway writes and the pipeline reads.
"""
