"""Pipeline steps. Each takes the settings and returns a small JSON-able dict (an XCom).

The Airflow DAG only wires these together; they are importable and testable without Airflow.
"""

from __future__ import annotations

import logging
from typing import Any

from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)


def extract(settings: PipelineSettings) -> dict[str, Any]:
    """Checks that the warehouse holds what the pipeline reads, summarises it (counts and
    time spans, computed in the warehouse) and stages the incremental extract of its daily
    aggregates (published by ``validate_data``). Read only: the pipeline never writes there."""
    from dataclasses import asdict

    from trademaster.features.extract import stage_extract
    from trademaster.warehouse.read import warehouse_summary

    summary = warehouse_summary(settings)
    log.info("warehouse: %s", summary)
    staged = stage_extract(settings)
    return {**summary, "extract": asdict(staged)}


def validate_data(settings: PipelineSettings) -> dict[str, Any]:
    """Fails the run with every problem listed if the warehouse breaks its contract (checked
    by SQL in the warehouse); else publishes the staged extract."""
    from trademaster.features.extract import publish_extract
    from trademaster.warehouse.read import warehouse_connection
    from trademaster.warehouse.validation import validate_warehouse

    with warehouse_connection(settings) as connection:
        counts = validate_warehouse(
            connection, min_users=settings.n_users, min_trades=settings.n_trades
        )
    log.info("data validation passed: %s", counts)
    # Only data that passed moves the extract's watermark.
    publish_extract(settings)
    return counts


def engineer_features(settings: PipelineSettings) -> dict[str, Any]:
    """Offline parquet features, ``feast apply`` and materialisation into Redis."""
    from trademaster.features.build import apply_and_materialize, build_offline_features
    from trademaster.sentiment.pipeline import champion_daily_sentiment

    summary = build_offline_features(settings, champion_daily_sentiment(settings)).as_dict()
    return {**summary, **apply_and_materialize(settings)}


def train_model(settings: PipelineSettings, model_name: str) -> dict[str, Any]:
    """Trains ``model_name`` and registers it as a new version aliased ``challenger``."""
    from trademaster.pipeline.catalog import definition

    try:
        return definition(model_name).training.train_and_register(settings)
    except Exception as exc:
        # Our own line, so the run's progress output names the stage and the problem.
        log.error("training %s failed: %s", model_name, exc)
        raise


def validate_model(
    settings: PipelineSettings, model_name: str, candidate: dict[str, Any]
) -> dict[str, Any]:
    """Promotes the challenger to ``champion`` only if the model's rule accepts it."""
    from trademaster.pipeline.catalog import definition
    from trademaster.training.promotion import validate_candidate

    model = definition(model_name)
    return validate_candidate(settings, model.name, model.training.decide, candidate)


def export_and_deploy(
    settings: PipelineSettings, model_name: str, decision: dict[str, Any]
) -> dict[str, Any]:
    """Exports the champion into the Triton model repository and, with ``triton_url``, makes
    that Triton load it (also when it was exported before: a load refused in an earlier run
    is tried again; loading an unchanged model is a no-op for Triton).

    A rejected candidate changes nothing: the champion (if any) stays what is served. A model
    with no champion at all is not exported: the report carries ``skipped`` with the reason
    (the DAG marks the task skipped; every other model goes on). Publishing is all or
    nothing: if the export or the load fails, the model's repository entry is put back as it
    was and a champion promoted by this run's validation is demoted to the previous one
    (each retry promotes it again first).
    """
    from exporters.registered import (
        entry_restored_on_failure,
        export_champion,
        exported_versions,
        publish_served_versions,
    )
    from trademaster import registry
    from trademaster.pipeline.catalog import definition

    rejected = "" if decision["promoted"] else str(decision.get("reason", ""))
    model = definition(model_name)
    promoted_now = _promoted_by_this_run(decision)
    if promoted_now:
        registry.set_champion(settings, model.name, decision["champion_version"])
    served = exported_versions(settings.model_repository, model.name)
    try:
        with entry_restored_on_failure(settings.model_repository, model.name):
            report = export_champion(
                settings, model.name, model.exporter.export_version, rejected_because=rejected
            )
            if settings.triton_url and not report.get("skipped"):
                report.update(go_live(settings, model.name, served[-1] if served else None, report))
            elif not report.get("skipped"):
                publish_served_versions(settings.model_repository, model.name)
    except Exception as exc:
        log.error("%s: publishing failed: %s", model.name, exc)
        if promoted_now:
            log.error("%s: the previous champion stays", model.name)
            registry.set_champion(settings, model.name, decision["previous_champion_version"])
        raise
    report["candidate_promoted"] = decision["promoted"]
    return report


def _promoted_by_this_run(decision: dict[str, Any]) -> bool:
    """Validation moved ``champion`` to a new version (not: rejected, or already champion)."""
    previous = decision.get("previous_champion_version")
    return bool(decision["promoted"]) and decision["champion_version"] != previous


def go_live(
    settings: PipelineSettings, model_name: str, previous: int | None, report: dict[str, Any]
) -> dict[str, Any]:
    """Loads the exported champion into Triton: as a canary beside the ``previous`` served
    version when the gateway runs and the model serves two versions, else directly."""
    from exporters.registered import publish_served_versions
    from trademaster.launchers.deploy import load_into_triton
    from trademaster.rollout import canary

    def load() -> None:
        # The manifest for every replica's agent; the direct load for this Triton at once.
        publish_served_versions(settings.model_repository, model_name)
        load_into_triton(settings.triton_url, model_name)

    new = report.get("version")
    fresh = report.get("exported") and new is not None and new != previous
    reason = canary.why_no_canary(settings, model_name, previous) if fresh else "nothing new"
    if not fresh or reason:
        load()
        return {"loaded_into_triton": settings.triton_url, "canary": None, "no_canary": reason}
    assert previous is not None
    plan = canary.CanaryPlan(model_name, previous, int(str(new)))
    canary.begin(settings, plan, load)
    return {"loaded_into_triton": settings.triton_url, "canary": plan.as_dict()}


def conclude_canary(settings: PipelineSettings, report: dict[str, Any]) -> dict[str, Any]:
    """Judges a running canary and promotes or rolls it back; ``skipped`` when there is none
    (the export's reason)."""
    from trademaster.rollout import canary

    plan = report.get("canary")
    if not plan:
        return {"skipped": f"no canary: {report.get('no_canary') or 'nothing deployed'}"}
    return canary.conclude(
        settings,
        canary.CanaryPlan(
            plan["model_name"], int(plan["previous_version"]), int(plan["canary_version"])
        ),
    )


def monitor_drift(settings: PipelineSettings) -> dict[str, Any]:
    """Drift of every profiled champion's inputs (the newest offline snapshot and the last
    day's served features) and each feature view's freshness: Prometheus series through the
    Pushgateway, and an HTML report kept in MLflow. Never fails the run on drift: drift is
    for people to look at (alerts), not a gate."""
    import tempfile
    from pathlib import Path

    from trademaster import registry
    from trademaster.monitoring import drift_check
    from trademaster.monitoring.metrics import batch_registry
    from trademaster.monitoring.publish import push
    from trademaster.monitoring.report import render_report

    comparisons, skipped, snapshots = drift_check.check_drift(settings)
    metrics = batch_registry()
    drift_check.record_metrics(metrics, comparisons, snapshots)
    pushed = push(settings, metrics, "drift")
    report: dict[str, Any] = {"pushed": pushed, "skipped": skipped}
    if comparisons:
        with tempfile.TemporaryDirectory() as folder:
            path = render_report(
                {item.title: item.report for item in comparisons},
                Path(folder) / "drift_report.html",
                profiles={item.title: item.profile for item in comparisons},
                current={item.title: item.current for item in comparisons},
            )
            report["mlflow_run_id"] = registry.log_monitoring_run(
                settings,
                "drift-check",
                {
                    f"{item.model_name}.{item.source}.drift_share": item.report.drift_share
                    for item in comparisons
                    if item.report.drift_share is not None
                },
                {f"{item.model_name}.version": str(item.model_version) for item in comparisons},
                [path],
            )
    return {**report, "comparisons": drift_check.summary(comparisons)}


def measure_realized(settings: PipelineSettings) -> dict[str, Any]:
    """Served predictions joined with their outcomes, per model version (realized quality,
    label coverage and delay) through the Pushgateway; never fails the run on a low figure:
    ``RealizedQualityDropped`` alerts on it."""
    from trademaster.monitoring import realized
    from trademaster.monitoring.metrics import batch_registry
    from trademaster.monitoring.publish import push
    from trademaster.risk.labels import adverse_move_labels

    results = realized.realized_quality(settings, risk_labels=adverse_move_labels)
    metrics = batch_registry()
    realized.record_metrics(metrics, results)
    return {
        "pushed": push(settings, metrics, realized.PUSH_TASK),
        "results": realized.summary(results),
    }
