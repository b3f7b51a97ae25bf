"""Feast configuration and definitions, shared by the pipeline and the gateway."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import yaml

from trademaster.contract.source_files import import_path
from trademaster.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

FEATURE_REPO = PROJECT_ROOT / "feature_repo"


def registry_path(store_root: Path) -> Path:
    return store_root / "data" / "registry.db"


def repo_config_dict(store_root: Path, redis: str) -> dict[str, Any]:
    """``feature_store.yaml`` with the registry path and Redis connection set explicitly."""
    config: dict[str, Any] = yaml.safe_load((FEATURE_REPO / "feature_store.yaml").read_text())
    config["registry"] = str(registry_path(store_root))
    config["online_store"] = {**config["online_store"], "connection_string": redis}
    return config


def open_feature_store(store_root: Path, redis: str) -> FeatureStore:
    """The project's Feast store, with data (parquet, registry) under ``store_root/data``.

    ``store_root`` is the project's ``feature_repo/`` by default; tests point it elsewhere.
    """
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    config = RepoConfig(repo_path=store_root, **repo_config_dict(store_root, redis))
    return FeatureStore(config=config)


def load_definitions() -> ModuleType:
    """Imports ``feature_repo/definitions.py`` by path (Feast's CLI does the same)."""
    return import_path("trademaster_feature_definitions", FEATURE_REPO / "definitions.py")


def feature_service_columns(service: FeatureService) -> list[str]:
    """Feature names of a service, in the order the model consumes them."""
    return [
        feature.name
        for projection in service.feature_view_projections
        for feature in projection.features
    ]
