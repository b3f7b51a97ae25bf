"""portfolio-optimizer in the MLflow registry: an MLflow pyfunc whose artifact is the solver.

``log_pyfunc_model`` is generic (run + pyfunc + registered version aliased ``challenger`` +
version tags, like ``registry.log_torch_model``); the rest knows this model's layout.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from trademaster import registry
from trademaster.portfolio.solver_source import (
    SHA256_TAG,
    SOLVER_FILENAME,
    SOLVER_SOURCE,
    file_sha256,
)
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

# Logged as the model's code; not imported here (it calls mlflow.models.set_model on import).
PYFUNC_CODE = Path(__file__).resolve().with_name("pyfunc_model.py")
SOLVER_ARTIFACT = "solver"  # the key pyfunc_model.py reads the solver file from
# Pinned so MLflow does not infer requirements by importing the model (slow); mlflow itself
# (and its pydantic) is added by MLflow.
NUMPY_REQUIREMENT = f"numpy=={np.__version__}"


class SolverIntegrityError(RuntimeError):
    """A registered version's solver file does not match the hash recorded at registration."""


def log_pyfunc_model(
    settings: PipelineSettings,
    model_name: str,
    python_model: Path,
    artifacts: Mapping[str, Path],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    pip_requirements: Sequence[str],
) -> registry.RegisteredVersion:
    """Logs a run with a pyfunc model (``python_model``: its code file) and registers it as a
    new version aliased ``challenger``, with ``tags`` on both the run and the version."""
    import mlflow

    registry.configure_mlflow(settings)
    with mlflow.start_run(run_name=f"train-{model_name}") as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(dict(metrics))
        mlflow.set_tags({"model_name": model_name, **tags})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(python_model),
            artifacts={key: str(path) for key, path in artifacts.items()},
            pip_requirements=list(pip_requirements),
            registered_model_name=model_name,
        )
    version = int(info.registered_model_version)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(model_name, registry.CHALLENGER, str(version))
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)
    log.info(
        "registered %s version %d (run %s) as %s",
        model_name,
        version,
        run.info.run_id,
        registry.CHALLENGER,
    )
    return registry.RegisteredVersion(model_name, version, run.info.run_id)


def log_solver_version(
    settings: PipelineSettings,
    model_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
) -> registry.RegisteredVersion:
    """Registers the working tree's solver (``optimizer.py``, stored as ``SOLVER_FILENAME``)."""
    with tempfile.TemporaryDirectory() as tmp:
        solver = Path(tmp) / SOLVER_FILENAME
        shutil.copy2(SOLVER_SOURCE, solver)
        return log_pyfunc_model(
            settings,
            model_name,
            PYFUNC_CODE,
            {SOLVER_ARTIFACT: solver},
            params,
            metrics,
            {**tags, SHA256_TAG: file_sha256(solver)},
            [NUMPY_REQUIREMENT],
        )


def download_solver(
    settings: PipelineSettings, version: registry.RegisteredVersion, destination: Path
) -> tuple[Path, ModuleType]:
    """A registered version's solver file (hash checked) and the module its pyfunc loads."""
    import mlflow
    from mlflow.models import Model

    registry.configure_mlflow(settings)
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=version.uri, dst_path=str(destination))
    )
    artifacts = Model.load(str(local)).flavors["python_function"]["artifacts"]
    solver_file = local / artifacts[SOLVER_ARTIFACT]["path"]
    expected = registry.version_tags(settings, version).get(SHA256_TAG)
    actual = file_sha256(solver_file)
    if actual != expected:
        raise SolverIntegrityError(
            f"{version.name} v{version.version}: solver sha256 {actual} does not match the "
            f"registered {expected}"
        )
    model = mlflow.pyfunc.load_model(str(local))
    solver: ModuleType = model.unwrap_python_model().solver
    return solver_file, solver


def load_solver(settings: PipelineSettings, version: registry.RegisteredVersion) -> ModuleType:
    """The solver module of a registered version, as its pyfunc loads it."""
    import mlflow

    registry.configure_mlflow(settings)
    solver: ModuleType = mlflow.pyfunc.load_model(version.uri).unwrap_python_model().solver
    return solver
