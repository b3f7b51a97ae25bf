from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[3] / "dags"
DAG_ID = "trademaster_training"
TASK_ORDER = [
    "extract",
    "validate_data",
    "engineer_features",
    "train_risk_model",
    "validate_risk_model",
    "export_and_deploy",
]


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
    assert retries == dict.fromkeys(TASK_ORDER, 2)


def test_tasks_run_in_a_chain(dagbag: Any) -> None:
    dag = dagbag.dags[DAG_ID]

    for upstream, downstream in itertools.pairwise(TASK_ORDER):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert dag.get_task(TASK_ORDER[0]).upstream_task_ids == set()
    assert dag.get_task(TASK_ORDER[-1]).downstream_task_ids == set()
    assert [task.task_id for task in dag.topological_sort()] == TASK_ORDER
