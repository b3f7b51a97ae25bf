from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporters.onnx_export import (
    export_onnx,
    export_torchscript,
    parity_check,
    torchscript_parity_check,
)


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 6)).astype(np.float32)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo"])
def test_onnx_export_has_dynamic_batch_and_matches_torch(tmp_path: Path, dynamo: bool) -> None:
    module = _mlp()
    path = export_onnx(
        module, torch.randn(4, 6), tmp_path / "model.onnx", "features", ["score"], dynamo=dynamo
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["score"]
    for batch in (1, 1000):
        (scores,) = session.run(None, {"features": _rows(batch)})
        assert scores.shape == (batch, 1)
        assert parity_check(module, path, _rows(batch)) < 1e-5


def test_torchscript_export_matches_torch(tmp_path: Path) -> None:
    module = _mlp()
    path = export_torchscript(module, torch.randn(4, 6), tmp_path / "model.pt")

    assert path.is_file()
    for batch in (1, 1000):
        assert torchscript_parity_check(module, path, _rows(batch)) < 1e-6


def test_parity_check_detects_a_different_model(tmp_path: Path) -> None:
    path = export_onnx(_mlp(), torch.randn(2, 6), tmp_path / "m.onnx", "features", ["score"])
    other = _mlp()
    head = list(other.children())[-1]
    assert isinstance(head, torch.nn.Linear)
    with torch.no_grad():
        head.bias.add_(1.0)

    assert parity_check(other, path, _rows(8)) == pytest.approx(1.0, abs=1e-5)
