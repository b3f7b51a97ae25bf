"""Export torch modules to ONNX and TorchScript, with a dynamic batch dimension, and check parity.

ONNX goes through the TorchScript-based exporter (`dynamo=False`) by default: on these models it
takes ~50 ms instead of ~3 s, emits the requested opset directly (the dynamo exporter builds
opset 18 and converts down) and has no dependency on `onnxscript`. `dynamo=True` is available.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from trademaster.training.parity import max_abs_diff

BATCH_AXIS_NAME = "batch"


def export_onnx(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    output_names: Sequence[str],
    opset: int = 17,
    dynamo: bool = False,
) -> Path:
    """Write `module` (in eval mode) to `path` as ONNX, dimension 0 of every tensor dynamic."""
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation on every call.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        if dynamo:
            batch = torch.export.Dim(BATCH_AXIS_NAME, min=1)
            shapes: dict[str, Any] = {"external_data": False, "dynamic_shapes": ({0: batch},)}
        else:
            axes = {name: {0: BATCH_AXIS_NAME} for name in (input_name, *output_names)}
            shapes = {"dynamic_axes": axes}
        with torch.no_grad():
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[input_name],
                output_names=list(output_names),
                opset_version=opset,
                dynamo=dynamo,
                **shapes,
            )
    return path


def export_torchscript(module: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace `module` (in eval mode) on `example` and save it as TorchScript at `path`."""
    module = module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(module, example)
        traced.save(str(path))
    return path


def _torch_outputs(module: torch.nn.Module, rows: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        result = module.eval()(torch.from_numpy(rows))
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    return [t.detach().cpu().numpy() for t in outputs]


def _max_abs_diff(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> float:
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} reference outputs but {len(actual)} exported outputs")
    return max(
        (max_abs_diff(want, got) for want, got in zip(expected, actual, strict=True)),
        default=0.0,
    )


def parity_check(module: torch.nn.Module, onnx_path: Path, rows: np.ndarray) -> float:
    """Max abs difference between `module` and the ONNX model under ONNX Runtime on `rows`."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: rows}
    exported = [np.asarray(out) for out in session.run(None, feed)]
    return _max_abs_diff(_torch_outputs(module, rows), exported)


def torchscript_parity_check(module: torch.nn.Module, pt_path: Path, rows: np.ndarray) -> float:
    """Max abs difference between `module` and the saved TorchScript module on `rows`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        loaded = torch.jit.load(str(pt_path), map_location="cpu")
    return _max_abs_diff(_torch_outputs(module, rows), _torch_outputs(loaded, rows))
