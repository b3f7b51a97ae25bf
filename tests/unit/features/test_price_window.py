from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademaster.features.price_window import (
    FEATURE_NAMES,
    N_FEATURES,
    WARMUP_BARS,
    WINDOW,
    WINDOW_COLUMN,
    available_at,
    bar_features,
    latest_windows,
    window_rows,
)
from trademaster.warehouse.market import REAL_HISTORIES, load_real_history

FREQUENCIES = {"1d": "B", "1h": "h", "1mo": "ME"}


def random_bars(
    n: int,
    symbol: str = "SYN001",
    interval: str = "1d",
    seed: int = 0,
    start: str = "2024-01-01",
    volatility: float = 0.01,
) -> pd.DataFrame:
    """OHLCV bars of a random walk in ``market_data`` layout (also used by the training tests)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, volatility, n)
    close = 50.0 * np.exp(np.cumsum(returns))
    open_ = close * np.exp(-returns * rng.uniform(0.2, 0.8, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, volatility / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, volatility / 2, n)))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "interval": interval,
            "ts": pd.date_range(start, periods=n, freq=FREQUENCIES[interval]),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.round(rng.lognormal(12, 0.5, n)),
        }
    )


def _matrix(rows: pd.DataFrame) -> np.ndarray:
    return np.stack(rows[WINDOW_COLUMN].to_list()).reshape(len(rows), WINDOW, N_FEATURES)


def test_one_flat_float32_window_per_bar_after_warm_up() -> None:
    bars = random_bars(120)

    rows = window_rows(bars)

    assert len(rows) == 120 - (WARMUP_BARS + WINDOW - 1)
    assert rows["bar_ts"].iloc[0] == bars["ts"].iloc[WARMUP_BARS + WINDOW - 1]
    assert all(
        w.dtype == np.float32 and w.shape == (WINDOW * N_FEATURES,) for w in rows[WINDOW_COLUMN]
    )
    assert np.isfinite(_matrix(rows)).all()


def test_window_is_bar_major_with_the_newest_bar_last() -> None:
    bars = random_bars(80)

    rows = window_rows(bars)

    features = bar_features(bars)
    np.testing.assert_allclose(_matrix(rows)[-1], features[-WINDOW:], rtol=1e-6)
    np.testing.assert_allclose(
        _matrix(rows)[-1][-1, FEATURE_NAMES.index("log_return")],
        np.log(bars["close"].iloc[-1] / bars["close"].iloc[-2]),
        rtol=1e-6,
    )


@pytest.mark.parametrize("changed", ["close", "high", "volume"])
def test_changing_a_future_bar_never_changes_an_earlier_window(changed: str) -> None:
    bars = random_bars(150, seed=1)
    future = 110
    altered = bars.copy()
    altered.loc[future, changed] *= 1.5
    altered.loc[future, "high"] = altered.loc[future, ["open", "high", "low", "close"]].max()

    before, after = window_rows(bars), window_rows(altered)

    earlier = before["bar_ts"] < bars["ts"].iloc[future]
    np.testing.assert_array_equal(_matrix(before[earlier]), _matrix(after[earlier]))
    assert not np.array_equal(_matrix(before[~earlier]), _matrix(after[~earlier]))


def test_features_do_not_depend_on_price_level_or_volume_unit() -> None:
    bars = random_bars(100, seed=2)
    rescaled = bars.copy()
    rescaled[["open", "high", "low", "close"]] *= 1_000.0
    rescaled["volume"] *= 7.0

    np.testing.assert_allclose(
        _matrix(window_rows(bars)), _matrix(window_rows(rescaled)), rtol=1e-4, atol=1e-6
    )


def test_rows_become_available_when_their_bar_has_closed() -> None:
    daily = available_at(pd.Series(pd.to_datetime(["2024-03-01"])), "1d")
    hourly = available_at(pd.Series(pd.to_datetime(["2018-02-07 15:00"])), "1h")
    month_end = available_at(pd.Series(pd.to_datetime(["2012-02-29", "2024-12-31"])), "1mo")
    month_start = available_at(pd.Series(pd.to_datetime(["2012-02-01"])), "1mo")

    assert daily.iloc[0] == pd.Timestamp("2024-03-02", tz="UTC")
    assert hourly.iloc[0] == pd.Timestamp("2018-02-07 16:00", tz="UTC")
    assert list(month_end) == [
        pd.Timestamp("2012-03-01", tz="UTC"),
        pd.Timestamp("2025-01-01", tz="UTC"),
    ]
    assert month_start.iloc[0] == pd.Timestamp("2012-03-01", tz="UTC")


def test_window_rows_carry_event_timestamps_in_utc() -> None:
    rows = window_rows(random_bars(80, interval="1h"))

    assert str(rows["event_timestamp"].dt.tz) == "UTC"
    delay = rows["event_timestamp"].dt.tz_localize(None) - rows["bar_ts"]
    assert (delay == pd.Timedelta(hours=1)).all()


def test_unknown_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown bar interval '1w'"):
        available_at(pd.Series(pd.to_datetime(["2024-01-01"])), "1w")


def test_bad_bars_are_refused_with_the_symbol_named() -> None:
    bars = random_bars(60, symbol="SYN042")
    bars.loc[10, "low"] = -1.0

    with pytest.raises(ValueError, match="SYN042: prices must be finite and positive"):
        window_rows(bars)


def test_a_symbol_with_too_few_bars_has_no_windows() -> None:
    rows = window_rows(random_bars(WARMUP_BARS + WINDOW - 1))

    assert rows.empty
    assert list(rows.columns) == ["symbol", "interval", "bar_ts", "event_timestamp", WINDOW_COLUMN]


def test_latest_windows_keep_each_symbols_newest_bar() -> None:
    bars = pd.concat([random_bars(90, "SYN001"), random_bars(70, "SYN002", seed=3)])

    latest = latest_windows(bars)

    assert list(latest["symbol"]) == ["SYN001", "SYN002"]
    assert list(latest["bar_ts"]) == [
        bars[bars.symbol == s]["ts"].max() for s in ("SYN001", "SYN002")
    ]


def test_real_histories_give_windows_for_every_frequency() -> None:
    bars = pd.concat([load_real_history(history) for history in REAL_HISTORIES])

    rows = window_rows(bars)

    counts = rows.groupby("symbol").size()
    assert counts["GOOG"] > 2_000
    assert counts["EURUSD"] > 4_900
    assert counts["BTCUSD"] > 100
    btc = rows[rows["symbol"] == "BTCUSD"]
    assert (btc["event_timestamp"].dt.day == 1).all()
    assert np.isfinite(_matrix(rows)).all()
