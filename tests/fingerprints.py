"""For tests that train twice on the same inputs on purpose (determinism, champion
comparisons): the pipeline would reuse the first version."""

from __future__ import annotations

from trademaster import registry
from trademaster.settings import PipelineSettings
from trademaster.training.fingerprint import FINGERPRINT_TAG


def forget_fingerprint(settings: PipelineSettings, model_name: str, version: int) -> None:
    """Removes ``version``'s training fingerprint, as if it had been registered before
    fingerprints existed: the next training on the same inputs trains again."""
    import mlflow

    registry.configure_mlflow(settings)
    mlflow.MlflowClient().delete_model_version_tag(model_name, str(version), FINGERPRINT_TAG)
