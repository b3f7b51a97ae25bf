"""Registration in a real MLflow store (sqlite and local artifacts in a temporary folder)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from trademaster import registry
from trademaster.portfolio import registration
from trademaster.portfolio.solver_source import SHA256_TAG, SOLVER_SOURCE, file_sha256
from trademaster.settings import PipelineSettings

MODEL = "portfolio-test"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    return PipelineSettings(environment="test", data_dir=tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="module")
def version(settings: PipelineSettings) -> registry.RegisteredVersion:
    return registration.log_solver_version(
        settings, MODEL, params={"cases": 0}, metrics={"m": 1.0}, tags={"task": "t"}
    )


def test_the_pyfunc_code_reads_the_same_artifact_key() -> None:
    source = registration.PYFUNC_CODE.read_text()

    assert f'SOLVER_ARTIFACT = "{registration.SOLVER_ARTIFACT}"' in source


def test_a_registered_version_is_the_challenger_with_the_solver_hash(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> None:
    tags = registry.version_tags(settings, version)

    assert registry.version_for_alias(settings, MODEL, registry.CHALLENGER) == version
    assert tags[SHA256_TAG] == file_sha256(SOLVER_SOURCE)
    assert tags["task"] == "t"
    assert registry.run_metrics(settings, version.run_id) == {"m": 1.0}


def test_the_registered_pyfunc_solves_portfolios(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> None:
    registry.configure_mlflow(settings)
    model = mlflow.pyfunc.load_model(version.uri)

    (weights,) = model.predict(
        [
            {
                "expected_returns": [0.10, 0.20, 0.15],
                "covariance": [[0.04, 0.0, 0.0], [0.0, 0.09, 0.0], [0.0, 0.0, 0.05]],
                "max_weight": 0.5,
                "risk_aversion": 3.0,
            }
        ]
    )

    assert sum(weights) == pytest.approx(1.0)
    assert max(weights) <= 0.5


def test_download_returns_the_registered_file_and_its_solver(
    settings: PipelineSettings, version: registry.RegisteredVersion, tmp_path: Path
) -> None:
    solver_file, solver = registration.download_solver(settings, version, tmp_path / "dl")

    assert solver_file.read_bytes() == SOLVER_SOURCE.read_bytes()
    solution = solver.solve_portfolio(np.array([0.1, 0.2]), np.eye(2) * 0.04, 1.0, 3.0)
    assert solution.converged


def test_a_tampered_solver_is_refused(
    settings: PipelineSettings, version: registry.RegisteredVersion, tmp_path: Path
) -> None:
    registry.configure_mlflow(settings)
    client = mlflow.MlflowClient()
    client.set_model_version_tag(MODEL, str(version.version), SHA256_TAG, "0" * 64)
    try:
        with pytest.raises(registration.SolverIntegrityError, match="does not match"):
            registration.download_solver(settings, version, tmp_path / "dl")
    finally:
        client.set_model_version_tag(
            MODEL, str(version.version), SHA256_TAG, file_sha256(SOLVER_SOURCE)
        )
