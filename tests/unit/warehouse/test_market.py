from __future__ import annotations

from datetime import date
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from tests.unit.warehouse.helpers import generated_bars
from trademaster.warehouse.market import (
    REAL_HISTORIES,
    business_calendar,
    daily_bars,
    generated_symbol_names,
    load_real_history,
)
from trademaster.warehouse.seed import WarehouseFrames


def _shipped_csv(filename: str) -> pd.DataFrame:
    with resources.as_file(resources.files("backtesting") / "test" / filename) as path:
        return pd.read_csv(path, index_col=0, parse_dates=True)


@pytest.mark.parametrize("history", REAL_HISTORIES, ids=lambda history: history.symbol)
def test_real_history_is_the_shipped_csv(history, small_frames: WarehouseFrames) -> None:
    csv = _shipped_csv(history.filename).dropna()
    bars = small_frames.market_data[small_frames.market_data["symbol"] == history.symbol]

    assert len(bars) == len(csv)
    assert set(bars["interval"]) == {history.interval}
    assert bars["ts"].iloc[0] == csv.index[0]
    assert bars["close"].iloc[0] == csv["Close"].iloc[0]
    assert bars["open"].iloc[-1] == csv["Open"].iloc[-1]
    np.testing.assert_array_equal(bars["high"].to_numpy(), csv["High"].to_numpy())


def test_goog_first_close_matches_the_csv() -> None:
    goog = next(history for history in REAL_HISTORIES if history.symbol == "GOOG")
    first_close = _shipped_csv("GOOG.csv")["Close"].iloc[0]

    assert load_real_history(goog)["close"].iloc[0] == first_close


def test_business_calendar_ends_on_the_last_business_day() -> None:
    calendar = business_calendar(date(2026, 6, 28), 10)  # a Sunday

    assert len(calendar) == 10
    assert calendar[-1] == pd.Timestamp("2026-06-26")  # the Friday before
    assert calendar[0] == pd.Timestamp("2026-06-15")
    assert (calendar.dayofweek < 5).all()


def test_generated_symbol_names() -> None:
    assert generated_symbol_names(3) == ["SYN001", "SYN002", "SYN003"]


def test_generated_bars_are_consistent(small_frames: WarehouseFrames) -> None:
    bars = small_frames.market_data[small_frames.market_data["symbol"].str.startswith("SYN")]

    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["volume"] >= 0).all()
    assert not bars.isna().any().any()


def _mean_abs_return_autocorrelation(returns: pd.DataFrame, lags: range) -> float:
    magnitude = returns.abs()
    return float(np.mean([magnitude[column].autocorr(lag) for column in magnitude for lag in lags]))


def test_generated_returns_show_volatility_clustering(default_frames: WarehouseFrames) -> None:
    """GARCH: large moves follow large moves, so |returns| are positively autocorrelated;
    the same returns in random order are not."""
    returns = np.log(generated_bars(default_frames, "close")).diff().dropna()
    rng = np.random.default_rng(0)
    shuffled = returns.apply(lambda column: rng.permutation(column.to_numpy()))

    clustered = _mean_abs_return_autocorrelation(returns, range(1, 6))
    baseline = _mean_abs_return_autocorrelation(shuffled, range(1, 6))

    assert clustered > 0.05
    assert abs(baseline) < 0.02
    assert clustered > baseline + 0.05


def test_daily_bars_resamples_hourly_data() -> None:
    hours = pd.to_datetime(
        ["2026-06-01 09:00", "2026-06-01 10:00", "2026-06-01 11:00", "2026-06-03 09:00"]
    )
    hourly = pd.DataFrame(
        {
            "symbol": "EURUSD",
            "interval": "1h",
            "ts": hours,
            "open": [1.0, 2.0, 3.0, 4.0],
            "high": [1.5, 5.0, 3.5, 4.5],
            "low": [0.5, 1.5, 0.9, 3.5],
            "close": [2.0, 3.0, 2.5, 4.2],
            "volume": [10.0, 20.0, 30.0, 40.0],
        }
    )
    daily = pd.DataFrame(
        {
            "symbol": "GOOG",
            "interval": "1d",
            "ts": pd.to_datetime(["2026-06-01"]),
            "open": [7.0],
            "high": [8.0],
            "low": [6.0],
            "close": [7.5],
            "volume": [100.0],
        }
    )

    out = daily_bars(pd.concat([hourly, daily], ignore_index=True))

    eurusd = out[out["symbol"] == "EURUSD"].reset_index(drop=True)
    # 2026-06-02 has no hourly bar: no empty day is invented.
    assert list(eurusd["ts"]) == list(pd.to_datetime(["2026-06-01", "2026-06-03"]))
    assert set(eurusd["interval"]) == {"1d"}
    first = eurusd.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        1.0,
        5.0,
        0.5,
        2.5,
        60.0,
    )
    goog = out[out["symbol"] == "GOOG"]
    assert goog["close"].tolist() == [7.5]
    assert list(out["symbol"]) == sorted(out["symbol"])
