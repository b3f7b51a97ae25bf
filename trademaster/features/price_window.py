"""Windows of per-bar OHLCV features, the input of price-prediction-lstm.

Each bar becomes ``N_FEATURES`` numbers that do not depend on the price level or the volume
unit (log ratios, a location in the bar's range, volume relative to the symbol's own recent
volume), so one model serves daily equities, hourly FX and monthly crypto. Return-like
features still carry the series' volatility; the model divides them by the window's realised
volatility itself (``trademaster.price_lstm.model``), so nothing else is needed at serving
time: a stored window is the whole model input.

A window row describes a symbol after the close of its last bar; its ``event_timestamp`` is
when that bar closed, so point-in-time joins never see a bar that had not finished.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = 30
FEATURE_NAMES = ("log_return", "log_range", "log_body", "close_location", "relative_volume")
N_FEATURES = len(FEATURE_NAMES)
# Features measured in return units (they grow with the series' volatility): the model divides
# them by the window's realised volatility. The others are already dimensionless.
VOLATILITY_SCALED = (True, True, True, False, False)
# relative_volume compares a bar's log volume with the mean of the previous bars' log volume.
VOLUME_LOOKBACK = 20
# The first bar with every feature defined (log_return needs 1 earlier bar, volume 20).
WARMUP_BARS = VOLUME_LOOKBACK
WINDOW_COLUMN = "price_window"
INTERVALS = ("1h", "1d", "1mo")
OHLC = ("open", "high", "low", "close")


def bar_features(rows: pd.DataFrame) -> np.ndarray:
    """``[n_bars, N_FEATURES]`` features of one symbol's bars (sorted by ``ts``), float64.

    Row ``t`` uses bars ``t - VOLUME_LOOKBACK .. t`` only; the first ``WARMUP_BARS`` rows are
    NaN. Prices must be positive and ``high >= low``: anything else is refused.
    """
    open_, high, low, close = (rows[c].to_numpy(dtype=np.float64) for c in OHLC)
    volume = rows["volume"].to_numpy(dtype=np.float64)
    _check_bars(rows, open_, high, low, close, volume)
    features = np.full((len(rows), N_FEATURES), np.nan)
    if len(rows) == 0:
        return features
    log_close = np.log(close)
    features[1:, 0] = np.diff(log_close)
    features[:, 1] = np.log(high / low)
    features[:, 2] = log_close - np.log(open_)
    span = high - low
    features[:, 3] = np.divide(close - low, span, out=np.full_like(span, 0.5), where=span > 0)
    log_volume = np.log(np.maximum(volume, 1.0))
    trailing = pd.Series(log_volume).rolling(VOLUME_LOOKBACK).mean().shift(1).to_numpy()
    features[:, 4] = log_volume - trailing
    features[:WARMUP_BARS] = np.nan
    return features


def _check_bars(
    rows: pd.DataFrame,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> None:
    prices = np.stack([open_, high, low, close])
    symbol = rows["symbol"].iloc[0] if len(rows) and "symbol" in rows else "?"
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        raise ValueError(f"{symbol}: prices must be finite and positive")
    if np.any(high < low):
        raise ValueError(f"{symbol}: high below low in {int((high < low).sum())} bars")
    if not np.all(np.isfinite(volume)) or np.any(volume < 0):
        raise ValueError(f"{symbol}: volume must be finite and non-negative")
    if not rows["ts"].is_monotonic_increasing or rows["ts"].duplicated().any():
        raise ValueError(f"{symbol}: bars must be sorted by ts without duplicates")


def complete_windows(features: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``window`` consecutive bars with all features defined.

    Returns ``(windows [m, window, N_FEATURES] float32, last_bar [m])``: ``last_bar[i]`` is the
    index of the newest bar in window ``i``; bars are oldest first inside a window.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    first_last_bar = WARMUP_BARS + window - 1
    if len(features) <= first_last_bar:
        return np.empty((0, window, features.shape[1]), np.float32), np.empty(0, np.int64)
    views = np.lib.stride_tricks.sliding_window_view(features, window, axis=0)
    # sliding_window_view puts the window axis last: [n - window + 1, F, window].
    windows = np.ascontiguousarray(views[WARMUP_BARS:].transpose(0, 2, 1), dtype=np.float32)
    last_bar = np.arange(first_last_bar, len(features))
    return windows, last_bar


def available_at(ts: pd.Series, interval: str) -> pd.Series:
    """When a bar stamped ``ts`` has closed (UTC): the moment its window may be used.

    ``1h`` bars are stamped at their start; ``1d`` bars at the session's date (available at the
    midnight after it, as ``market_features``); ``1mo`` bars at a day of their month (the
    shipped BTCUSD history uses the month's last day), available at the midnight after the
    month ends.
    """
    stamps = pd.to_datetime(ts)
    if interval == "1h":
        closed = stamps + pd.Timedelta(hours=1)
    elif interval == "1d":
        closed = stamps.dt.normalize() + pd.Timedelta(days=1)
    elif interval == "1mo":
        closed = stamps.dt.to_period("M").dt.end_time.dt.normalize() + pd.Timedelta(days=1)
    else:
        raise ValueError(f"unknown bar interval {interval!r}; known: {', '.join(INTERVALS)}")
    if closed.dt.tz is None:
        return closed.dt.tz_localize("UTC")
    return closed.dt.tz_convert("UTC")


def symbol_bars(bars: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """``(symbol, interval, rows sorted by ts)`` for each symbol in a market-data frame."""
    groups = []
    for (symbol, interval), rows in bars.groupby(["symbol", "interval"], sort=True):
        groups.append((str(symbol), str(interval), rows.sort_values("ts", ignore_index=True)))
    symbols = [symbol for symbol, _, _ in groups]
    if len(set(symbols)) != len(symbols):
        raise ValueError("a symbol has bars of more than one interval")
    return groups


def window_rows(bars: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
    """One row per (symbol, bar) with a complete window ending at that bar.

    Columns: ``symbol``, ``interval``, ``bar_ts`` (the newest bar), ``event_timestamp`` (UTC,
    when that bar closed) and ``price_window``: the ``[window, N_FEATURES]`` matrix flattened
    bar-major (oldest bar first) into ``window * N_FEATURES`` float32 values.
    """
    frames = []
    for symbol, interval, rows in symbol_bars(bars):
        windows, last_bar = complete_windows(bar_features(rows), window)
        if not len(windows):
            continue
        bar_ts = rows["ts"].iloc[last_bar].reset_index(drop=True)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "interval": interval,
                    "bar_ts": bar_ts,
                    "event_timestamp": available_at(bar_ts, interval),
                    WINDOW_COLUMN: list(windows.reshape(len(windows), -1)),
                }
            )
        )
    if not frames:
        return _empty_rows()
    return pd.concat(frames, ignore_index=True)


def latest_windows(bars: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
    """The newest window of each symbol (what the online store serves)."""
    rows = window_rows(bars, window)
    return rows.loc[rows.groupby("symbol")["bar_ts"].idxmax()].reset_index(drop=True)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series(dtype=str),
            "interval": pd.Series(dtype=str),
            "bar_ts": pd.Series(dtype="datetime64[ns]"),
            "event_timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
            WINDOW_COLUMN: pd.Series(dtype=object),
        }
    )
