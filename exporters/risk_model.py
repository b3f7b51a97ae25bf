"""risk-assessment-model: ONNX export with parity check, Triton configs and version folder."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx, parity_check
from exporters.triton_config import write_model_configs, write_model_version
from trademaster.features.build import MARKET_FEATURES_FILE, USER_BEHAVIOR_FILE
from trademaster.settings import PipelineSettings
from trademaster.training import registry

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
PARITY_ROWS = 2_000
INPUT_NAME = "features"
RISK_OUTPUT = "risk_probability"


class ExportParityError(RuntimeError):
    """The exported graph disagrees with the registered torch model."""


def risk_model_spec(name: str, feature_service: str, feature_names: list[str]) -> ModelSpec:
    return ModelSpec(
        name=name,
        inputs=(TensorSpec(INPUT_NAME, "FP32", (len(feature_names),)),),
        outputs=(TensorSpec(RISK_OUTPUT, "FP32", (1,)),),
        max_batch_size=1024,
        preferred_batch_sizes=(8, 32, 128),
        max_queue_delay_us=200,
        parameters={
            "feature_service": feature_service,
            "feature_names": ",".join(feature_names),
            "task": "binary_classification",
        },
    )


def real_feature_rows(settings: PipelineSettings, feature_names: list[str], n: int) -> np.ndarray:
    """Rows of real feature values from the offline store (user and market rows paired)."""
    rng = np.random.default_rng(settings.seed)
    user = pd.read_parquet(settings.features_dir / USER_BEHAVIOR_FILE)
    market = pd.read_parquet(settings.features_dir / MARKET_FEATURES_FILE)
    user_rows = user.iloc[rng.integers(0, len(user), n)].reset_index(drop=True)
    market_rows = market.iloc[rng.integers(0, len(market), n)].reset_index(drop=True)
    combined = pd.concat([user_rows, market_rows], axis=1)
    return combined[feature_names].to_numpy(dtype=np.float32)


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    """ONNX export with a dynamic batch, parity check on real rows, configs, version folder."""
    tags = registry.version_tags(settings, version)
    feature_names = tags["feature_names"].split(",")
    spec = risk_model_spec(version.name, tags["feature_service"], feature_names)
    model = registry.load_torch_model(settings, version)
    rows = real_feature_rows(settings, feature_names, PARITY_ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            model, torch.from_numpy(rows[:4]), Path(tmp) / "model.onnx", INPUT_NAME, [RISK_OUTPUT]
        )
        max_abs_diff = parity_check(model, onnx_path, rows)
        log.info("ONNX parity on %d real rows: max abs diff %.3g", len(rows), max_abs_diff)
        if not max_abs_diff < PARITY_TOLERANCE:
            raise ExportParityError(
                f"{version.name} v{version.version}: ONNX differs from torch by {max_abs_diff:.3g} "
                f"(tolerance {PARITY_TOLERANCE})"
            )
        write_model_configs(settings.model_repository, spec)
        target = write_model_version(
            settings.model_repository, spec, version.version, onnx_path, overwrite=True
        )
    registry.log_version_metrics(settings, version, {"onnx_parity_max_abs_diff": max_abs_diff})
    return {
        "model_name": version.name,
        "version": version.version,
        "path": str(target),
        "onnx_parity_max_abs_diff": max_abs_diff,
        "parity_rows": len(rows),
    }
