from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from trademaster.contract.deployment_status import (
    ModelDeployment,
    read_statuses,
    record_status,
    status_path,
)


def test_recording_one_model_keeps_the_others(tmp_path: Path) -> None:
    record_status(tmp_path, ModelDeployment.now("a", True, 2, "champion v2 exported"))
    record_status(tmp_path, ModelDeployment.now("b", False, None, "rejected: gate"))
    record_status(tmp_path, ModelDeployment.now("a", True, 3, "champion v3 exported"))

    statuses = read_statuses(status_path(tmp_path))

    assert sorted(statuses) == ["a", "b"]
    assert statuses["a"].champion_version == 3
    assert statuses["b"].deployed is False
    assert statuses["b"].reason == "rejected: gate"
    # Nothing but the status file (and its lock) is left beside the repository's models.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".deployment_status.json.lock",
        "deployment_status.json",
    ]


def test_an_unchanged_status_is_not_written_again(tmp_path: Path) -> None:
    first = ModelDeployment("a", True, 2, "champion v2 exported", "2026-01-01T00:00:00+00:00")
    record_status(tmp_path, first)
    record_status(tmp_path, ModelDeployment.now("a", True, 2, "champion v2 exported"))
    assert read_statuses(status_path(tmp_path))["a"] == first

    record_status(tmp_path, ModelDeployment.now("a", True, 3, "champion v3 exported"))
    assert read_statuses(status_path(tmp_path))["a"].updated_at != first.updated_at


def test_parallel_writers_lose_no_entry(tmp_path: Path) -> None:
    names = [f"model-{i}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda name: record_status(tmp_path, ModelDeployment.now(name, True, 1, "ok")),
                names,
            )
        )

    assert sorted(read_statuses(status_path(tmp_path))) == sorted(names)


def test_a_missing_file_is_empty_and_a_corrupt_one_is_an_error_naming_it(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    assert read_statuses(path) == {}

    path.write_text("{ nope")
    with pytest.raises(ValueError, match=r"deployment_status\.json is not valid JSON"):
        read_statuses(path)
    path.write_text(json.dumps({"models": {"a": {"model_name": "a"}}}))
    with pytest.raises(ValueError, match="does not hold deployment statuses"):
        read_statuses(path)
