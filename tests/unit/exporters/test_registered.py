"""A failed publication leaves the model's repository entry as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exporters.registered import entry_restored_on_failure
from exporters.triton_config import publish_version_folder, write_text_atomic


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _published(repository: Path, tmp_path: Path, version: int, text: str) -> None:
    artifact = tmp_path / f"artifact-{version}"
    artifact.write_text(text)
    write_text_atomic(repository / "m" / "config.pbtxt", f"config for v{version}\n")
    publish_version_folder(repository, "m", version, {"model.onnx": artifact}, overwrite=True)


class PublicationFailed(RuntimeError):
    pass


def _publish_then_fail(
    repository: Path, tmp_path: Path, publications: list[tuple[int, str]], why: str
) -> None:
    with entry_restored_on_failure(repository, "m"):
        for version, text in publications:
            _published(repository, tmp_path, version, text)
        raise PublicationFailed(why)


def test_a_failing_block_puts_the_entry_back_and_leaves_nothing_beside_it(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "repository"
    _published(repository, tmp_path, 1, "weights v1")
    before = _tree(repository)

    publications = [(2, "weights v2"), (1, "weights v1, overwritten")]
    with pytest.raises(PublicationFailed, match="Triton refused"):
        _publish_then_fail(repository, tmp_path, publications, "Triton refused")

    assert _tree(repository) == before
    assert sorted(path.name for path in repository.iterdir()) == ["m"]


def test_a_new_entry_is_removed_again_and_a_successful_block_is_kept(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    with pytest.raises(PublicationFailed, match="parity"):
        _publish_then_fail(repository, tmp_path, [(1, "weights v1")], "parity")
    assert list(repository.iterdir()) == []

    with entry_restored_on_failure(repository, "m"):
        _published(repository, tmp_path, 1, "weights v1")
    assert (repository / "m" / "1" / "model.onnx").read_text() == "weights v1"
    assert sorted(path.name for path in repository.iterdir()) == ["m"]


def test_served_versions_are_the_newest_the_config_keeps_with_ensemble_steps(
    tmp_path: Path,
) -> None:
    from exporters.registered import publish_served_versions
    from trademaster.contract.served_versions import read_manifest

    def model(name: str, versions: list[int], config: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text(config)
        for version in versions:
            (tmp_path / name / str(version)).mkdir()
            (tmp_path / name / str(version) / "model.py").write_text("")

    model("risk", [1, 2, 3], "version_policy: { latest: { num_versions: 2 } }\n")
    model("step", [4, 7], "version_policy: { latest: { num_versions: 1 } }\n")
    model(
        "ensemble",
        [7],
        'platform: "ensemble"\nensemble_scheduling { step [ { model_name: "step" } ] }\n',
    )
    assert publish_served_versions(tmp_path, "risk") == {"risk": [2, 3]}
    assert publish_served_versions(tmp_path, "ensemble") == {"ensemble": [7], "step": [7]}
    assert read_manifest(tmp_path) == {"risk": (2, 3), "ensemble": (7,), "step": (7,)}
    # A version rolled back (its folder moved out) leaves the manifest when republished.
    import shutil

    shutil.rmtree(tmp_path / "risk" / "3")
    publish_served_versions(tmp_path, "risk")
    assert read_manifest(tmp_path)["risk"] == (1, 2)


def test_a_failing_block_puts_the_manifest_entry_back_and_keeps_other_models_changes(
    tmp_path: Path,
) -> None:
    from exporters.registered import publish_served_versions
    from trademaster.contract.served_versions import publish_served, read_manifest

    repository = tmp_path / "repository"
    _published(repository, tmp_path, 1, "weights v1")
    publish_served(repository, {"m": [1], "other": [4]})

    def publish_v2_then_fail() -> None:
        with entry_restored_on_failure(repository, "m"):
            _published(repository, tmp_path, 2, "weights v2")
            assert publish_served_versions(repository, "m") == {"m": [2]}
            publish_served(repository, {"other": [5]})  # another model's task, meanwhile
            raise PublicationFailed("Triton refused")

    with pytest.raises(PublicationFailed, match="Triton refused"):
        publish_v2_then_fail()

    assert read_manifest(repository) == {"m": (1,), "other": (5,)}


def test_a_manifest_entry_without_a_repository_entry_stays_listed_after_a_failure(
    tmp_path: Path,
) -> None:
    """A replica's repository may lack a model its manifest lists (being copied); a failed
    export of that model changes neither."""
    from trademaster.contract.served_versions import manifest_path, publish_served

    repository = tmp_path / "repository"
    publish_served(repository, {"m": [3]})
    before = manifest_path(repository).read_bytes()
    with pytest.raises(PublicationFailed, match="parity"):
        _publish_then_fail(repository, tmp_path, [(4, "weights v4")], "parity")
    assert manifest_path(repository).read_bytes() == before


def test_deployed_models_the_manifest_does_not_list_are_added_and_listed_ones_kept(
    tmp_path: Path,
) -> None:
    from exporters.registered import publish_unlisted
    from trademaster.contract.served_versions import publish_served, read_manifest

    _published(tmp_path, tmp_path, 1, "weights v1")
    _published(tmp_path, tmp_path, 2, "weights v2")
    publish_served(tmp_path, {"other": [7]})
    assert publish_unlisted(tmp_path, ["m", "other"]) == ["m"]
    assert read_manifest(tmp_path) == {"m": (2,), "other": (7,)}
    assert publish_unlisted(tmp_path, ["m", "other"]) == []
