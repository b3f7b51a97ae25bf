"""Daily training pipeline of the TradeMaster models.

extract -> validate_data -> [models that feed features: train -> validate -> export]
-> engineer_features -> monitor_drift (the champions' inputs against their reference
profiles); measure_realized (served answers against their outcomes) after validate_data; per
model, in parallel: train_<model> -> validate_<model> ->
export_<model> -> canary_<model> (judged on live traffic, promoted or rolled back). The
steps live in ``trademaster.pipeline.tasks``; this file only wires them
(the model list is ``trademaster.pipeline.plan``, a light import). Settings come from the
environment (``TRADEMASTER_*``), read when a task runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from trademaster.pipeline.plan import FEEDS_FEATURES, MODELS, task_suffix

# The retry delay comes from Airflow's [core] default_task_retry_delay (5 minutes by
# default; the local runner sets a few seconds so a flaky step does not stall dag.test()).
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 2,
}


def _settings() -> Any:
    from trademaster.settings import PipelineSettings

    return PipelineSettings()


def _run_finished(context: Any, succeeded: bool) -> None:
    """Publishes the run's outcome (``TrainingDagFailed`` / ``TrainingDagLate`` alerts)."""
    from trademaster.monitoring.publish import dag_finished

    run = context.get("dag_run")
    start, end = getattr(run, "start_date", None), getattr(run, "end_date", None)
    duration = (end - start).total_seconds() if start and end else None
    dag_finished(_settings(), "trademaster_training", succeeded, duration)


def _run_succeeded(context: Any) -> None:
    _run_finished(context, True)


def _run_failed(context: Any) -> None:
    _run_finished(context, False)


@dag(
    dag_id="trademaster_training",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_success_callback=_run_succeeded,
    on_failure_callback=_run_failed,
    tags=["trademaster", "training", *(str(model) for model in MODELS)],
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
    def monitor_drift(features: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.monitor_drift(_settings())

    @task
    def measure_realized(counts: dict[str, Any]) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.measure_realized(_settings())

    @task
    def train(upstream: dict[str, Any], model_name: str) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.train_model(_settings(), model_name)

    @task
    def validate(candidate: dict[str, Any], model_name: str) -> dict[str, Any]:
        from trademaster.pipeline import tasks

        return tasks.validate_model(_settings(), model_name, candidate)

    @task
    def export_and_deploy(decision: dict[str, Any], model_name: str) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from trademaster.pipeline import tasks

        report = tasks.export_and_deploy(_settings(), model_name, decision)
        if report.get("skipped"):
            # Not a failure: nothing to deploy for this model; the others go on.
            raise AirflowSkipException(f"{model_name} not deployed: {report['skipped']}")
        return report

    @task
    def canary(report: dict[str, Any], model_name: str) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from trademaster.pipeline import tasks

        outcome = tasks.conclude_canary(_settings(), report)
        if outcome.get("skipped"):
            # The new version went live directly (no gateway, first version, one version
            # served at a time) or nothing new was exported.
            raise AirflowSkipException(f"{model_name}: {outcome['skipped']}")
        return outcome

    def train_validate_export(upstream: Any, model: str) -> Any:
        """train -> validate -> export -> canary for one model; returns the validation
        XComArg."""
        suffix = task_suffix(model)
        candidate: Any = train.override(task_id=f"train_{suffix}")(upstream, model)
        decision: Any = validate.override(task_id=f"validate_{suffix}")(candidate, model)
        report: Any = export_and_deploy.override(task_id=f"export_{suffix}")(decision, model)
        canary.override(task_id=f"canary_{suffix}")(report, model)
        return decision

    # Each call returns an XComArg while the DAG is parsed; the task receives the value.
    warehouse: Any = extract()
    counts: Any = validate_data(warehouse)
    measure_realized(counts)
    # Models whose outputs are features (sentiment) come first; features wait for their
    # validation, then the other models train in parallel.
    gates = [train_validate_export(counts, model) for model in MODELS if model in FEEDS_FEATURES]
    features: Any = engineer_features(counts)
    for gate in gates:
        gate >> features
    monitor_drift(features)
    for model in MODELS:
        if model not in FEEDS_FEATURES:
            train_validate_export(features, model)


trademaster_training()
