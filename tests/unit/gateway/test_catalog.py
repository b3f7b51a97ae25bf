"""The model catalog's view of deployed and never-deployed models (Triton behind a seam)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from gateway.catalog import ModelCatalog
from gateway.errors import ModelNotFound, ModelNotReady
from gateway.triton import RepositoryEntry, ServedModel
from trademaster.contract.deployment_status import ModelDeployment, record_status, status_path
from trademaster.contract.parameters import Parameter, TaskKind

RISK = "risk-assessment-model"
BEHAVIOUR = "behavioral-pattern-classifier"


class FakeTriton:
    """What ``TritonGateway.repository()`` returns; the catalog needs nothing else."""

    def __init__(self, entries: list[RepositoryEntry]) -> None:
        self.entries = entries

    async def repository(self) -> list[RepositoryEntry]:
        return self.entries

    def answering(self, model: ServedModel) -> int:
        return 1


def _served(name: str, task: TaskKind = TaskKind.BINARY_CLASSIFICATION) -> RepositoryEntry:
    model = ServedModel(name, 3, task, {Parameter.TASK: task}, ("features",), ("probability",), 8)
    return RepositoryEntry(name, "READY", (3,), model, {3: model})


def _catalog(tmp_path: Path, statuses: list[ModelDeployment]) -> ModelCatalog:
    for status in statuses:
        record_status(tmp_path, status)
    triton: Any = FakeTriton([_served(RISK)])
    catalog = ModelCatalog(triton, 60.0, [RISK], status_path(tmp_path))
    asyncio.run(catalog.refresh())
    return catalog


def test_a_never_deployed_model_is_known_listed_with_its_reason_and_not_ready(
    tmp_path: Path,
) -> None:
    catalog = _catalog(
        tmp_path,
        [
            ModelDeployment.now(RISK, True, 3, "champion v3 exported"),
            ModelDeployment.now(BEHAVIOUR, False, None, "no champion: gate failed"),
        ],
    )

    assert catalog.knows(BEHAVIOUR)
    assert catalog.not_deployed() == {BEHAVIOUR: "no champion: gate failed"}
    # The deployed model is what readiness is about.
    assert catalog.required_ready() == {RISK: True}
    with pytest.raises(ModelNotReady, match="is not deployed: no champion: gate failed"):
        catalog.resolve(BEHAVIOUR)
    assert catalog.resolve(RISK).version == 3


def test_an_unknown_model_is_404_naming_the_known_ones(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, [ModelDeployment.now(BEHAVIOUR, False, None, "rejected")])

    with pytest.raises(ModelNotFound, match=f"known models: {BEHAVIOUR}, {RISK}"):
        catalog.resolve("no-such-model")
    assert not catalog.knows("no-such-model")


def test_what_triton_serves_wins_over_a_stale_not_deployed_entry(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, [ModelDeployment.now(RISK, False, None, "old news")])

    assert catalog.not_deployed() == {}
    assert catalog.resolve(RISK).version == 3


def test_a_corrupt_status_file_keeps_the_last_good_view(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, [ModelDeployment.now(BEHAVIOUR, False, None, "rejected")])
    status_path(tmp_path).write_text("{ not json")

    asyncio.run(catalog.refresh())

    assert catalog.not_deployed() == {BEHAVIOUR: "rejected"}


def test_without_a_status_file_nothing_is_listed(tmp_path: Path) -> None:
    triton: Any = FakeTriton([_served(RISK)])
    catalog = ModelCatalog(triton, 60.0, [RISK], tmp_path / "missing.json")
    asyncio.run(catalog.refresh())

    assert catalog.not_deployed() == {}
    with pytest.raises(ModelNotFound):
        catalog.resolve(BEHAVIOUR)


def test_a_model_whose_config_breaks_the_contract_is_not_ready_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    problem = f"{BEHAVIOUR}: a multiclass_classification config needs class_labels"
    broken = RepositoryEntry(BEHAVIOUR, "READY", (2,), problem=problem)
    triton: Any = FakeTriton([_served(RISK), broken])
    catalog = ModelCatalog(triton, 60.0, [RISK, BEHAVIOUR], tmp_path / "missing.json")

    with caplog.at_level(logging.ERROR, logger="gateway.catalog"):
        asyncio.run(catalog.refresh())
        asyncio.run(catalog.refresh())

    assert catalog.knows(BEHAVIOUR)
    assert catalog.required_ready() == {RISK: True, BEHAVIOUR: False}
    with pytest.raises(ModelNotReady, match=f"'{BEHAVIOUR}' cannot be served: {problem}$"):
        catalog.resolve(BEHAVIOUR)
    logged = [record.getMessage() for record in caplog.records]
    assert logged == [f"model {BEHAVIOUR} is not served: {problem}"]


def test_ensemble_steps_are_hidden() -> None:
    step = "sentiment-encoder"
    triton: Any = FakeTriton([_served(RISK), _served(step, TaskKind.ENSEMBLE_STEP)])
    catalog = ModelCatalog(triton, 60.0, [RISK])
    asyncio.run(catalog.refresh())

    assert [entry.name for entry in catalog.entries()] == [RISK]
    assert not catalog.knows(step)
    with pytest.raises(ModelNotFound, match=f"unknown model '{step}'"):
        catalog.resolve(step)
