"""Market data: the real OHLCV histories shipped in ``backtesting`` plus generated symbols.

Generated symbols follow a one-factor model with sector factors, GARCH(1,1) volatility
clustering and Student-t shocks, so that trailing volatility predicts future volatility as it
does in real markets. They are named ``SYN###`` so nobody mistakes them for listed tickers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources

import numpy as np
import pandas as pd

SECTORS = (
    "technology",
    "financials",
    "healthcare",
    "energy",
    "consumer",
    "industrials",
    "utilities",
    "materials",
)


@dataclass(frozen=True)
class RealHistory:
    symbol: str
    filename: str
    interval: str
    asset_class: str
    sector: str


REAL_HISTORIES = (
    RealHistory("GOOG", "GOOG.csv", "1d", "equity", "technology"),
    RealHistory("EURUSD", "EURUSD.csv", "1h", "fx", "currency"),
    RealHistory("BTCUSD", "BTCUSD.csv", "1mo", "crypto", "crypto"),
)

OHLCV = ["open", "high", "low", "close", "volume"]


def load_real_history(history: RealHistory) -> pd.DataFrame:
    """One shipped CSV as rows of (symbol, interval, ts, open, high, low, close, volume)."""
    package_files = resources.files("backtesting") / "test" / history.filename
    with resources.as_file(package_files) as path:
        frame = pd.read_csv(path, index_col=0, parse_dates=True)
    frame.columns = [column.lower() for column in frame.columns]
    frame = frame[OHLCV].dropna()
    frame.index.name = "ts"
    frame = frame.reset_index()
    frame.insert(0, "interval", history.interval)
    frame.insert(0, "symbol", history.symbol)
    return frame


def business_calendar(end_date: date, n_days: int) -> pd.DatetimeIndex:
    """The last ``n_days`` business days up to and including ``end_date`` (midnight, naive UTC)."""
    return pd.bdate_range(end=pd.Timestamp(end_date), periods=n_days)


def generated_symbol_names(n_symbols: int) -> list[str]:
    return [f"SYN{index:03d}" for index in range(1, n_symbols + 1)]


def generate_symbols(
    n_symbols: int, calendar: pd.DatetimeIndex, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily OHLCV bars for ``n_symbols`` synthetic equities over ``calendar``.

    Returns (bars, symbol_table); bars are in long format like ``load_real_history``.
    """
    n_days = len(calendar)
    names = generated_symbol_names(n_symbols)
    sectors = [SECTORS[index % len(SECTORS)] for index in range(n_symbols)]
    sector_index = np.array([SECTORS.index(sector) for sector in sectors])

    market = rng.standard_t(df=5, size=n_days) * 0.010 / np.sqrt(5 / 3)
    sector_shocks = rng.standard_t(df=5, size=(n_days, len(SECTORS))) * 0.006 / np.sqrt(5 / 3)
    beta = rng.uniform(0.5, 1.5, size=n_symbols)
    annual_vol = rng.uniform(0.15, 0.75, size=n_symbols)
    drift = rng.normal(0.06, 0.10, size=n_symbols) / 252
    returns = _garch_returns(annual_vol / np.sqrt(252), n_days, rng)
    returns += market[:, None] * beta[None, :] + sector_shocks[:, sector_index] + drift[None, :]

    start_price = np.exp(rng.normal(np.log(60.0), 0.8, size=n_symbols))
    close = start_price[None, :] * np.exp(np.cumsum(returns, axis=0))
    previous_close = np.vstack([start_price[None, :], close[:-1]])
    day_vol = np.abs(returns).mean(axis=0)
    gap = rng.normal(0.0, 0.25, size=close.shape) * day_vol[None, :]
    open_ = previous_close * np.exp(gap)
    wick_up = np.abs(rng.normal(0.0, 0.6, size=close.shape)) * day_vol[None, :]
    wick_down = np.abs(rng.normal(0.0, 0.6, size=close.shape)) * day_vol[None, :]
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_down)

    base_volume = np.exp(rng.normal(np.log(2e6), 0.9, size=n_symbols))
    surprise = np.abs(returns) / (annual_vol[None, :] / np.sqrt(252))
    volume = base_volume[None, :] * np.exp(0.35 * surprise + rng.normal(0.0, 0.3, size=close.shape))

    bars = pd.DataFrame(
        {
            "symbol": np.repeat(np.array(names)[None, :], n_days, axis=0).ravel(),
            "interval": "1d",
            "ts": np.repeat(calendar.values, n_symbols),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": np.round(volume.ravel()),
        }
    )
    table = pd.DataFrame(
        {
            "symbol": names,
            "asset_class": "equity",
            "sector": sectors,
            "source": "generated",
        }
    )
    return bars, table


def _garch_returns(daily_vol: np.ndarray, n_days: int, rng: np.random.Generator) -> np.ndarray:
    """Idiosyncratic returns with GARCH(1,1) variance; long-run daily vol is ``daily_vol``."""
    alpha, beta = 0.10, 0.86
    omega = daily_vol**2 * (1 - alpha - beta)
    shocks = rng.standard_t(df=5, size=(n_days, len(daily_vol))) / np.sqrt(5 / 3)
    variance = daily_vol**2
    out = np.empty((n_days, len(daily_vol)))
    for day in range(n_days):
        out[day] = np.sqrt(variance) * shocks[day]
        variance = omega + alpha * out[day] ** 2 + beta * variance
    return out


def real_symbol_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": [history.symbol for history in REAL_HISTORIES],
            "asset_class": [history.asset_class for history in REAL_HISTORIES],
            "sector": [history.sector for history in REAL_HISTORIES],
            "source": [f"real:backtesting/{history.filename}" for history in REAL_HISTORIES],
        }
    )


def daily_bars(market: pd.DataFrame) -> pd.DataFrame:
    """Daily bars for every symbol that has daily or intraday data (hourly is resampled)."""
    daily = market[market["interval"] == "1d"]
    hourly = market[market["interval"] == "1h"]
    resampled = []
    for symbol, rows in hourly.groupby("symbol"):
        day = (
            rows.set_index("ts")
            .resample("1D")
            .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
            .dropna()
            .reset_index()
        )
        day.insert(0, "interval", "1d")
        day.insert(0, "symbol", symbol)
        resampled.append(day)
    combined = pd.concat([daily, *resampled], ignore_index=True)
    return combined.sort_values(["symbol", "ts"], ignore_index=True)
