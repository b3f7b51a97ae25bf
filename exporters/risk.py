"""risk-assessment-model: ONNX export with parity check, Triton configs and version folder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.tabular import PARITY_ROWS, export_tabular_version, tabular_spec
from trademaster import registry
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.features.build import MARKET_FEATURES_FILE, USER_BEHAVIOR_FILE
from trademaster.settings import PipelineSettings

RISK_OUTPUT = "risk_probability"


def risk_model_spec(
    name: str, feature_service: str, feature_names: list[str], rows: np.ndarray
) -> ModelSpec:
    return tabular_spec(
        name,
        TaskKind.BINARY_CLASSIFICATION,
        feature_service,
        feature_names,
        TensorSpec(RISK_OUTPUT, "FP32", (1,)),
        rows,
    )


def real_feature_rows(settings: PipelineSettings, feature_names: list[str], n: int) -> np.ndarray:
    """Rows of real feature values from the offline store (user and market rows paired)."""
    rng = np.random.default_rng(settings.seed)
    user = pd.read_parquet(settings.features_dir / USER_BEHAVIOR_FILE)
    market = pd.read_parquet(settings.features_dir / MARKET_FEATURES_FILE)
    user_rows = user.iloc[rng.integers(0, len(user), n)].reset_index(drop=True)
    market_rows = market.iloc[rng.integers(0, len(market), n)].reset_index(drop=True)
    combined = pd.concat([user_rows, market_rows], axis=1)
    rows: np.ndarray = combined[feature_names].to_numpy(dtype=np.float32)
    return rows


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    tags = registry.version_tags(settings, version)
    feature_names = tags[Parameter.FEATURE_NAMES].split(",")
    rows = real_feature_rows(settings, feature_names, PARITY_ROWS)
    spec = risk_model_spec(version.name, tags[Parameter.FEATURE_SERVICE], feature_names, rows)
    return export_tabular_version(settings, version, spec, rows)
