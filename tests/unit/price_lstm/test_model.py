from __future__ import annotations

import numpy as np
import pytest
import torch

from trademaster.features.price_window import N_FEATURES, VOLATILITY_SCALED
from trademaster.price_lstm.model import (
    PriceLSTM,
    PriceTrainingConfig,
    fit_price_model,
    predict,
    scaling_statistics,
    window_volatility,
)

W = 20


def _windows(n: int, seed: int = 0, scale: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, W, N_FEATURES)).astype(np.float32)
    windows[:, :, :3] *= scale  # return-like features carry the series' volatility
    windows[:, :, 1] = np.abs(windows[:, :, 1])
    return windows


def _model(windows: np.ndarray, seed: int = 0) -> PriceLSTM:
    torch.manual_seed(seed)
    model = PriceLSTM(*scaling_statistics(windows, VOLATILITY_SCALED), VOLATILITY_SCALED, hidden=8)
    torch.nn.init.normal_(model.head.weight, std=0.5)
    torch.nn.init.normal_(model.head.bias, std=0.1)
    return model.eval()


def test_an_untrained_model_forecasts_exactly_zero() -> None:
    windows = _windows(16)
    model = PriceLSTM(*scaling_statistics(windows, VOLATILITY_SCALED), VOLATILITY_SCALED)

    forecast = predict(model, windows)

    assert forecast.shape == (16, 3)
    assert not forecast.any()


def test_interval_is_the_calibrated_number_of_window_volatilities() -> None:
    windows = _windows(32, seed=1)
    model = _model(windows)
    model.set_interval(1.7)

    point, lower, upper = predict(model, windows).T

    rms = np.sqrt(np.mean(windows[:, :, 0].astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(window_volatility(windows), rms, rtol=1e-5)
    np.testing.assert_allclose(upper - point, 1.7 * rms, rtol=1e-4)
    np.testing.assert_allclose(point - lower, 1.7 * rms, rtol=1e-4)


def test_forecast_scales_with_the_series_volatility() -> None:
    # Volatility normalisation inside the module: an hourly series (small returns) and a
    # monthly one (large returns) with the same shape get the same forecast in their units.
    windows = _windows(64, seed=2)
    model = _model(windows)
    model.set_interval(1.5)
    louder = windows.copy()
    louder[:, :, :3] *= 40.0

    np.testing.assert_allclose(
        predict(model, louder), 40.0 * predict(model, windows), rtol=1e-4, atol=1e-7
    )


def test_scaling_statistics_standardise_the_training_windows() -> None:
    windows = _windows(500, seed=3, scale=0.03)
    model = _model(windows)

    with torch.no_grad():
        scaled, _ = model.volatility_normalised(torch.from_numpy(windows))
        standardised = (scaled - model.feature_mean) / model.feature_std

    flat = standardised.reshape(-1, N_FEATURES).numpy()
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(flat.std(axis=0), 1.0, atol=1e-3)
    assert {"feature_mean", "feature_std", "interval_halfwidth"} <= set(model.state_dict())


def test_invalid_interval_is_refused() -> None:
    model = _model(_windows(4))

    with pytest.raises(ValueError, match="finite"):
        model.set_interval(float("inf"))


def _autoregressive(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows whose normalised returns follow AR(1) with phi = 0.4, at scales 1e-3 .. 5e-2."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal((n, W + 1))
    z = np.zeros_like(shocks)
    z[:, 0] = shocks[:, 0]
    for t in range(1, W + 1):
        z[:, t] = 0.4 * z[:, t - 1] + np.sqrt(1 - 0.16) * shocks[:, t]
    scale = np.exp(rng.uniform(np.log(1e-3), np.log(5e-2), n))[:, None]
    returns = z * scale
    windows = rng.normal(size=(n, W, N_FEATURES))
    windows[:, :, 0] = returns[:, :W]
    windows[:, :, 1] = np.abs(windows[:, :, 1]) * scale
    windows[:, :, 2] *= scale
    return windows.astype(np.float32), returns[:, W].astype(np.float32)


def test_training_beats_the_zero_forecast_where_there_is_signal() -> None:
    x, y = _autoregressive(10_000, seed=4)
    test_x, test_y = _autoregressive(3_000, seed=5)
    config = PriceTrainingConfig(hidden=16, epochs=6, patience=2, learning_rate=5e-3)

    model, info = fit_price_model(
        x[:8_000], y[:8_000], x[8_000:], y[8_000:], VOLATILITY_SCALED, config
    )

    point = predict(model, test_x)[:, 0]
    scale = window_volatility(test_x)
    ratio = np.sqrt(np.mean(((test_y - point) / scale) ** 2) / np.mean((test_y / scale) ** 2))
    assert info["best_epoch"] >= 1
    assert info["inner_validation_mse_z"] < info["inner_validation_zero_mse_z"]
    assert ratio < 0.96  # the best possible is sqrt(1 - 0.4**2) ~ 0.92


def test_min_epochs_keeps_a_trained_model_even_without_signal() -> None:
    x, _ = _autoregressive(2_000, seed=6)
    noise = np.random.default_rng(7).normal(size=2_000).astype(np.float32) * 0.01
    config = PriceTrainingConfig(hidden=8, epochs=2, min_epochs=1)

    model, info = fit_price_model(
        x[:1_500], noise[:1_500], x[1_500:], noise[1_500:], VOLATILITY_SCALED, config
    )

    assert info["best_epoch"] >= 1
    assert model.head.weight.abs().sum() > 0


def test_min_epochs_cannot_exceed_epochs() -> None:
    with pytest.raises(ValueError, match="min_epochs"):
        PriceTrainingConfig(epochs=2, min_epochs=3)
