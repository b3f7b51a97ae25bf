"""Pipeline steps. Each takes the settings and returns a small JSON-able dict (an XCom).

The Airflow DAG only wires these together; they are importable and testable without Airflow.
"""

from __future__ import annotations

import logging
from typing import Any

from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)


def extract(settings: PipelineSettings) -> dict[str, Any]:
    """Checks that the warehouse holds what the pipeline reads and summarises it (counts and
    time spans, computed in the warehouse). Read only: the pipeline never writes there."""
    from trademaster.warehouse.read import warehouse_summary

    summary = warehouse_summary(settings)
    log.info("warehouse: %s", summary)
    return summary


def validate_data(settings: PipelineSettings) -> dict[str, Any]:
    """Fails the run with every problem listed if the warehouse breaks its contract."""
    from trademaster.warehouse import schema
    from trademaster.warehouse.read import read_table
    from trademaster.warehouse.validation import validate_frames

    frames = {
        table.name: read_table(settings, table)
        for table in (schema.market_data, schema.users, schema.trades, schema.headlines)
    }
    counts = validate_frames(frames, min_users=settings.n_users, min_trades=settings.n_trades)
    log.info("data validation passed: %s", counts)
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

    return definition(model_name).training.train_and_register(settings)


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
    """Exports the champion into the Triton model repository and loads it if Triton runs.

    A rejected candidate changes nothing: the champion (if any) stays what is served. A model
    with no champion at all is not exported: the report carries ``skipped`` with the reason
    (the DAG marks the task skipped; every other model goes on).
    """
    from exporters.registered import export_champion
    from trademaster.launchers.deploy import load_into_triton
    from trademaster.pipeline.catalog import definition

    rejected = "" if decision["promoted"] else str(decision.get("reason", ""))
    model = definition(model_name)
    report = export_champion(
        settings, model.name, model.exporter.export_version, rejected_because=rejected
    )
    report["candidate_promoted"] = decision["promoted"]
    if settings.triton_url and report["exported"]:
        load_into_triton(settings.triton_url, model_name)
        report["loaded_into_triton"] = settings.triton_url
    return report
