"""MLflow tracking and model registry: runs, versions and the champion/challenger aliases."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
TORCH_REQUIREMENT = f"torch=={torch.__version__.split('+')[0]}"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def configure_mlflow(settings: PipelineSettings) -> None:
    """Points MLflow at the settings' store and makes sure the experiment exists.

    Against a tracking server (``http(s)://``) the server stores the artifacts (the
    experiment gets its default ``mlflow-artifacts:/`` location); against a local SQLite store
    they go to ``mlflow_artifact_root``."""
    import mlflow

    uri = settings.resolved_mlflow_tracking_uri
    served = uri.startswith(("http://", "https://"))
    if uri.startswith("sqlite:///"):
        (settings.resolved_data_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(settings.mlflow_experiment) is None:
        if served:
            mlflow.create_experiment(settings.mlflow_experiment)
        else:
            settings.mlflow_artifact_root.mkdir(parents=True, exist_ok=True)
            mlflow.create_experiment(
                settings.mlflow_experiment,
                artifact_location=settings.mlflow_artifact_root.as_uri(),
            )
    mlflow.set_experiment(settings.mlflow_experiment)


def log_torch_model(
    settings: PipelineSettings,
    model_name: str,
    model: torch.nn.Module,
    example: np.ndarray,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Mapping[str, Mapping[str, Any]] | None = None,
) -> RegisteredVersion:
    """Logs a run with the model and registers it as a new version aliased ``challenger``.

    ``artifacts``: JSON documents kept in the run beside the model, by file name (the
    reference profile of the training features, ``trademaster.monitoring.profile``)."""
    import mlflow
    from mlflow.models import infer_signature

    configure_mlflow(settings)
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    with mlflow.start_run(run_name=f"train-{model_name}") as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags({"model_name": model_name, **tags})
        for file_name, document in (artifacts or {}).items():
            mlflow.log_dict(dict(document), file_name)
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example[:3],
            pip_requirements=[TORCH_REQUIREMENT],
            registered_model_name=model_name,
            # Pickle keeps the nn.Module (pt2 would load back as an ExportedProgram).
            serialization_format="pickle",
        )
    version = int(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(model_name, CHALLENGER, str(version))
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)
    log.info(
        "registered %s version %d (run %s) as %s", model_name, version, run.info.run_id, CHALLENGER
    )
    return RegisteredVersion(model_name, version, run.info.run_id)


def version_for_alias(
    settings: PipelineSettings, model_name: str, alias: str
) -> RegisteredVersion | None:
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow(settings)
    try:
        found = mlflow.MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None
    return RegisteredVersion(model_name, int(found.version), str(found.run_id))


def registered_version(
    settings: PipelineSettings, model_name: str, version: int
) -> RegisteredVersion | None:
    """``model_name`` version ``version``, None if the registry has no such version."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow(settings)
    try:
        found = mlflow.MlflowClient().get_model_version(model_name, str(version))
    except MlflowException:
        return None
    return RegisteredVersion(model_name, int(found.version), str(found.run_id))


def version_with_tag(
    settings: PipelineSettings, model_name: str, key: str, value: str
) -> RegisteredVersion | None:
    """The newest version of ``model_name`` tagged ``key=value``; None if there is none."""
    import mlflow

    configure_mlflow(settings)
    found = mlflow.MlflowClient().search_model_versions(
        f"name = '{model_name}' and tags.{key} = '{value}'"
    )
    if not found:
        return None
    newest = max(found, key=lambda version: int(version.version))
    return RegisteredVersion(model_name, int(newest.version), str(newest.run_id))


def set_champion(settings: PipelineSettings, model_name: str, version: int | None) -> None:
    """Points ``champion`` at ``version``, or removes the alias for None (no champion)."""
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    if version is None:
        client.delete_registered_model_alias(model_name, CHAMPION)
    else:
        client.set_registered_model_alias(model_name, CHAMPION, str(version))
    log.info("%s: %s is now %s", model_name, CHAMPION, f"v{version}" if version else "unset")


def run_metrics(settings: PipelineSettings, run_id: str) -> dict[str, float]:
    import mlflow

    configure_mlflow(settings)
    return dict(mlflow.MlflowClient().get_run(run_id).data.metrics)


def promote(settings: PipelineSettings, version: RegisteredVersion, reason: str) -> None:
    """Moves the ``champion`` alias to ``version`` and records why."""
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(version.name, CHAMPION, str(version.version))
    client.set_model_version_tag(version.name, str(version.version), "validation", "passed")
    client.set_model_version_tag(version.name, str(version.version), "validation_reason", reason)
    # The reason (every gate's line) is printed by the validation step and kept as a tag.
    log.info("promoted %s version %d to %s", version.name, version.version, CHAMPION)


def reject(settings: PipelineSettings, version: RegisteredVersion, reason: str) -> None:
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(version.name, str(version.version), "validation", "rejected")
    client.set_model_version_tag(version.name, str(version.version), "validation_reason", reason)
    log.warning(
        "rejected %s version %d (reason in its validation_reason tag)",
        version.name,
        version.version,
    )


def load_torch_model(settings: PipelineSettings, version: RegisteredVersion) -> torch.nn.Module:
    import mlflow

    configure_mlflow(settings)
    model: torch.nn.Module = mlflow.pytorch.load_model(version.uri)
    return model.eval()


def log_version_metrics(
    settings: PipelineSettings, version: RegisteredVersion, metrics: Mapping[str, float]
) -> None:
    """Adds metrics measured after training (e.g. export parity) to the version's run."""
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    for key, value in metrics.items():
        client.log_metric(version.run_id, key, value)


def version_tags(settings: PipelineSettings, version: RegisteredVersion) -> dict[str, str]:
    import mlflow

    configure_mlflow(settings)
    found = mlflow.MlflowClient().get_model_version(version.name, str(version.version))
    return dict(found.tags)


def set_alias(settings: PipelineSettings, model_name: str, alias: str, version: int) -> None:
    import mlflow

    configure_mlflow(settings)
    mlflow.MlflowClient().set_registered_model_alias(model_name, alias, str(version))
    log.info("%s: alias %s -> v%d", model_name, alias, version)


def remove_alias(settings: PipelineSettings, model_name: str, alias: str) -> None:
    """Removes ``alias`` if it is set (a no-op otherwise)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    try:
        client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return
    client.delete_registered_model_alias(model_name, alias)


def tag_version(
    settings: PipelineSettings, model_name: str, version: int, tags: Mapping[str, str]
) -> None:
    import mlflow

    configure_mlflow(settings)
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)


def json_artifact(
    settings: PipelineSettings, version: RegisteredVersion, file_name: str
) -> dict[str, Any] | None:
    """A JSON document ``log_torch_model`` kept in the version's run; None when the run has
    none (versions registered before the document existed)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure_mlflow(settings)
    try:
        names = {item.path for item in mlflow.MlflowClient().list_artifacts(version.run_id)}
        if file_name not in names:
            return None
        loaded: dict[str, Any] = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{file_name}")
    except MlflowException as exc:
        log.warning("%s v%d: cannot read %s: %s", version.name, version.version, file_name, exc)
        return None
    return loaded


def log_monitoring_run(
    settings: PipelineSettings,
    run_name: str,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    files: Sequence[Path],
) -> str:
    """A run in the monitoring experiment (``<experiment>-monitoring``, beside the training
    one) holding a check's figures and its report files; returns the run id."""
    import mlflow

    configure_mlflow(settings)
    experiment = f"{settings.mlflow_experiment}-monitoring"
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    elif settings.resolved_mlflow_tracking_uri.startswith(("http://", "https://")):
        experiment_id = mlflow.create_experiment(experiment)
    else:
        experiment_id = mlflow.create_experiment(
            experiment, artifact_location=(settings.mlflow_artifact_root / "monitoring").as_uri()
        )
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags(dict(tags))
        for path in files:
            mlflow.log_artifact(str(path))
    return str(run.info.run_id)
