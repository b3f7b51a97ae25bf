"""Walk-forward training, conformal calibration and testing of price-prediction-lstm.

Every fold trains a fresh model on all generated symbols plus each real series' windows before
the fold's calibration slice (the newest of those real windows held out for early stopping),
calibrates the 90% interval on that slice (the real series pooled, scores in volatility units)
and forecasts the fold's test block. Scaling statistics come from the fold's training windows
only, and a window's volatility from the window itself. The generated symbols are independent
draws (their calendar is recent, but they carry no information about the real histories), so
training on all of them leaks nothing into the real series' tests.

The last fold's model, with its own calibration baked in, is the one that gets registered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch import nn

from trademaster.features.price_window import VOLATILITY_SCALED
from trademaster.price_lstm.conformal import (
    INTERVAL_COVERAGE,
    conformal_quantile,
    interval_coverage,
    normalised_scores,
)
from trademaster.price_lstm.dataset import LabelledWindows, split_tail, stack
from trademaster.price_lstm.evaluation import (
    SeriesForecasts,
    concat_forecasts,
    forecast_metrics,
    walk_forward_metrics,
)
from trademaster.price_lstm.model import (
    PriceLSTM,
    PriceTrainingConfig,
    fit_price_model,
    predict,
    window_volatility,
)
from trademaster.price_lstm.walkforward import Fold, WalkForwardConfig, walk_forward_folds
from trademaster.training.determinism import torch_threads

log = logging.getLogger(__name__)

# The newest share of each training series is the inner validation set for early stopping.
INNER_VALIDATION_FRACTION = 0.15


@dataclass(frozen=True)
class EvaluationBlock:
    fold: int
    windows: LabelledWindows


@dataclass
class WalkForwardResult:
    model: PriceLSTM  # the last fold's, calibrated on the last calibration slice
    interval_halfwidth: float  # in volatility units, baked into ``model``
    tests: list[EvaluationBlock]
    metrics: dict[str, float]
    # Every fold's forecasts on its own test block, per series, folds concatenated.
    forecasts: list[SeriesForecasts] = field(default_factory=list)
    test_start: dict[str, str] = field(default_factory=dict)


def forecasts_for(model: nn.Module, windows: LabelledWindows) -> SeriesForecasts:
    return SeriesForecasts(
        windows.symbol,
        windows.targets.astype(np.float64),
        predict(model, windows.windows).astype(np.float64),
        windows.persistence.astype(np.float64),
        window_volatility(windows.windows).astype(np.float64),
    )


def forecast_tests(model: nn.Module, tests: Sequence[EvaluationBlock]) -> list[SeriesForecasts]:
    """``model``'s forecasts on every test block, one entry per series (folds concatenated)."""
    by_symbol: dict[str, list[SeriesForecasts]] = {}
    for block in tests:
        by_symbol.setdefault(block.windows.symbol, []).append(forecasts_for(model, block.windows))
    return [concat_forecasts(parts, symbol) for symbol, parts in by_symbol.items()]


def final_block_forecasts(
    model: nn.Module, tests: Sequence[EvaluationBlock]
) -> list[SeriesForecasts]:
    """``model`` on the last fold's test blocks, in volatility units, one entry per series:
    the windows that neither this version nor, with the same data and split, any earlier one
    trained on."""
    last = max(block.fold for block in tests)
    return [forecasts_for(model, b.windows).scaled() for b in tests if b.fold == last]


def final_block_metrics(model: nn.Module, tests: Sequence[EvaluationBlock]) -> dict[str, float]:
    """``model`` on the last fold's test blocks, pooled (see ``final_block_forecasts``)."""
    pooled = forecast_metrics(concat_forecasts(final_block_forecasts(model, tests), "final"))
    return {
        "final_block_rmse_z": pooled["rmse"],
        "final_block_rmse_ratio_zero": pooled["rmse_ratio_zero"],
        "final_block_coverage": pooled["coverage"],
    }


def evaluate_model(model: nn.Module, tests: Sequence[EvaluationBlock]) -> dict[str, float]:
    """Walk-forward metrics of a fixed model (e.g. the champion) on the test blocks."""
    return {
        **walk_forward_metrics(forecast_tests(model, tests)),
        **final_block_metrics(model, tests),
    }


def calibrate(model: PriceLSTM, calibration: Sequence[LabelledWindows], coverage: float) -> float:
    """Sets ``model``'s interval from its normalised residuals on ``calibration``."""
    windows, targets = stack(calibration)
    point = predict(model, windows)[:, 0]
    scores = normalised_scores(targets, point, window_volatility(windows))
    halfwidth = conformal_quantile(scores, coverage)
    model.set_interval(halfwidth)
    return halfwidth


@dataclass(frozen=True)
class FoldData:
    train: list[LabelledWindows]
    validation: list[LabelledWindows]  # inner validation (early stopping)
    calibration: list[LabelledWindows]
    test: list[LabelledWindows]


def fold_data(
    series: Mapping[str, LabelledWindows], real: Sequence[str], folds: Mapping[str, Fold]
) -> FoldData:
    """One fold's parts: every generated symbol trains; each real series contributes its
    windows before the fold's calibration slice, the newest of them held out for early
    stopping (so it is judged on the series that are tested)."""
    generated = [windows for symbol, windows in series.items() if symbol not in real]
    heads, tails = split_tail(
        [series[s].part(folds[s].train) for s in real], INNER_VALIDATION_FRACTION
    )
    return FoldData(
        train=generated + heads,
        validation=tails,
        calibration=[series[s].part(folds[s].calibration) for s in real],
        test=[series[s].part(folds[s].test) for s in real],
    )


def run_walk_forward(
    series: Mapping[str, LabelledWindows],
    real: Sequence[str],
    training: PriceTrainingConfig,
    walk_forward: WalkForwardConfig,
    coverage: float = INTERVAL_COVERAGE,
) -> WalkForwardResult:
    # Tiny LSTMs: thread hand-offs cost more than they save, on a shared two-core machine.
    with torch_threads(training.threads):
        return _run_walk_forward(series, real, training, walk_forward, coverage)


@dataclass
class FoldOutcome:
    model: PriceLSTM
    halfwidth: float
    forecasts: list[SeriesForecasts]
    metrics: dict[str, float]


def run_fold(k: int, data: FoldData, training: PriceTrainingConfig, coverage: float) -> FoldOutcome:
    """Train, calibrate the interval, forecast the test blocks."""
    model, info = fit_price_model(
        *stack(data.train), *stack(data.validation), VOLATILITY_SCALED, training
    )
    halfwidth = calibrate(model, data.calibration, coverage)
    forecasts = [forecasts_for(model, windows) for windows in data.test]
    pooled = forecast_metrics(concat_forecasts([f.scaled() for f in forecasts], "fold"))
    log.info(
        "fold %d: interval +-%.3f vol, test coverage %.3f, RMSE / zero %.5f, best epoch %d",
        k,
        halfwidth,
        pooled["coverage"],
        pooled["rmse_ratio_zero"],
        info["best_epoch"],
    )
    metrics = {
        "interval_halfwidth_z": halfwidth,
        "coverage": pooled["coverage"],
        "rmse_ratio_zero": pooled["rmse_ratio_zero"],
        "calibration_windows": float(sum(len(c) for c in data.calibration)),
        **info,
    }
    return FoldOutcome(model, halfwidth, forecasts, {f"fold{k}_{m}": v for m, v in metrics.items()})


def _run_walk_forward(
    series: Mapping[str, LabelledWindows],
    real: Sequence[str],
    training: PriceTrainingConfig,
    walk_forward: WalkForwardConfig,
    coverage: float,
) -> WalkForwardResult:
    folds = {symbol: walk_forward_folds(len(series[symbol]), walk_forward) for symbol in real}
    tests: list[EvaluationBlock] = []
    collected: dict[str, list[SeriesForecasts]] = {}
    metrics: dict[str, float] = {}
    outcome: FoldOutcome | None = None
    for k in range(walk_forward.n_folds):
        data = fold_data(series, real, {s: folds[s][k] for s in real})
        outcome = run_fold(k, data, training, coverage)
        tests += [EvaluationBlock(k, windows) for windows in data.test]
        for f in outcome.forecasts:
            collected.setdefault(f.symbol, []).append(f)
        metrics.update(outcome.metrics)
    assert outcome is not None  # n_folds >= 1
    forecasts = [concat_forecasts(parts, s) for s, parts in collected.items()]
    metrics.update(walk_forward_metrics(forecasts))
    metrics.update(final_block_metrics(outcome.model, tests))
    metrics["interval_halfwidth_z"] = outcome.halfwidth
    metrics["interval_coverage_target"] = coverage
    metrics.update(_generated_coverage(outcome.model, series, real))
    test_start = {s: str(pd.Timestamp(series[s].target_ts[folds[s][0].test.start])) for s in real}
    return WalkForwardResult(
        outcome.model, outcome.halfwidth, tests, metrics, forecasts, test_start
    )


def _generated_coverage(
    model: PriceLSTM, series: Mapping[str, LabelledWindows], real: Sequence[str]
) -> dict[str, float]:
    """Diagnostic only: the final interval on the generated symbols it trained on."""
    generated = [windows for symbol, windows in series.items() if symbol not in real]
    if not generated:
        return {}
    windows, targets = stack(generated)
    forecast = predict(model, windows)
    inside = interval_coverage(targets, forecast[:, 1], forecast[:, 2])
    return {"generated_in_sample_coverage": inside}
