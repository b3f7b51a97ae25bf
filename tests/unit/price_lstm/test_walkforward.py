from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from tests.unit.features.test_price_window import random_bars
from trademaster.features.price_window import WINDOW
from trademaster.price_lstm.backtest import fold_data
from trademaster.price_lstm.dataset import LabelledWindows, labelled_series
from trademaster.price_lstm.walkforward import WalkForwardConfig, walk_forward_folds

REAL = ("REALA", "REALB")


def _market(real_rows: int = 400, seed: int = 0) -> pd.DataFrame:
    return pd.concat(
        [
            random_bars(real_rows, "REALA", "1d", seed=seed),
            random_bars(real_rows + 150, "REALB", "1h", seed=seed + 1),
            random_bars(200, "SYN001", "1d", seed=seed + 2, start="2026-01-01"),
        ],
        ignore_index=True,
    )


@pytest.mark.parametrize("n", [106, 1_000, 4_951])
def test_folds_are_ordered_disjoint_and_tile_the_test_tail(n: int) -> None:
    config = WalkForwardConfig(n_folds=3)

    folds = walk_forward_folds(n, config)

    assert folds[0].test.start == round(n * config.first_test_fraction)
    assert folds[-1].test.stop == n
    for fold, following in itertools.pairwise(folds):
        assert fold.test.stop == following.test.start
    for fold in folds:
        assert fold.train.start == 0
        assert fold.train.stop == fold.calibration.start < fold.calibration.stop
        assert fold.calibration.stop == fold.test.start < fold.test.stop
    # The training origin expands: each fold trains on everything before its calibration.
    assert [f.train.stop for f in folds] == sorted(f.train.stop for f in folds)


def test_too_short_a_series_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(3, WalkForwardConfig(n_folds=3))


def test_inconsistent_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="calibration_fraction < first_test_fraction"):
        WalkForwardConfig(first_test_fraction=0.1, calibration_fraction=0.2)


def _target_times(parts: list[LabelledWindows], symbol: str) -> np.ndarray:
    return np.concatenate([p.target_ts for p in parts if p.symbol == symbol])


def test_every_training_target_precedes_calibration_which_precedes_test() -> None:
    series = labelled_series(_market(), WINDOW)
    config = WalkForwardConfig(n_folds=3)
    folds = {s: walk_forward_folds(len(series[s]), config) for s in REAL}

    for k in range(config.n_folds):
        data = fold_data(series, REAL, {s: folds[s][k] for s in REAL})
        for symbol in REAL:
            train = _target_times(data.train, symbol)
            validation = _target_times(data.validation, symbol)
            calibration = _target_times(data.calibration, symbol)
            test = _target_times(data.test, symbol)
            assert train.max() < validation.min()
            assert validation.max() < calibration.min()
            assert calibration.max() < test.min()
            # A test window's newest input bar is the bar before its target: nothing later.
            test_part = next(p for p in data.test if p.symbol == symbol)
            assert (test_part.last_bar_ts < test_part.target_ts).all()


def test_generated_symbols_only_ever_train() -> None:
    series = labelled_series(_market(), WINDOW)
    folds = {s: walk_forward_folds(len(series[s]), WalkForwardConfig())[0] for s in REAL}

    data = fold_data(series, REAL, folds)

    assert [p.symbol for p in data.train if p.symbol not in REAL] == ["SYN001"]
    assert len(next(p for p in data.train if p.symbol == "SYN001")) == len(series["SYN001"])
    assert {p.symbol for p in data.validation + data.calibration + data.test} == set(REAL)


def test_later_bars_never_reach_training_or_calibration() -> None:
    market = _market(seed=4)
    series = labelled_series(market, WINDOW)
    folds = {s: walk_forward_folds(len(series[s]), WalkForwardConfig())[0] for s in REAL}
    before = fold_data(series, REAL, folds)
    # Rewrite every real bar after the first test target: prices, ranges and volumes.
    altered = market.copy()
    for symbol in REAL:
        first_test = series[symbol].target_ts[folds[symbol].test.start]
        later = (altered["symbol"] == symbol) & (altered["ts"] >= first_test)
        altered.loc[later, ["open", "high", "low", "close"]] *= 3.0
        altered.loc[later, "high"] *= 1.2
        altered.loc[later, "volume"] *= 10.0

    after = fold_data(labelled_series(altered, WINDOW), REAL, folds)

    for name in ("train", "validation", "calibration"):
        for old, new in zip(getattr(before, name), getattr(after, name), strict=True):
            np.testing.assert_array_equal(old.windows, new.windows)
            np.testing.assert_array_equal(old.targets, new.targets)
    assert not all(
        np.array_equal(old.windows, new.windows)
        for old, new in zip(before.test, after.test, strict=True)
    )
