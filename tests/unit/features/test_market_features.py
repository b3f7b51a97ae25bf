from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademaster.features.market_features import (
    MARKET_FEATURES,
    WARMUP_BARS,
    compute_market_features,
    relative_strength_index,
)


def _bars(symbol: str, close: np.ndarray, start: str = "2026-01-05") -> pd.DataFrame:
    """Daily bars around ``close``: open at the previous close, 1% wicks."""
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "symbol": symbol,
            "interval": "1d",
            "ts": pd.bdate_range(start, periods=len(close)),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": np.arange(len(close), dtype=float) * 100 + 1_000,
        }
    )


def _random_walk(n: int, seed: int = 3) -> np.ndarray:
    return 50 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, size=n)))


def test_rsi_hand_computed() -> None:
    # changes +1, -1, +2; Wilder smoothing with alpha 1/2:
    # gains 1 -> 0.5 -> 1.25, losses 0 -> 0.5 -> 0.25
    rsi = relative_strength_index(pd.Series([10.0, 11.0, 10.0, 12.0]), 2)

    assert rsi.iloc[:2].isna().all()
    assert rsi.iloc[2] == pytest.approx(50.0)
    assert rsi.iloc[3] == pytest.approx(100 - 100 / (1 + 1.25 / 0.25))


def test_rsi_is_100_for_a_rising_and_0_for_a_falling_series() -> None:
    rising = relative_strength_index(pd.Series(np.linspace(10, 30, 40)), 14).dropna()
    falling = relative_strength_index(pd.Series(np.linspace(30, 10, 40)), 14).dropna()

    assert len(rising) == len(falling) == 40 - 14
    assert (rising == 100.0).all()
    assert (falling == 0.0).all()


def test_rsi_stays_within_0_and_100() -> None:
    rsi = relative_strength_index(pd.Series(_random_walk(500)), 14).dropna()

    assert rsi.between(0, 100).all()
    assert 0 < rsi.min() < rsi.max() < 100


def test_rising_symbol_has_rsi_100_in_the_features() -> None:
    features = compute_market_features(_bars("UP", 100 * 1.01 ** np.arange(80)))

    assert (features["rsi_14"] == 100.0).all()
    assert (features["return_5d"] > 0).all()


def test_price_volatility_is_annualised_20_day_std_of_log_returns() -> None:
    close = _random_walk(90)
    features = compute_market_features(_bars("RW", close))
    log_returns = np.diff(np.log(close))

    for bar in (WARMUP_BARS, 61, 89):
        row = features[features["bar_date"] == pd.bdate_range("2026-01-05", periods=90)[bar]]
        # The 20 returns ending at the bar: close[bar - 20] -> close[bar].
        expected = np.std(log_returns[bar - 20 : bar], ddof=1) * np.sqrt(252)
        assert row["price_volatility"].item() == pytest.approx(expected, rel=1e-5)
        assert row["return_5d"].item() == pytest.approx(close[bar] / close[bar - 5] - 1, rel=1e-5)
        assert row["close_to_ma50"].item() == pytest.approx(
            close[bar] / close[bar - 49 : bar + 1].mean() - 1, rel=1e-4, abs=1e-6
        )


def test_event_timestamp_is_midnight_utc_after_the_bar() -> None:
    features = compute_market_features(_bars("RW", _random_walk(70)))

    assert str(features["event_timestamp"].dt.tz) == "UTC"
    expected = (features["bar_date"] + pd.Timedelta(days=1)).dt.tz_localize("UTC")
    assert (features["event_timestamp"] == expected).all()
    assert (features["event_timestamp"].dt.hour == 0).all()


def test_warm_up_rows_are_dropped_per_symbol() -> None:
    daily = pd.concat(
        [_bars("AAA", _random_walk(80, seed=1)), _bars("BBB", _random_walk(60, seed=2))],
        ignore_index=True,
    )

    features = compute_market_features(daily)

    counts = features.groupby("symbol").size()
    assert counts.to_dict() == {"AAA": 80 - WARMUP_BARS, "BBB": 60 - WARMUP_BARS}
    first = features.groupby("symbol")["bar_date"].min()
    assert first["AAA"] == pd.bdate_range("2026-01-05", periods=80)[WARMUP_BARS]
    assert not features[list(MARKET_FEATURES)].isna().any().any()
    assert set(features[list(MARKET_FEATURES)].dtypes) == {np.dtype("float32")}
