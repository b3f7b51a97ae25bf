from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from exporters.price_lstm import (
    check_parity,
    export_window_onnx,
    price_model_spec,
    publish_version,
    script_model,
)
from exporters.triton_config import render_cpu_config, render_gpu_config
from trademaster.contract.parameters import Parameter
from trademaster.features.price_window import N_FEATURES, VOLATILITY_SCALED
from trademaster.price_lstm.model import PriceLSTM, scaling_statistics
from trademaster.training.parity import ExportParityError

W = 30
TAGS = {
    "window": str(W),
    "features": str(N_FEATURES),
    "feature_names": "log_return,log_range,log_body,close_location,relative_volume",
    "feature_service": "price_model_v1",
    "interval": "0.9",
    "outputs": "point,lower,upper",
    "target": "next_log_return",
}


def _windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, W, N_FEATURES)).astype(np.float32)
    windows[:, :, :3] *= rng.uniform(1e-3, 1e-1, size=(n, 1, 1)).astype(np.float32)
    return windows


def _model(seed: int = 0) -> PriceLSTM:
    torch.manual_seed(seed)
    model = PriceLSTM(*scaling_statistics(_windows(200), VOLATILITY_SCALED), VOLATILITY_SCALED)
    torch.nn.init.normal_(model.head.weight, std=0.5)  # a zero head would hide the LSTM
    model.set_interval(1.65)
    return model.eval()


@dataclass(frozen=True)
class Exported:
    model: PriceLSTM
    pt: Path
    onnx: Path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny LSTM: thread hand-offs only slow it down
    directory = tmp_path_factory.mktemp("price_lstm")
    model = _model()
    pt = script_model(model, directory / "model.pt")
    onnx = export_window_onnx(model, _windows(4), directory / "model.onnx")
    yield Exported(model, pt, onnx)
    torch.set_num_threads(threads)


def test_spec_takes_window_matrices_and_returns_three_numbers() -> None:
    spec = price_model_spec("price-prediction-lstm", TAGS)

    assert spec.inputs[0].name == "window"
    assert spec.inputs[0].dims == (W, N_FEATURES)
    assert spec.outputs[0].name == "forecast"
    assert spec.outputs[0].dims == (3,)
    assert spec.runtime == "torchscript"
    assert spec.parameters[Parameter.TASK] == "regression_interval"
    assert spec.parameters[Parameter.FEATURE_SERVICE] == "price_model_v1"
    assert spec.parameters[Parameter.WINDOW] == "30"
    assert spec.parameters[Parameter.FEATURES] == "5"
    assert spec.parameters[Parameter.INTERVAL] == "0.9"
    assert spec.parameters[Parameter.OUTPUTS] == "point,lower,upper"


def test_cpu_config_runs_torchscript_in_the_python_backend() -> None:
    config = render_cpu_config(price_model_spec("price-prediction-lstm", TAGS))

    assert 'backend: "python"' in config
    assert "kind: KIND_CPU" in config
    assert "dynamic_batching {" in config
    assert "dims: [ 30, 5 ]" in config
    assert 'value: { string_value: "torchscript" }' in config
    assert 'value: { string_value: "model.pt" }' in config


def test_gpu_config_serves_the_same_model_pt_natively() -> None:
    config = render_gpu_config(price_model_spec("price-prediction-lstm", TAGS))

    assert 'backend: "pytorch"' in config
    assert 'default_model_filename: "model.pt"' in config
    assert "kind: KIND_GPU" in config
    assert 'name: "window"' in config  # the forward() argument name
    assert 'value: { string_value: "regression_interval" }' in config


def test_torchscript_and_onnx_match_torch_at_any_batch_size(exported: Exported) -> None:
    diffs = check_parity(exported.model, exported.pt, exported.onnx, _windows(300, seed=1))

    assert diffs["torchscript_parity_max_abs_diff"] < 1e-6
    assert diffs["onnx_parity_max_abs_diff"] < 1e-5


def test_scripted_model_keeps_the_calibrated_interval(exported: Exported) -> None:
    loaded = torch.jit.load(str(exported.pt))

    assert float(loaded.interval_halfwidth) == pytest.approx(1.65)


def test_a_diverging_artifact_is_refused(exported: Exported) -> None:
    with pytest.raises(ExportParityError, match="parity_max_abs_diff"):
        check_parity(_model(seed=2), exported.pt, exported.onnx, _windows(50))


def test_version_folder_holds_both_artifacts_and_the_runner(
    exported: Exported, tmp_path: Path
) -> None:
    spec = price_model_spec("price-prediction-lstm", TAGS)
    repo = tmp_path / "repo"

    target = publish_version(repo, spec, 3, exported.pt, [exported.onnx])
    replaced = publish_version(repo, spec, 3, exported.pt, [exported.onnx])

    assert target == replaced == repo / "price-prediction-lstm" / "3"
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx", "model.pt", "model.py"]
    assert [p.name for p in (repo / "price-prediction-lstm").iterdir()] == ["3"]
