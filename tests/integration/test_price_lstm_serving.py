"""price-prediction-lstm end to end: warehouse -> walk-forward training -> MLflow -> export ->
a real `tritonserver` serving the TorchScript model on CPU, compared with torch and ONNX."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tritonclient.http as httpclient

from exporters import price_lstm
from tests.integration.stack import TritonProtocol, isolated_settings, triton_infer
from trademaster import registry
from trademaster.features.price_window import N_FEATURES, WINDOW
from trademaster.launchers.tools import ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.price_lstm.model import PriceLSTM, PriceTrainingConfig
from trademaster.price_lstm.pipeline import MODEL_NAME, REAL_SYMBOLS, train_and_register
from trademaster.price_lstm.walkforward import WalkForwardConfig
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import validate_candidate
from trademaster.warehouse.seed import seed_warehouse

pytestmark = pytest.mark.integration

TOLERANCE = 1e-4
# min_epochs=1: the served model must run its LSTM (an untrained head would hide it).
SMALL_TRAINING = PriceTrainingConfig(hidden=16, epochs=2, min_epochs=1, seed=11)
SMALL_WALK_FORWARD = WalkForwardConfig(n_folds=2)


@dataclass
class Trained:
    settings: PipelineSettings
    candidate: dict[str, Any]
    export: dict[str, Any]
    model: PriceLSTM
    windows: np.ndarray  # real windows from the warehouse, [n, W, F]

    @property
    def version_dir(self) -> Path:
        return self.settings.model_repository / MODEL_NAME / str(self.candidate["version"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("price_lstm")
    settings = isolated_settings(
        root,
        n_users=20,
        n_trades=500,
        n_generated_symbols=5,
        history_business_days=160,
        trade_window_business_days=60,
    )
    seed_warehouse(settings)
    candidate = train_and_register(settings, SMALL_TRAINING, SMALL_WALK_FORWARD)
    version = registry.RegisteredVersion(MODEL_NAME, candidate["version"], candidate["run_id"])
    export = price_lstm.export_version(settings, version)
    model = registry.load_torch_model(settings, version)
    assert isinstance(model, PriceLSTM)
    return Trained(
        settings, candidate, export, model, price_lstm.real_windows(settings, WINDOW, 64)
    )


@pytest.fixture(scope="module")
def server(
    trained: Trained, tools: ServingTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    work = tmp_path_factory.mktemp("price_lstm_triton")
    with TritonServer(
        trained.settings.model_repository, work, models=[MODEL_NAME], tools=tools
    ) as running:
        yield running


def _torch_forecast(model: torch.nn.Module, windows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.asarray(model(torch.from_numpy(windows)).numpy())


def _served_forecast(protocol: TritonProtocol, url: str, windows: np.ndarray) -> np.ndarray:
    (forecast,) = triton_infer(protocol, url, MODEL_NAME, {"window": windows}, ("forecast",))
    return forecast


def test_walk_forward_metrics_cover_every_real_series(trained: Trained) -> None:
    metrics = trained.candidate["metrics"]

    for symbol in REAL_SYMBOLS:
        prefix = symbol.lower()
        assert metrics[f"{prefix}_n_test"] > 0
        assert 0.0 <= metrics[f"{prefix}_coverage"] <= 1.0
        assert metrics[f"{prefix}_rmse_ratio_persistence"] < 1.0
        assert 0.0 <= metrics[f"{prefix}_directional_accuracy"] <= 1.0
    assert 0.8 <= metrics["overall_coverage"] <= 1.0
    assert metrics["overall_rmse_ratio_zero"] < 1.05
    assert metrics["fold1_best_epoch"] >= 1


def test_registered_version_carries_its_calibrated_interval(trained: Trained) -> None:
    version = registry.RegisteredVersion(
        MODEL_NAME, trained.candidate["version"], trained.candidate["run_id"]
    )

    tags = registry.version_tags(trained.settings, version)

    assert tags["window"] == str(WINDOW)
    assert tags["features"] == str(N_FEATURES)
    assert tags["feature_service"] == "price_model_v1"
    assert float(tags["interval_halfwidth_z"]) == pytest.approx(
        trained.candidate["metrics"]["interval_halfwidth_z"]
    )
    assert float(trained.model.interval_halfwidth) == pytest.approx(
        float(tags["interval_halfwidth_z"])
    )


def test_export_parity_on_real_windows(trained: Trained) -> None:
    assert trained.export["torchscript_parity_max_abs_diff"] < TOLERANCE
    assert trained.export["onnx_parity_max_abs_diff"] < TOLERANCE
    assert trained.export["parity_windows"] > 1_000
    assert sorted(p.name for p in trained.version_dir.iterdir()) == [
        "model.onnx",
        "model.pt",
        "model.py",
    ]


def test_promotion_rule_runs_through_the_generic_validation(trained: Trained) -> None:
    definition = catalog_definition(MODEL_NAME)

    outcome = validate_candidate(
        trained.settings, definition.name, definition.training.decide, trained.candidate
    )

    assert outcome["candidate_version"] == trained.candidate["version"]
    assert "zero-return" in outcome["reason"]


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_served_forecast_matches_torch(
    trained: Trained, server: TritonServer, protocol: TritonProtocol, batch: int
) -> None:
    windows = trained.windows[:batch]
    url = server.grpc_url if protocol == "grpc" else server.http_url

    served = _served_forecast(protocol, url, windows)

    assert served.dtype == np.float32
    assert served.shape == (batch, 3)
    np.testing.assert_allclose(served, _torch_forecast(trained.model, windows), atol=TOLERANCE)
    point, lower, upper = served.T
    assert (lower < point).all()
    assert (point < upper).all()
    assert np.abs(point).max() > 0  # the LSTM path runs, not a zero head


def test_onnx_artifact_agrees_with_torch_and_the_server(
    trained: Trained, server: TritonServer
) -> None:
    windows = trained.windows[:16]
    session = ort.InferenceSession(
        str(trained.version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )

    onnx = np.asarray(session.run(["forecast"], {"window": windows})[0])

    np.testing.assert_allclose(onnx, _torch_forecast(trained.model, windows), atol=TOLERANCE)
    np.testing.assert_allclose(
        onnx, _served_forecast("grpc", server.grpc_url, windows), atol=TOLERANCE
    )


def test_served_config_tells_the_gateway_how_to_read_the_model(server: TritonServer) -> None:
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        config = client.get_model_config(MODEL_NAME)
    finally:
        client.close()

    parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
    assert parameters["task"] == "regression_interval"
    assert parameters["feature_service"] == "price_model_v1"
    assert parameters["window"] == str(WINDOW)
    assert parameters["features"] == str(N_FEATURES)
    assert parameters["interval"] == "0.9"
    assert parameters["outputs"] == "point,lower,upper"
    assert parameters["runtime"] == "torchscript"
    assert [int(d) for d in config["input"][0]["dims"]] == [WINDOW, N_FEATURES]
