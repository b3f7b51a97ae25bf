from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from trademaster.pipeline.plan import FEEDS_FEATURES, MODELS, task_suffix

DAGS_FOLDER = Path(__file__).resolve().parents[3] / "dags"
DAG_ID = "trademaster_training"
SHARED_TASKS = ["extract", "validate_data", "engineer_features"]


def _model_tasks(model: str) -> list[str]:
    return [f"{step}_{task_suffix(model)}" for step in ("train", "validate", "export", "canary")]


MONITORING_TASKS = ["monitor_drift", "measure_realized"]
ALL_TASKS = (
    SHARED_TASKS + MONITORING_TASKS + [task for model in MODELS for task in _model_tasks(model)]
)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The project's DAG folder parsed by Airflow, with a throw-away Airflow home.

    Airflow reads its configuration on first import, so the environment is set first.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
        monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag: Any) -> None:
    errors = "\n".join(f"{path}:\n{error}" for path, error in dagbag.import_errors.items())
    assert not dagbag.import_errors, errors


def test_training_dag_is_tagged_daily_and_does_not_catch_up(dagbag: Any) -> None:
    dag = dagbag.dags.get(DAG_ID)

    assert dag is not None, sorted(dagbag.dags)
    assert "trademaster" in dag.tags
    assert dag.catchup is False
    assert dag.schedule == "@daily"
    assert dag.max_active_runs == 1


def test_every_task_retries_twice(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    retries = {task.task_id: task.retries for task in dag.tasks}
    assert retries == dict.fromkeys(ALL_TASKS, 2)


def test_shared_steps_run_in_a_chain(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    for upstream, downstream in itertools.pairwise(SHARED_TASKS):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("extract").upstream_task_ids == set()


def test_each_model_trains_validates_exports_and_canaries_after_its_inputs(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    for model in MODELS:
        train, validate, export, canary = _model_tasks(model)
        inputs = "validate_data" if model in FEEDS_FEATURES else "engineer_features"
        assert dag.get_task(train).upstream_task_ids == {inputs}
        assert dag.get_task(validate).upstream_task_ids == {train}
        assert dag.get_task(export).upstream_task_ids == {validate}
        assert dag.get_task(export).downstream_task_ids == {canary}
        assert dag.get_task(canary).downstream_task_ids == set()
        if model in FEEDS_FEATURES:
            assert "engineer_features" in dag.get_task(validate).downstream_task_ids


def test_drift_is_checked_on_the_new_features_and_gates_nothing(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    monitor = dag.get_task("monitor_drift")
    assert monitor.upstream_task_ids == {"engineer_features"}
    assert monitor.downstream_task_ids == set()


def test_realized_accuracy_is_measured_on_validated_data_and_gates_nothing(
    dagbag: Any,
) -> None:
    dag = dagbag.dags[DAG_ID]

    realized = dag.get_task("measure_realized")
    assert realized.upstream_task_ids == {"validate_data"}
    assert realized.downstream_task_ids == set()


def test_run_outcomes_are_published(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    assert dag.on_success_callback is not None
    assert dag.on_failure_callback is not None
