"""The gates of the pipeline on real stores: a broken model is rejected and not deployed;
corrupt warehouse data stops the run with every problem named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporters.registered import export_champion, exported_versions
from tests.integration.stack import RISK_MODEL, corrupt_warehouse
from trademaster import registry
from trademaster.pipeline import tasks
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.risk.pipeline import train_and_register
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import validate_candidate
from trademaster.warehouse.validation import DataValidationError

pytestmark = pytest.mark.integration


def test_a_model_trained_on_shuffled_labels_is_rejected_and_not_deployed(
    pipeline_settings: PipelineSettings, tmp_path: Path
) -> None:
    repository = tmp_path / "model_repository"
    shutil.copytree(pipeline_settings.model_repository, repository)
    settings = pipeline_settings.model_copy(update={"model_repository": repository})
    champion_before = registry.version_for_alias(settings, RISK_MODEL, registry.CHAMPION)
    served_before = exported_versions(repository, RISK_MODEL)

    broken = train_and_register(settings, shuffle_labels=True)
    decision = validate_candidate(
        settings,
        catalog_definition(RISK_MODEL).name,
        catalog_definition(RISK_MODEL).training.decide,
        broken,
    )
    export = export_champion(
        settings,
        catalog_definition(RISK_MODEL).name,
        catalog_definition(RISK_MODEL).exporter.export_version,
    )

    assert broken["metrics"]["holdout_auc"] < 0.6
    assert decision["promoted"] is False
    assert "prevalence" in decision["reason"] or "trails" in decision["reason"]
    champion_after = registry.version_for_alias(settings, RISK_MODEL, registry.CHAMPION)
    assert champion_before is not None
    assert champion_after is not None
    assert champion_after.version == champion_before.version != broken["version"]
    assert export["exported"] is False
    assert exported_versions(repository, RISK_MODEL) == served_before
    assert (
        registry.version_tags(
            settings, registry.RegisteredVersion(RISK_MODEL, broken["version"], broken["run_id"])
        )["validation"]
        == "rejected"
    )


def test_corrupt_warehouse_data_fails_validation_naming_each_problem(
    pipeline_settings: PipelineSettings, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.db"
    shutil.copy(pipeline_settings.resolved_warehouse_url.removeprefix("sqlite:///"), database)
    settings = pipeline_settings.model_copy(update={"warehouse_url": f"sqlite:///{database}"})
    corrupt_warehouse(
        settings.resolved_warehouse_url,
        "UPDATE market_data SET close = -1 WHERE symbol = 'SYN001'",
        "UPDATE trades SET leverage = 50 WHERE trade_id <= 3",
        "DELETE FROM users WHERE user_id = 1",
    )

    with pytest.raises(DataValidationError) as failure:
        tasks.validate_data(settings)

    message = str(failure.value)
    assert "prices are positive" in message
    assert "leverage within [1, 10]" in message
    assert "unknown users" in message
