"""Forecast metrics for price-prediction-lstm against zero-return and persistence baselines.

Per series, errors are in log-return units. Overall, series of different frequencies (hourly
FX, daily equity, monthly crypto) are pooled in units of each window's realised volatility,
since raw RMSE across them would be the monthly series' alone.

Directional accuracy counts windows whose actual return is non-zero; a forecast of exactly zero
scores one half (it calls no direction), so the zero-return baseline scores 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trademaster.price_lstm.conformal import interval_coverage


@dataclass(frozen=True)
class SeriesForecasts:
    symbol: str
    actual: np.ndarray  # [n] next log returns
    forecast: np.ndarray  # [n, 3] point, lower, upper
    persistence: np.ndarray  # [n] last return of each window
    volatility: np.ndarray  # [n] realised volatility of each window

    def scaled(self) -> SeriesForecasts:
        """The same forecasts in units of each window's volatility."""
        v = self.volatility.astype(np.float64)
        return SeriesForecasts(
            self.symbol,
            self.actual / v,
            self.forecast / v[:, None],
            self.persistence / v,
            np.ones_like(v),
        )


def concat_forecasts(parts: Sequence[SeriesForecasts], symbol: str) -> SeriesForecasts:
    return SeriesForecasts(
        symbol,
        np.concatenate([p.actual for p in parts]),
        np.concatenate([p.forecast for p in parts]),
        np.concatenate([p.persistence for p in parts]),
        np.concatenate([p.volatility for p in parts]),
    )


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    diff = np.asarray(actual, np.float64) - np.asarray(forecast, np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def directional_accuracy(actual: np.ndarray, forecast: np.ndarray) -> float:
    moved = actual != 0
    if not moved.any():
        return float("nan")
    hits = np.where(forecast[moved] == 0, 0.5, np.sign(forecast[moved]) == np.sign(actual[moved]))
    return float(np.mean(hits))


def forecast_metrics(f: SeriesForecasts) -> dict[str, float]:
    point, lower, upper = f.forecast[:, 0], f.forecast[:, 1], f.forecast[:, 2]
    model, zero, persistence = (
        rmse(f.actual, point),
        rmse(f.actual, np.zeros_like(point)),
        rmse(f.actual, f.persistence),
    )
    return {
        "n_test": float(len(f.actual)),
        "rmse": model,
        "zero_rmse": zero,
        "persistence_rmse": persistence,
        "rmse_ratio_zero": model / zero,
        "rmse_ratio_persistence": model / persistence,
        "directional_accuracy": directional_accuracy(f.actual, point),
        "persistence_directional_accuracy": directional_accuracy(f.actual, f.persistence),
        "up_rate": float(np.mean(f.actual > 0)),
        "coverage": interval_coverage(f.actual, lower, upper),
        "mean_interval_width": float(np.mean(upper - lower)),
    }


def walk_forward_metrics(by_series: Sequence[SeriesForecasts]) -> dict[str, float]:
    """``<symbol>_<metric>`` per series, ``overall_<metric>`` pooled in volatility units and
    ``macro_rmse_ratio_zero`` / ``macro_coverage``: the plain mean over series."""
    metrics: dict[str, float] = {}
    for f in by_series:
        metrics.update({f"{f.symbol.lower()}_{k}": v for k, v in forecast_metrics(f).items()})
    pooled = concat_forecasts([f.scaled() for f in by_series], "overall")
    overall = forecast_metrics(pooled)
    metrics.update({f"overall_{k}": v for k, v in overall.items()})
    metrics["overall_mean_interval_width_z"] = metrics.pop("overall_mean_interval_width")
    for key in ("rmse", "zero_rmse", "persistence_rmse"):
        metrics[f"overall_{key}_z"] = metrics.pop(f"overall_{key}")
    per_series = [forecast_metrics(f) for f in by_series]
    metrics["macro_rmse_ratio_zero"] = float(np.mean([m["rmse_ratio_zero"] for m in per_series]))
    metrics["macro_coverage"] = float(np.mean([m["coverage"] for m in per_series]))
    return metrics
