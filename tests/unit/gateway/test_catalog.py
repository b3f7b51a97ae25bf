"""The model catalog's view of deployed and never-deployed models (Triton behind a seam)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from exporters.deployment_status import ModelDeployment, record_status, status_path
from gateway.catalog import ModelCatalog
from gateway.errors import ModelNotFound, ModelNotReady
from gateway.triton import RepositoryEntry, ServedModel

RISK = "risk-assessment-model"
BEHAVIOUR = "behavioral-pattern-classifier"


class FakeTriton:
    """What ``TritonGateway.repository()`` returns; the catalog needs nothing else."""

    def __init__(self, entries: list[RepositoryEntry]) -> None:
        self.entries = entries

    async def repository(self) -> list[RepositoryEntry]:
        return self.entries


def _served(name: str) -> RepositoryEntry:
    model = ServedModel(name, 3, "binary_risk", {}, ("features",), ("probability",))
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
