"""Which versions of which Triton models should be loaded: the serving manifest.

One file at the model repository's root (``served_versions.json``), beside the model folders
and ``deployment_status.json``. The publisher (the pipeline's deploy step, a rollback) writes
it at the moment a change should go live; the serving agent beside every Triton replica
(``trademaster.serving``) makes its Triton load exactly these versions and unload every other
model. Version folders on disk are what *can* be served; this file is what *is*.

Writes are atomic under an exclusive lock, like the deployment status; a reader never sees
half a file.

    {"models": {"risk-assessment-model": [3, 4], "sentiment-tokenizer": [7]}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from trademaster.contract.atomic_file import locked, read_json, replacing

MANIFEST_FILE = "served_versions.json"


def manifest_path(repository: Path) -> Path:
    return repository / MANIFEST_FILE


def read_manifest(repository: Path) -> dict[str, tuple[int, ...]]:
    """Model name -> versions to serve, ascending; empty if nothing was published yet. A
    file that is not a manifest is an error naming it (it is only ever replaced whole)."""
    path = manifest_path(repository)
    raw = read_json(path)
    if raw is None:
        return {}
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{path} has no 'models' object")
    manifest: dict[str, tuple[int, ...]] = {}
    for name, versions in models.items():
        if not isinstance(versions, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions
        ):
            raise ValueError(f"{path}: {name!r} must list positive integer versions")
        manifest[str(name)] = tuple(sorted(set(versions)))
    return manifest


def publish_served(repository: Path, served: Mapping[str, Iterable[int]]) -> bool:
    """Sets the served versions of each model in ``served`` (no versions: the model is not
    served any more), keeping every other model's entry. Returns whether the file changed
    (publishing the same state again writes nothing)."""
    with locked(repository / f".{MANIFEST_FILE}.lock"):
        current = read_manifest(repository)
        updated = dict(current)
        for name, versions in served.items():
            wanted = tuple(sorted(set(versions)))
            if wanted:
                updated[name] = wanted
            else:
                updated.pop(name, None)
        if updated == current and manifest_path(repository).is_file():
            return False
        body = {"models": {name: list(updated[name]) for name in sorted(updated)}}
        with replacing(manifest_path(repository)) as temporary:
            temporary.write_text(json.dumps(body, indent=2) + "\n")
        return True
