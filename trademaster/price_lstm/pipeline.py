"""Training and validation of price-prediction-lstm, as run by the pipeline.

Data: the warehouse's ``market_data`` (generated SYN### daily symbols, all for training, and the
real GOOG daily, EURUSD hourly and BTCUSD monthly histories, whose earlier parts are trained
on). Evaluation: expanding-origin walk-forward on the real histories
(``trademaster.price_lstm.backtest``) against the zero-return and persistence baselines,
with the split-conformal 90% interval's coverage measured on the test blocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from trademaster import price_lstm, registry
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import Parameter
from trademaster.features.price_window import FEATURE_NAMES, VOLATILITY_SCALED, WINDOW
from trademaster.monitoring.drift_check import calibrated_offline
from trademaster.monitoring.profile import PROFILE_ARTIFACT, FeatureProfile, build_profile
from trademaster.monitoring.reference import REFERENCE_DAYS
from trademaster.price_lstm.backtest import (
    WalkForwardResult,
    evaluate_model,
    final_block_forecasts,
    run_walk_forward,
)
from trademaster.price_lstm.conformal import INTERVAL_COVERAGE
from trademaster.price_lstm.dataset import LabelledWindows, labelled_series
from trademaster.price_lstm.evaluation import SeriesForecasts, concat_forecasts
from trademaster.price_lstm.model import PriceTrainingConfig
from trademaster.price_lstm.walkforward import WalkForwardConfig
from trademaster.settings import PipelineSettings
from trademaster.training import fingerprint, gates
from trademaster.training.evaluation import prefixed
from trademaster.training.promotion import candidate_report, champion_model
from trademaster.warehouse import schema
from trademaster.warehouse.read import read_table

log = logging.getLogger(__name__)

MODEL_NAME = ModelName.PRICE.value
FEATURE_SERVICE = "price_model_v1"
REAL_SYMBOLS = ("GOOG", "EURUSD", "BTCUSD")
OUTPUTS = ("point", "lower", "upper")
TARGET = "next_log_return"
COVERAGE_TOLERANCE = 0.03


def train_and_register(
    settings: PipelineSettings,
    training: PriceTrainingConfig | None = None,
    walk_forward: WalkForwardConfig | None = None,
) -> dict[str, Any]:
    """Walk-forward training and evaluation; registers the last fold's model as ``challenger``."""
    training = training or PriceTrainingConfig(seed=settings.seed)
    walk_forward = walk_forward or WalkForwardConfig()
    started = time.perf_counter()
    market = read_table(settings, schema.market_data)
    trained_on = fingerprint.training_fingerprint(
        {"market_data": fingerprint.frame_digest(market)},
        fingerprint.package_code(price_lstm),
        {
            **{f"training_{key}": value for key, value in vars(training).items()},
            **{f"walk_forward_{key}": value for key, value in vars(walk_forward).items()},
            "window": WINDOW,
            "real_symbols": ",".join(REAL_SYMBOLS),
        },
    )
    reused = fingerprint.reused_candidate(settings, MODEL_NAME, trained_on)
    if reused is not None:
        return reused
    series = labelled_series(market, WINDOW)
    missing = [symbol for symbol in REAL_SYMBOLS if symbol not in series]
    if missing:
        raise ValueError(f"market_data lacks the real histories {missing}; rebuild the warehouse")
    result = run_walk_forward(series, REAL_SYMBOLS, training, walk_forward)
    elapsed = time.perf_counter() - started
    champion = champion_model(settings, MODEL_NAME)
    champion_metrics = (
        {} if champion is None else prefixed("champion", evaluate_model(champion, result.tests))
    )
    metrics = {
        **champion_metrics,
        **result.metrics,
        **gates.record(GATE_RULES, gate_intervals(result, champion)),
        "training_seconds": elapsed,
    }
    log.info(
        "walk-forward: RMSE / zero-return %.4f, coverage %.3f, directional accuracy %.3f (%.1f s)",
        metrics["overall_rmse_ratio_zero"],
        metrics["overall_coverage"],
        metrics["overall_directional_accuracy"],
        elapsed,
    )
    generated = sorted(set(series) - set(REAL_SYMBOLS))
    example = series[REAL_SYMBOLS[0]].windows[-64:]
    version = registry.log_torch_model(
        settings,
        MODEL_NAME,
        result.model,
        example=example,
        params={
            "feature_service": FEATURE_SERVICE,
            "window": WINDOW,
            "features": ",".join(FEATURE_NAMES),
            "hidden": training.hidden,
            "epochs": training.epochs,
            "min_epochs": training.min_epochs,
            "learning_rate": training.learning_rate,
            "seed": training.seed,
            "n_folds": walk_forward.n_folds,
            "first_test_fraction": walk_forward.first_test_fraction,
            "calibration_fraction": walk_forward.calibration_fraction,
            "real_symbols": ",".join(REAL_SYMBOLS),
            "generated_symbols": len(generated),
            **{f"test_start_{s.lower()}": start for s, start in result.test_start.items()},
        },
        metrics=metrics,
        tags={
            Parameter.FEATURE_SERVICE: FEATURE_SERVICE,
            Parameter.FEATURE_NAMES: ",".join(FEATURE_NAMES),
            Parameter.WINDOW: str(WINDOW),
            Parameter.FEATURES: str(len(FEATURE_NAMES)),
            "volatility_scaled": ",".join(str(int(v)) for v in VOLATILITY_SCALED),
            Parameter.TARGET: TARGET,
            Parameter.OUTPUTS: ",".join(OUTPUTS),
            Parameter.INTERVAL: str(INTERVAL_COVERAGE),
            "interval_halfwidth_z": repr(result.interval_halfwidth),
            fingerprint.FINGERPRINT_TAG: trained_on,
        },
        artifacts={
            PROFILE_ARTIFACT: calibrated_offline(
                served_bar_profile(series, generated), settings
            ).to_json()
        },
    )
    return candidate_report(version, metrics)


def served_bar_profile(series: Mapping[str, LabelledWindows], symbols: list[str]) -> FeatureProfile:
    """The reference for drift checks: the newest bar's features of the recent training
    windows (``REFERENCE_DAYS``) of the symbols the gateway serves daily (the generated ones;
    the real histories mix hourly and monthly bars, whose scales differ)."""
    parts = []
    for symbol in symbols:
        windows = series[symbol]
        recent = windows.last_bar_ts > windows.last_bar_ts.max() - np.timedelta64(
            REFERENCE_DAYS, "D"
        )
        parts.append(windows.windows[recent, -1, :])
    last_bars = np.concatenate(parts)
    profile = build_profile(pd.DataFrame(last_bars, columns=list(FEATURE_NAMES)), FEATURE_SERVICE)
    # A day has one newest bar per symbol: judged on that many, with calibration.
    return replace(profile, min_samples=max(20, len(symbols) * 4 // 5))


# Consecutive test returns resampled together (volatility clusters in time).
BOOTSTRAP_BLOCK = 20
# The promotion rule. Next-period returns are close to unpredictable and the LSTM is not
# expected to beat the zero-return forecast by much, if at all, so the point forecast must
# only do no harm: pooled walk-forward RMSE (volatility units) at most 1% worse than zero's,
# and on the last fold's test blocks (windows no version trained on) at most 1% worse than
# the champion's; both relative, on paired block-bootstrap intervals. What the model must get
# right is its interval: coverage of the 90% interval within 90% +- 3 points (an absolute
# requirement, not a comparison).
GATE_RULES = (
    gates.GateRule(
        "vs_zero_rmse", "RMSE vs the zero-return forecast (relative)", "not_worse", 0.01
    ),
    gates.champion_rule("rmse", "RMSE on the last test blocks", 0.01, " (relative)"),
)


def gate_intervals(result: WalkForwardResult, champion: Any) -> dict[str, gates.Interval]:
    pooled, groups = pooled_with_blocks([f.scaled() for f in result.forecasts])
    intervals = {
        "vs_zero_rmse": gates.paired_difference(
            gates.weighted_rmse,
            pooled.actual,
            pooled.forecast[:, 0],
            np.zeros_like(pooled.actual),
            higher_is_better=False,
            relative=True,
            groups=groups,
        )
    }
    if champion is not None:
        ours, ours_groups = pooled_with_blocks(final_block_forecasts(result.model, result.tests))
        theirs, _ = pooled_with_blocks(final_block_forecasts(champion, result.tests))
        intervals["vs_champion_rmse"] = gates.paired_difference(
            gates.weighted_rmse,
            ours.actual,
            ours.forecast[:, 0],
            theirs.forecast[:, 0],
            higher_is_better=False,
            relative=True,
            groups=ours_groups,
        )
    return intervals


def pooled_with_blocks(parts: list[SeriesForecasts]) -> tuple[SeriesForecasts, np.ndarray]:
    """The series pooled, and a block label per row: ``BOOTSTRAP_BLOCK`` consecutive rows of
    one series."""
    labels = [
        index * 1_000_000 + np.arange(len(part.actual)) // BOOTSTRAP_BLOCK
        for index, part in enumerate(parts)
    ]
    return concat_forecasts(parts, "pooled"), np.concatenate(labels)


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    promoted, reason, _ = gates.evaluate(GATE_RULES, metrics)
    coverage = metrics["overall_coverage"]
    covered = abs(coverage - INTERVAL_COVERAGE) <= COVERAGE_TOLERANCE
    coverage_line = (
        f"90% interval covered {100 * coverage:.1f}% of test returns (needs "
        f"{100 * INTERVAL_COVERAGE:.0f} +- {100 * COVERAGE_TOLERANCE:.0f}%): "
        + ("pass" if covered else "FAIL")
    )
    reason = coverage_line + "; " + reason if not covered else reason + "; " + coverage_line
    return promoted and covered, reason
