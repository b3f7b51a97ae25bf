from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from trademaster.pipeline.airflow_runner import (
    DAGS_FOLDER,
    airflow_environment,
    settings_environment,
)
from trademaster.settings import PipelineSettings


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No TRADEMASTER_* variables and no .env file: settings come only from what a test sets."""
    for name in list(os.environ):
        if name.upper().startswith("TRADEMASTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_settings_round_trip_through_the_environment(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = PipelineSettings(
        data_dir=tmp_path / "data",
        seed=11,
        n_users=321,
        end_date=date(2026, 6, 30),
        model_repository=tmp_path / "models",
        min_auc_lift=0.035,
        environment="test",
    )

    environment = settings_environment(original)
    for name, value in environment.items():
        clean_environment.setenv(name, value)
    rebuilt = PipelineSettings()

    assert all(name.startswith("TRADEMASTER_") for name in environment)
    assert environment["TRADEMASTER_END_DATE"] == "2026-06-30"
    assert rebuilt.data_dir == tmp_path / "data"
    assert rebuilt.seed == 11
    assert rebuilt.n_users == 321
    assert rebuilt.end_date == date(2026, 6, 30)
    assert rebuilt.model_repository == tmp_path / "models"
    assert rebuilt.model_dump() == original.model_dump()


def test_unset_values_stay_unset(clean_environment: pytest.MonkeyPatch) -> None:
    environment = settings_environment(PipelineSettings())

    assert "TRADEMASTER_END_DATE" not in environment
    for name, value in environment.items():
        clean_environment.setenv(name, value)
    assert PipelineSettings().end_date is None


def test_airflow_environment_points_airflow_at_the_data_dir(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = PipelineSettings(data_dir=tmp_path, airflow_retry_delay_s=3, seed=5)

    environment = airflow_environment(settings)

    home = tmp_path.resolve() / "airflow"
    assert environment["AIRFLOW_HOME"] == str(home)
    assert environment["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert (DAGS_FOLDER / "trademaster_training.py").is_file()
    assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert environment["AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY"] == "3"
    assert environment["TRADEMASTER_SEED"] == "5"
