"""Export of the tabular torch models (one FP32 feature vector in, one tensor out) to ONNX."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx, parity_check
from exporters.triton_config import write_model_configs, write_model_version
from trademaster import registry
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.settings import PipelineSettings
from trademaster.training.parity import require_parity

log = logging.getLogger(__name__)

PARITY_ROWS = 2_000
INPUT_NAME = "features"


def tabular_spec(
    name: str,
    task: TaskKind,
    feature_service: str,
    feature_names: list[str],
    output: TensorSpec,
    rows: np.ndarray,
    extra_parameters: Mapping[Parameter, str] | None = None,
) -> ModelSpec:
    """One feature vector in, ``output`` out; parameters tell the gateway how to use it.

    From real feature ``rows``: ``feature_reference`` (medians) is what explanations replace a
    feature with; ``feature_min``/``feature_max`` bound what-if overrides.
    """
    return ModelSpec(
        name=name,
        inputs=(TensorSpec(INPUT_NAME, "FP32", (len(feature_names),)),),
        outputs=(output,),
        max_batch_size=1024,
        # No waiting for a batch to fill: requests queued while an instance is busy are
        # batched anyway. The CPU configs take the values measured by
        # `benchmarks.serving_sweep` (exporters/cpu_batching.json) where it has them.
        preferred_batch_sizes=(),
        max_queue_delay_us=0,
        parameters={
            Parameter.TASK: task.value,
            Parameter.FEATURE_SERVICE: feature_service,
            Parameter.FEATURE_NAMES: ",".join(feature_names),
            Parameter.FEATURE_REFERENCE: _numbers(np.median(rows, axis=0)),
            Parameter.FEATURE_MIN: _numbers(rows.min(axis=0)),
            Parameter.FEATURE_MAX: _numbers(rows.max(axis=0)),
            **(extra_parameters or {}),
        },
    )


def _numbers(values: np.ndarray) -> str:
    return ",".join(f"{value:.6g}" for value in values)


def export_tabular_version(
    settings: PipelineSettings,
    version: registry.RegisteredVersion,
    spec: ModelSpec,
    rows: np.ndarray,
) -> dict[str, Any]:
    """ONNX export with a dynamic batch, parity check on real rows, configs, version folder."""
    model = registry.load_torch_model(settings, version)
    output_names = [tensor.name for tensor in spec.outputs]
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(
            model, torch.from_numpy(rows[:4]), Path(tmp) / "model.onnx", INPUT_NAME, output_names
        )
        max_abs_diff = parity_check(model, onnx_path, rows)
        log.info("ONNX parity on %d real rows: max abs diff %.3g", len(rows), max_abs_diff)
        require_parity(
            {"onnx_parity_max_abs_diff": max_abs_diff},
            f"{version.name} v{version.version}",
            settings.parity_tolerance,
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
