"""price-prediction-lstm: TorchScript and ONNX export with parity checks, Triton configs, version.

Both artifacts go into the same version folder. The CPU config (python backend) serves
``model.pt`` with TorchScript; the GPU config uses Triton's native ``pytorch`` backend on the
same ``model.pt``: one artifact for both targets, no FP16 TensorRT rebuild of a recurrent graph
whose outputs are returns of order 1e-4 (hourly FX), and the module is scripted rather than
traced, so nothing in it is pinned to the CPU it was exported on. ``model.onnx`` (dynamic batch)
ships beside it, parity-checked, for ONNX Runtime deployments.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx, parity_check, torchscript_parity_check
from exporters.triton_config import RUNNER_TEMPLATE, publish_version_folder, write_model_configs
from trademaster import registry
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.features.price_window import WINDOW_COLUMN, window_rows
from trademaster.settings import PipelineSettings
from trademaster.training.parity import PARITY_TOLERANCE, require_parity
from trademaster.warehouse import schema
from trademaster.warehouse.read import read_table

log = logging.getLogger(__name__)

PARITY_WINDOWS = 2_000
INPUT_NAME = "window"
OUTPUT_NAME = "forecast"
ONNX_FILE = "model.onnx"


def price_model_spec(name: str, tags: dict[str, str]) -> ModelSpec:
    """The served model, from the registered version's tags."""
    window, n_features = int(tags[Parameter.WINDOW]), int(tags[Parameter.FEATURES])
    outputs = tags[Parameter.OUTPUTS].split(",")
    return ModelSpec(
        name=name,
        inputs=(TensorSpec(INPUT_NAME, "FP32", (window, n_features)),),
        outputs=(TensorSpec(OUTPUT_NAME, "FP32", (len(outputs),)),),
        max_batch_size=256,
        # As for the tabular models: batch what queues up, never wait for more.
        preferred_batch_sizes=(),
        max_queue_delay_us=0,
        runtime="torchscript",
        parameters={
            Parameter.TASK: TaskKind.REGRESSION_INTERVAL.value,
            Parameter.FEATURE_SERVICE: tags[Parameter.FEATURE_SERVICE],
            Parameter.WINDOW_FEATURE: WINDOW_COLUMN,
            Parameter.WINDOW: str(window),
            Parameter.FEATURES: str(n_features),
            Parameter.FEATURE_NAMES: tags[Parameter.FEATURE_NAMES],
            Parameter.INTERVAL: tags[Parameter.INTERVAL],
            Parameter.OUTPUTS: ",".join(outputs),
            Parameter.TARGET: tags[Parameter.TARGET],
        },
    )


def script_model(model: torch.nn.Module, path: Path) -> Path:
    """Save ``model`` as scripted TorchScript (device-agnostic, dynamic batch)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.jit.script(model.eval()).save(str(path))
    return path


def export_window_onnx(model: torch.nn.Module, example: np.ndarray, path: Path) -> Path:
    """ONNX with a dynamic batch; ``example`` is a few real windows ``[n, W, F]``."""
    with warnings.catch_warnings():
        # nn.LSTM sizes its zero initial state from the batch; the tracer and the exporter warn
        # that a batch size may get baked in. ONNX's LSTM op takes no initial state here and
        # sizes it at run time: check_parity runs batch 1 and thousands to prove it.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch")
        return export_onnx(model, torch.from_numpy(example), path, INPUT_NAME, [OUTPUT_NAME])


def real_windows(settings: PipelineSettings, window: int, n: int) -> np.ndarray:
    """Up to ``n`` windows ``[n, W, F]`` from the warehouse's bars, every symbol's newest
    included (the ones served)."""
    rows = window_rows(read_table(settings, schema.market_data), window)
    newest = rows.groupby("symbol")["bar_ts"].idxmax().to_numpy()
    rest = np.setdiff1d(rows.index.to_numpy(), newest)
    rng = np.random.default_rng(settings.seed)
    extra = rng.choice(rest, size=min(len(rest), max(0, n - len(newest))), replace=False)
    chosen = rows.loc[np.concatenate([newest, np.sort(extra)]), WINDOW_COLUMN]
    return np.stack(chosen.to_list()).reshape(len(chosen), window, -1).astype(np.float32)


def check_parity(
    model: torch.nn.Module,
    pt: Path,
    onnx: Path,
    windows: np.ndarray,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, float]:
    """Max abs differences against torch, on all windows at once and on one alone."""
    diffs = {
        "torchscript_parity_max_abs_diff": max(
            torchscript_parity_check(model, pt, windows),
            torchscript_parity_check(model, pt, windows[:1]),
        ),
        "onnx_parity_max_abs_diff": max(
            parity_check(model, onnx, windows), parity_check(model, onnx, windows[:1])
        ),
    }
    require_parity(diffs, f"on {len(windows)} real windows", tolerance)
    return diffs


def publish_version(
    repo: Path, spec: ModelSpec, version: int, artifact: Path, extras: Sequence[Path]
) -> Path:
    """``write_model_version`` plus ``extras`` in the same folder, published in one rename,
    so a server scanning the model never sees a version without its second artifact."""
    files = {spec.artifact_name: artifact, "model.py": RUNNER_TEMPLATE}
    files.update({extra.name: extra for extra in extras})
    return publish_version_folder(repo, spec.name, version, files, overwrite=True)


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    """TorchScript + ONNX export, parity on real windows, configs, version folder."""
    tags = registry.version_tags(settings, version)
    spec = price_model_spec(version.name, tags)
    model = registry.load_torch_model(settings, version)
    windows = real_windows(settings, int(tags["window"]), PARITY_WINDOWS)
    with tempfile.TemporaryDirectory() as tmp:
        pt = script_model(model, Path(tmp) / "model.pt")
        onnx = export_window_onnx(model, windows[:4], Path(tmp) / ONNX_FILE)
        diffs = check_parity(model, pt, onnx, windows, settings.parity_tolerance)
        log.info("parity on %d real windows: %s", len(windows), diffs)
        write_model_configs(settings.model_repository, spec)
        target = publish_version(settings.model_repository, spec, version.version, pt, [onnx])
    registry.log_version_metrics(settings, version, diffs)
    return {
        "model_name": version.name,
        "version": version.version,
        "path": str(target),
        "parity_windows": len(windows),
        **diffs,
    }
