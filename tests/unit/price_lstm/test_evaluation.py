from __future__ import annotations

import numpy as np
import pytest

from trademaster.price_lstm.evaluation import (
    SeriesForecasts,
    directional_accuracy,
    forecast_metrics,
    walk_forward_metrics,
)


def _forecasts(
    symbol: str, actual: list[float], point: list[float], scale: float
) -> SeriesForecasts:
    a, p = np.array(actual) * scale, np.array(point) * scale
    forecast = np.stack([p, p - scale, p + scale], axis=1)
    persistence = np.concatenate([[0.0], a[:-1]])
    return SeriesForecasts(symbol, a, forecast, persistence, np.full(len(a), scale))


def test_directional_accuracy_counts_a_zero_forecast_as_half() -> None:
    actual = np.array([1.0, -1.0, 2.0, 0.0, -3.0])
    forecast = np.array([0.5, 0.5, 0.0, 1.0, -1.0])

    # Moves: hit, miss, half, (no move: skipped), hit.
    assert directional_accuracy(actual, forecast) == pytest.approx(2.5 / 4)
    assert directional_accuracy(actual, np.zeros(5)) == 0.5


def test_metrics_compare_against_zero_and_persistence() -> None:
    f = _forecasts("GOOG", [1.0, -2.0, 0.5, 3.0], [0.5, -1.0, 0.0, 1.0], scale=0.01)

    metrics = forecast_metrics(f)

    assert metrics["rmse"] == pytest.approx(0.01 * np.sqrt((0.25 + 1 + 0.25 + 4) / 4))
    assert metrics["zero_rmse"] == pytest.approx(0.01 * np.sqrt((1 + 4 + 0.25 + 9) / 4))
    assert metrics["rmse_ratio_zero"] == pytest.approx(metrics["rmse"] / metrics["zero_rmse"])
    assert metrics["persistence_rmse"] == pytest.approx(0.01 * np.sqrt((1 + 9 + 6.25 + 6.25) / 4))
    assert metrics["coverage"] == 0.75  # the 3.0 move is outside point +- 1
    assert metrics["up_rate"] == 0.75
    assert metrics["n_test"] == 4


def test_overall_metrics_pool_series_in_volatility_units() -> None:
    hourly = _forecasts("EURUSD", [1.0, -1.0], [1.0, -1.0], scale=0.001)
    monthly = _forecasts("BTCUSD", [2.0, 2.0], [0.0, 0.0], scale=0.2)

    metrics = walk_forward_metrics([hourly, monthly])

    assert metrics["eurusd_rmse"] == 0.0
    assert metrics["btcusd_rmse"] == pytest.approx(0.4)
    # In volatility units the errors are 0, 0, 2, 2: hourly counts as much as monthly.
    assert metrics["overall_rmse_z"] == pytest.approx(np.sqrt(2.0))
    assert metrics["overall_zero_rmse_z"] == pytest.approx(np.sqrt(2.5))
    assert metrics["overall_rmse_ratio_zero"] == pytest.approx(np.sqrt(2.0 / 2.5))
    assert metrics["overall_directional_accuracy"] == pytest.approx(0.75)
    assert metrics["macro_rmse_ratio_zero"] == pytest.approx(0.5)
    assert metrics["overall_n_test"] == 4
