"""Export of registered MLflow versions into the Triton model repository, for any model.

The MLflow version number becomes the Triton version folder, so the version a client sees in
a Triton response is the registry's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trademaster.settings import PipelineSettings
from trademaster.training import registry
from trademaster.training.catalog import ModelDefinition

log = logging.getLogger(__name__)

ARTIFACTS = ("model.onnx", "model.pt", "model.py")


def is_exported(repository: Path, name: str, version: int) -> bool:
    """The model's config and a version folder with something Triton can load exist (an
    ensemble's version folder is empty by design: its steps hold the artifacts)."""
    config = repository / name / "config.pbtxt"
    version_dir = repository / name / str(version)
    if not config.is_file() or not version_dir.is_dir():
        return False
    if 'platform: "ensemble"' in config.read_text():
        return True
    return any((version_dir / artifact).is_file() for artifact in ARTIFACTS)


def exported_versions(repository: Path, name: str) -> list[int]:
    return sorted(
        int(path.name)
        for path in (repository / name).glob("*")
        if path.name.isdigit() and is_exported(repository, name, int(path.name))
    )


def export_champion(settings: PipelineSettings, definition: ModelDefinition) -> dict[str, Any]:
    """Exports the ``champion`` version unless the repository already has it."""
    champion = registry.version_for_alias(settings, definition.name, registry.CHAMPION)
    if champion is None:
        raise RuntimeError(
            f"{definition.name} has no champion version in MLflow (validation rejected every "
            "candidate so far); nothing to export"
        )
    if is_exported(settings.model_repository, definition.name, champion.version):
        log.info(
            "%s version %d is already in the model repository", definition.name, champion.version
        )
        return {"model_name": definition.name, "version": champion.version, "exported": False}
    report = definition.exporter_module().export_version(settings, champion)
    return {**report, "exported": True}
