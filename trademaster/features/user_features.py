"""Per-user daily behaviour features over a trailing window of trades.

One snapshot per user and business day, computed from the trades executed before midnight UTC
that ends the day; its ``event_timestamp`` is that midnight. A user with no trade in the window
gets zeros for activity and 0.5 for the win rate, with ``trades_in_window`` = 0 saying so.

The inputs are the warehouse's daily aggregates (``trademaster.warehouse.aggregates``): the
positions a user opened per day and symbol, and those closed per day. Since a window starts
and ends at midnights, a day's aggregate is either wholly inside a window or wholly outside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Name -> description (the Feast view's schema is built from this, in this order).
USER_FEATURES: dict[str, str] = {
    "avg_trade_size": "Mean notional, USD, 90 days",
    "trade_frequency": "Positions opened per day",
    "avg_holding_days": "Mean days held, closed",
    "avg_leverage": "Mean leverage of positions opened",
    "risk_score": "Levered exposure x concentration",
    "portfolio_diversity": "1 - HHI of notional",
    "win_rate": "Share of closed positions in profit",
    "short_ratio": "Share of positions opened short",
    "entry_momentum": "Mean 20-day return at entry",
    "trades_in_window": "Positions opened in the window (0: no activity)",
}
WINDOW = pd.Timedelta(days=90)
WINDOW_BUSINESS_DAYS = 63
MOMENTUM_BARS = 20
# Sums per (user, day, symbol) of the positions opened, and per (user, day) of those closed.
OPEN_SUMS = ("n_opened", "notional_usd", "leverage", "exposure", "n_short", "entry_momentum")
CLOSE_SUMS = ("n_closed", "holding_days", "n_won")


def with_entry_momentum(opens: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Adds ``entry_momentum``: the positions' summed 20-bar return before their entry day
    (0 where the symbol has no such return)."""
    momentum = trailing_returns(daily, MOMENTUM_BARS)
    keys = pd.MultiIndex.from_arrays([opens["symbol"], opens["day"]])
    per_position = np.nan_to_num(momentum.reindex(keys).to_numpy())
    return opens.assign(entry_momentum=opens["n_opened"].to_numpy() * per_position)


def trailing_returns(daily: pd.DataFrame, lookback: int) -> pd.Series:
    """Return over the ``lookback`` bars before each day (the day's own close excluded)."""
    frame = daily.sort_values(["symbol", "ts"])
    previous = frame.groupby("symbol")["close"].shift(1)
    base = frame.groupby("symbol")["close"].shift(lookback + 1)
    values = (previous / base - 1).to_numpy()
    return pd.Series(values, index=pd.MultiIndex.from_arrays([frame["symbol"], frame["ts"]]))


def compute_user_features(
    opens: pd.DataFrame,
    closes: pd.DataFrame,
    user_ids: np.ndarray,
    snapshot_days: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Daily snapshots for every user in ``user_ids`` and every day in ``snapshot_days``.

    ``opens``: user_id, day, symbol and ``OPEN_SUMS``; ``closes``: user_id, day and
    ``CLOSE_SUMS`` (``day`` at midnight)."""
    cutoffs = (snapshot_days + pd.Timedelta(days=1)).to_numpy()
    window_starts = cutoffs - WINDOW.to_timedelta64()
    opened = dict(tuple(opens.sort_values(["user_id", "day"]).groupby("user_id", sort=False)))
    closed = dict(tuple(closes.sort_values(["user_id", "day"]).groupby("user_id", sort=False)))
    frames = [
        _user_snapshots(
            int(user_id), opened.get(user_id), closed.get(user_id), cutoffs, window_starts
        )
        for user_id in user_ids
    ]
    features = pd.concat(frames, ignore_index=True)
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"]).dt.tz_localize("UTC")
    return features.astype({name: "float32" for name in USER_FEATURES})


def _user_snapshots(
    user_id: int,
    opens: pd.DataFrame | None,
    closes: pd.DataFrame | None,
    cutoffs: np.ndarray,
    window_starts: np.ndarray,
) -> pd.DataFrame:
    n = len(cutoffs)
    out: dict[str, np.ndarray] = {name: np.zeros(n) for name in USER_FEATURES}
    out["win_rate"] = np.full(n, 0.5)
    if opens is not None and len(opens):
        _fill_open_stats(out, opens, cutoffs, window_starts)
    if closes is not None and len(closes):
        _fill_close_stats(out, closes, cutoffs, window_starts)
    frame = pd.DataFrame(out)
    frame.insert(0, "event_timestamp", cutoffs)
    frame.insert(0, "user_id", user_id)
    return frame


def _window_sums(
    times: np.ndarray, values: np.ndarray, cutoffs: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Sum of ``values`` (rows x columns) over rows with start <= time < cutoff."""
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    hi = np.searchsorted(times, cutoffs, side="left")
    lo = np.searchsorted(times, starts, side="left")
    return cumulative[hi] - cumulative[lo]


def _fill_open_stats(
    out: dict[str, np.ndarray], opens: pd.DataFrame, cutoffs: np.ndarray, starts: np.ndarray
) -> None:
    times = opens["day"].to_numpy()
    symbols, symbol_codes = np.unique(opens["symbol"].to_numpy(), return_inverse=True)
    notional = opens["notional_usd"].to_numpy(dtype=float)
    per_symbol = np.zeros((len(opens), len(symbols)))
    per_symbol[np.arange(len(opens)), symbol_codes] = notional
    sums = _window_sums(times, opens[list(OPEN_SUMS)].to_numpy(dtype=float), cutoffs, starts)
    symbol_sums = _window_sums(times, per_symbol, cutoffs, starts)
    count = sums[:, 0]
    active = count > 0
    safe = np.where(active, count, 1.0)
    out["trades_in_window"] = count
    out["trade_frequency"] = count / WINDOW_BUSINESS_DAYS
    out["avg_trade_size"] = np.where(active, sums[:, 1] / safe, 0.0)
    out["avg_leverage"] = np.where(active, sums[:, 2] / safe, 0.0)
    mean_exposure = np.where(active, sums[:, 3] / safe, 0.0)
    out["short_ratio"] = np.where(active, sums[:, 4] / safe, 0.0)
    out["entry_momentum"] = np.where(active, sums[:, 5] / safe, 0.0)
    total = symbol_sums.sum(axis=1)
    shares = symbol_sums / np.where(total > 0, total, 1.0)[:, None]
    diversity = 1.0 - (shares**2).sum(axis=1)
    out["portfolio_diversity"] = np.where(active, diversity, 0.0)
    # Risk score: levered exposure per position, scaled by how concentrated the book is.
    out["risk_score"] = mean_exposure * (1.0 + out["avg_leverage"]) * (2.0 - diversity) / 2.0


def _fill_close_stats(
    out: dict[str, np.ndarray], closes: pd.DataFrame, cutoffs: np.ndarray, starts: np.ndarray
) -> None:
    values = closes[list(CLOSE_SUMS)].to_numpy(dtype=float)
    sums = _window_sums(closes["day"].to_numpy(), values, cutoffs, starts)
    count = sums[:, 0]
    safe = np.where(count > 0, count, 1.0)
    out["avg_holding_days"] = np.where(count > 0, sums[:, 1] / safe, 0.0)
    out["win_rate"] = np.where(count > 0, sums[:, 2] / safe, 0.5)
