from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.features.test_price_window import random_bars
from trademaster.features.price_window import WINDOW
from trademaster.price_lstm.backtest import (
    WalkForwardResult,
    evaluate_model,
    run_walk_forward,
)
from trademaster.price_lstm.dataset import labelled_series
from trademaster.price_lstm.model import PriceTrainingConfig
from trademaster.price_lstm.walkforward import WalkForwardConfig

REAL = ("REALA", "REALB")


@pytest.fixture(scope="module")
def result() -> WalkForwardResult:
    market = pd.concat(
        [
            random_bars(700, "REALA", "1d", seed=0, volatility=0.02),
            random_bars(1_200, "REALB", "1h", seed=1, volatility=0.001),
            random_bars(300, "SYN001", "1d", seed=2),
            random_bars(300, "SYN002", "1d", seed=3),
        ],
        ignore_index=True,
    )
    series = labelled_series(market, WINDOW)
    config = PriceTrainingConfig(hidden=8, epochs=2, patience=1)
    return run_walk_forward(series, REAL, config, WalkForwardConfig(n_folds=2))


def test_every_fold_reports_its_calibration_and_training(result: WalkForwardResult) -> None:
    for k in range(2):
        assert result.metrics[f"fold{k}_calibration_windows"] > 0
        assert result.metrics[f"fold{k}_interval_halfwidth_z"] > 0
        assert 0 <= result.metrics[f"fold{k}_best_epoch"] <= 2
    assert [b.fold for b in result.tests] == [0, 0, 1, 1]


def test_metrics_cover_each_series_and_the_pooled_test(result: WalkForwardResult) -> None:
    for prefix in ("reala", "realb", "overall"):
        assert 0.8 <= result.metrics[f"{prefix}_coverage"] <= 1.0
        assert result.metrics[f"{prefix}_rmse_ratio_persistence"] < 1.0
        assert result.metrics[f"{prefix}_rmse_ratio_zero"] == pytest.approx(1.0, abs=0.05)
    assert result.metrics["overall_n_test"] == sum(len(b.windows) for b in result.tests)


def test_the_registered_model_carries_the_last_folds_calibration(result: WalkForwardResult) -> None:
    assert float(result.model.interval_halfwidth) == pytest.approx(result.interval_halfwidth)
    assert result.metrics["interval_halfwidth_z"] == result.metrics["fold1_interval_halfwidth_z"]


def test_a_fixed_model_is_evaluated_on_the_same_windows(result: WalkForwardResult) -> None:
    # The champion path: the registered model re-evaluated on the test blocks gives the
    # candidate's own numbers on the last blocks, which it produced.
    again = evaluate_model(result.model, result.tests)

    for key in ("final_block_rmse_z", "final_block_coverage"):
        assert again[key] == pytest.approx(result.metrics[key])
    assert again["overall_n_test"] == result.metrics["overall_n_test"]
