"""The serving manifest: what it holds, partial updates, and refusal of a file that is not one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from trademaster.contract.served_versions import manifest_path, publish_served, read_manifest


def test_an_unpublished_repository_serves_nothing(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == {}


def test_publishing_one_model_keeps_the_others(tmp_path: Path) -> None:
    assert publish_served(tmp_path, {"risk": [4, 3, 3], "lstm": [2]})
    assert publish_served(tmp_path, {"risk": [5]})
    assert read_manifest(tmp_path) == {"risk": (5,), "lstm": (2,)}


def test_no_versions_withdraws_the_model(tmp_path: Path) -> None:
    publish_served(tmp_path, {"risk": [3], "lstm": [2]})
    publish_served(tmp_path, {"lstm": []})
    assert read_manifest(tmp_path) == {"risk": (3,)}


def test_publishing_the_same_state_writes_nothing(tmp_path: Path) -> None:
    assert publish_served(tmp_path, {"risk": [3]})
    before = manifest_path(tmp_path).stat().st_mtime_ns
    assert not publish_served(tmp_path, {"risk": [3]})
    assert manifest_path(tmp_path).stat().st_mtime_ns == before


def test_parallel_publishers_lose_no_entry(tmp_path: Path) -> None:
    names = [f"model-{i}" for i in range(16)]
    threads = [threading.Thread(target=publish_served, args=(tmp_path, {n: [1]})) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(read_manifest(tmp_path)) == set(names)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["risk"]', "no 'models' object"),
        ('{"models": {"risk": [0]}}', "positive integer versions"),
        ('{"models": {"risk": ["3"]}}', "positive integer versions"),
        ('{"models": {"risk": 3}}', "positive integer versions"),
    ],
)
def test_a_file_that_is_not_a_manifest_is_refused_by_name(
    tmp_path: Path, body: str, message: str
) -> None:
    manifest_path(tmp_path).write_text(body)
    with pytest.raises(ValueError, match=message) as error:
        read_manifest(tmp_path)
    assert str(manifest_path(tmp_path)) in str(error.value)


def test_the_file_is_plain_json_an_operator_can_read(tmp_path: Path) -> None:
    publish_served(tmp_path, {"risk": [4, 3]})
    assert json.loads(manifest_path(tmp_path).read_text()) == {"models": {"risk": [3, 4]}}
