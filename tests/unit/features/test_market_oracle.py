"""Every market feature on the real GOOG (daily), EURUSD (hourly) and BTCUSD (monthly) series
shipped in ``backtesting``, against the published formula written out here, one bar at a time
in plain Python (no pandas rolling or ewm): an independent implementation of each definition.

Tolerance: the features are stored as float32, so values agree to a relative 1e-5 (plus an
absolute 1e-6 for values near zero, such as returns)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from trademaster.features.market_features import (
    MARKET_FEATURES,
    WARMUP_BARS,
    compute_market_features,
)
from trademaster.warehouse.market import REAL_HISTORIES, RealHistory, load_real_history

RTOL, ATOL = 1e-5, 1e-6
RSI_WINDOW = 14


def _volatility(close: Sequence[float], t: int) -> float:
    """Sample standard deviation of the last 20 log returns, annualised with sqrt(252)."""
    returns = [math.log(close[i] / close[i - 1]) for i in range(t - 19, t + 1)]
    return statistics.stdev(returns) * math.sqrt(252)


def _true_range(high: float, low: float, previous_close: float) -> float:
    return max(high - low, abs(high - previous_close), abs(low - previous_close))


def _wilder_rsi(close: Sequence[float], seed: str) -> list[float | None]:
    """Wilder's RSI over 14 bars: average gain and loss smoothed as
    ``avg = (avg * 13 + value) / 14``. ``seed="first"`` starts the averages at the first
    change (the convention of `ta` and pandas ``ewm(alpha=1/14, adjust=False)``); ``"sma"``
    starts them at the simple mean of the first 14 changes (Wilder's book). RSI = 100 when
    the average loss is 0."""

    def gain(i: int) -> float:
        return max(close[i] - close[i - 1], 0.0)

    def loss(i: int) -> float:
        return max(close[i - 1] - close[i], 0.0)

    if seed == "sma":
        first = RSI_WINDOW
        avg_gain = statistics.fmean(gain(i) for i in range(1, RSI_WINDOW + 1))
        avg_loss = statistics.fmean(loss(i) for i in range(1, RSI_WINDOW + 1))
    else:
        first, avg_gain, avg_loss = 1, gain(1), loss(1)
    rsi: list[float | None] = [None] * len(close)
    for i in range(first, len(close)):
        if i > first:
            avg_gain = (avg_gain * (RSI_WINDOW - 1) + gain(i)) / RSI_WINDOW
            avg_loss = (avg_loss * (RSI_WINDOW - 1) + loss(i)) / RSI_WINDOW
        if i >= RSI_WINDOW:
            rsi[i] = 100.0 if avg_loss == 0 else 100 - 100 / (1 + avg_gain / avg_loss)
    return rsi


def oracle(bars: pd.DataFrame) -> dict[str, list[float | None]]:
    """Each feature at each bar by its formula (None before the bar has enough history)."""
    close = bars["close"].astype(float).tolist()
    high, low = bars["high"].astype(float).tolist(), bars["low"].astype(float).tolist()
    volume = bars["volume"].astype(float).tolist()
    n = len(close)

    def at(need: int, value: Callable[[int], float]) -> list[float | None]:
        return [value(t) if t >= need else None for t in range(n)]

    def true_range_mean(t: int) -> float:
        return statistics.fmean(
            _true_range(high[i], low[i], close[i - 1]) for i in range(t - 13, t + 1)
        )

    return {
        "price_volatility": at(20, lambda t: _volatility(close, t)),
        "volume_ma_20": at(19, lambda t: statistics.fmean(volume[t - 19 : t + 1])),
        "rsi_14": _wilder_rsi(close, seed="first"),
        "return_5d": at(5, lambda t: close[t] / close[t - 5] - 1),
        "return_20d": at(20, lambda t: close[t] / close[t - 20] - 1),
        "close_to_ma50": at(49, lambda t: close[t] / statistics.fmean(close[t - 49 : t + 1]) - 1),
        "atr_pct_14": at(14, lambda t: true_range_mean(t) / close[t]),
    }


@pytest.fixture(scope="module", params=REAL_HISTORIES, ids=lambda h: h.symbol)
def real(request: pytest.FixtureRequest) -> tuple[RealHistory, pd.DataFrame, pd.DataFrame]:
    history: RealHistory = request.param
    bars = load_real_history(history).sort_values("ts").reset_index(drop=True)
    return history, bars, compute_market_features(bars)


def test_the_oracle_covers_every_market_feature() -> None:
    bars = load_real_history(REAL_HISTORIES[0]).head(60)
    assert set(oracle(bars)) == set(MARKET_FEATURES)


@pytest.mark.parametrize("feature", list(MARKET_FEATURES))
def test_each_feature_agrees_with_its_formula_on_real_series(
    real: tuple[RealHistory, pd.DataFrame, pd.DataFrame], feature: str
) -> None:
    history, bars, features = real
    expected = pd.Series(oracle(bars)[feature], index=bars["ts"], dtype=float)
    computed = features.set_index("bar_date")[feature].astype(float)
    assert len(computed) == len(bars) - WARMUP_BARS, "a bar after the warm-up was dropped"
    aligned = expected.loc[computed.index]
    assert aligned.notna().all()
    np.testing.assert_allclose(
        computed.to_numpy(), aligned.to_numpy(), rtol=RTOL, atol=ATOL, err_msg=history.symbol
    )


def test_rsi_converges_to_wilders_sma_seeded_original(
    real: tuple[RealHistory, pd.DataFrame, pd.DataFrame],
) -> None:
    """The first-change seed differs from Wilder's by a factor (13/14)^k after k bars: below
    0.01 RSI points once 150 bars have passed (the monthly BTCUSD series is too short)."""
    history, bars, features = real
    if len(bars) < WARMUP_BARS + 300:
        assert history.symbol == "BTCUSD"
        return
    original = pd.Series(_wilder_rsi(bars["close"].astype(float).tolist(), "sma"), index=bars["ts"])
    computed = features.set_index("bar_date")["rsi_14"].astype(float)
    late = computed.index[computed.index >= bars["ts"].iloc[RSI_WINDOW + 150]]
    np.testing.assert_allclose(
        computed.loc[late].to_numpy(), original.loc[late].astype(float).to_numpy(), atol=0.01
    )
