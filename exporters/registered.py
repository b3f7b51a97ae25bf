"""Export of registered MLflow versions into the Triton model repository, for any model.

The MLflow version number becomes the Triton version folder, so the version a client sees in
a Triton response is the registry's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trademaster import registry
from trademaster.contract.deployment_status import ModelDeployment, record_status
from trademaster.contract.served_versions import publish_served, read_manifest
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

ExportVersion = Callable[[PipelineSettings, registry.RegisteredVersion], dict[str, Any]]

ARTIFACTS = ("model.onnx", "model.pt", "model.py")
_VERSIONS_SERVED = re.compile(r"num_versions:\s*(\d+)")
_ENSEMBLE_STEP = re.compile(r'model_name:\s*"([^"]+)"')


def is_exported(repository: Path, name: str, version: int) -> bool:
    """The model's config and a version folder with something Triton can load exist (an
    ensemble's version folder is empty by design: its steps hold the artifacts)."""
    config = repository / name / "config.pbtxt"
    version_dir = repository / name / str(version)
    if not config.is_file() or not version_dir.is_dir():
        return False
    if _is_ensemble(config.read_text()):
        return True
    return any((version_dir / artifact).is_file() for artifact in ARTIFACTS)


def versions_served(repository: Path, model_name: str) -> int:
    """How many versions the model's Triton config keeps loaded (``latest { num_versions }``)."""
    return _versions_served(_config_text(repository, model_name))


def served_versions_of(repository: Path, name: str) -> dict[str, list[int]]:
    """What serving ``name`` means for the manifest: its newest ``versions_served`` exported
    versions, and an ensemble's steps with theirs (Triton loads them as models of their own)."""
    config = _config_text(repository, name)
    served = {name: exported_versions(repository, name)[-_versions_served(config) :]}
    if _is_ensemble(config):
        for step in sorted(set(_ENSEMBLE_STEP.findall(config))):
            served.update(served_versions_of(repository, step))
    return served


def _config_text(repository: Path, name: str) -> str:
    config = repository / name / "config.pbtxt"
    return config.read_text() if config.is_file() else ""


def _versions_served(config: str) -> int:
    match = _VERSIONS_SERVED.search(config)
    return int(match.group(1)) if match else 1


def _is_ensemble(config: str) -> bool:
    return 'platform: "ensemble"' in config


def publish_served_versions(repository: Path, name: str) -> dict[str, list[int]]:
    """Writes ``served_versions_of`` into the serving manifest, which the agent beside every
    Triton replica converges on (trademaster/serving); returns what it wrote."""
    served = served_versions_of(repository, name)
    if publish_served(repository, served):
        log.info("serving manifest: %s", served)
    return served


def publish_unlisted(repository: Path, names: Iterable[str]) -> list[str]:
    """Publishes each of ``names`` that the serving manifest does not list yet (deployed
    before there was a manifest), leaving listed ones as they are; returns those it added."""
    listed = read_manifest(repository)
    added = [name for name in names if name not in listed]
    for name in added:
        publish_served_versions(repository, name)
    return added


def exported_versions(repository: Path, name: str) -> list[int]:
    return sorted(
        int(path.name)
        for path in (repository / name).glob("*")
        if path.name.isdigit() and is_exported(repository, name, int(path.name))
    )


@contextmanager
def entry_restored_on_failure(repository: Path, name: str) -> Iterator[None]:
    """``repository/<name>`` exactly as it was (or absent again) if the block raises, and the
    serving manifest's entries for it (and its ensemble steps) as they were: a publication
    that fails after writing (e.g. Triton refuses the new version) leaves no trace. The
    snapshot is hard links, no copy: the exporters only ever replace files by rename, so a
    linked file keeps the old content."""
    entry = repository / name
    repository.mkdir(parents=True, exist_ok=True)
    served_before = _manifest_entries(repository, served_versions_of(repository, name))
    scratch = Path(tempfile.mkdtemp(dir=repository, prefix=f".{name}.rollback-"))
    backup = scratch / "before"
    try:
        if entry.exists():
            shutil.copytree(entry, backup, copy_function=os.link)
        try:
            yield
        except BaseException:
            # Names the failed attempt may have published too (a new ensemble step).
            touched = served_versions_of(repository, name).keys() | served_before.keys()
            if entry.exists():
                os.replace(entry, scratch / "failed")
            if backup.exists():
                os.replace(backup, entry)
            if _manifest_entries(repository, touched) != served_before:
                publish_served(repository, {step: served_before.get(step, ()) for step in touched})
            log.warning("%s: the model repository entry is back to what it was", name)
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _manifest_entries(repository: Path, names: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """What the serving manifest lists now for each of ``names`` (absent: not served)."""
    manifest = read_manifest(repository)
    return {name: manifest[name] for name in names if name in manifest}


def export_champion(
    settings: PipelineSettings,
    name: str,
    export_version: ExportVersion,
    rejected_because: str = "",
) -> dict[str, Any]:
    """Exports the ``champion`` version with ``export_version`` (the model's exporter) unless
    the repository already has it, and records the model's deployment status.

    Without a champion nothing is exported: the report says ``skipped`` with the reason
    (``rejected_because``: the last validation's), and the status file says the model is not
    deployed, unless an earlier export is still being served."""
    repository = settings.model_repository
    champion = registry.version_for_alias(settings, name, registry.CHAMPION)
    if champion is None:
        reason = "no champion in MLflow: validation rejected every candidate so far" + (
            f" (last: {rejected_because})" if rejected_because else ""
        )
        log.warning("%s: not exported: %s", name, reason)
        if not exported_versions(repository, name):
            record_status(repository, ModelDeployment.now(name, False, None, reason))
        return {"model_name": name, "exported": False, "skipped": reason}
    if is_exported(repository, name, champion.version):
        log.info("%s version %d is already in the model repository", name, champion.version)
        report: dict[str, Any] = {
            "model_name": name,
            "version": champion.version,
            "exported": False,
        }
    else:
        report = {
            **export_version(settings, champion),
            "exported": True,
        }
    record_status(
        repository,
        ModelDeployment.now(name, True, champion.version, f"champion v{champion.version} exported"),
    )
    return report
