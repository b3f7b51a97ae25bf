"""Daily training pipeline of the TradeMaster models.

extract -> validate_data -> engineer_features -> train_risk_model -> validate_risk_model
-> export_and_deploy. The steps live in ``trademaster.pipeline.tasks``; this file only wires
them. Settings come from the environment (``TRADEMASTER_*``), read when a task runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

# The retry delay comes from Airflow's [core] default_task_retry_delay (5 minutes by
# default; the local runner sets a few seconds so a flaky step does not stall dag.test()).
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 2,
}


def _settings() -> Any:
    from trademaster.settings import PipelineSettings

    return PipelineSettings()


@dag(
    dag_id="trademaster_training",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["trademaster", "training", "risk-assessment-model"],
    doc_md=__doc__,
)
def trademaster_training() -> None:
    @task
    def extract() -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.extract(_settings())

    @task
    def validate_data(warehouse: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.validate_data(_settings())

    @task
    def engineer_features(counts: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.engineer_features(_settings())

    @task
    def train_risk_model(features: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.train_risk(_settings())

    @task
    def validate_risk_model(candidate: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.validate_risk(_settings(), candidate)

    @task
    def export_and_deploy(decision: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.export_and_deploy(_settings(), decision)

    # Each call returns an XComArg while the DAG is parsed; the task receives the value.
    warehouse: Any = extract()
    counts: Any = validate_data(warehouse)
    features: Any = engineer_features(counts)
    candidate: Any = train_risk_model(features)
    decision: Any = validate_risk_model(candidate)
    export_and_deploy(decision)


trademaster_training()
