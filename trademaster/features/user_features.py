"""Per-user daily behaviour features over a trailing window of trades.

One snapshot per user and business day, computed from the trades executed before midnight UTC
that ends the day; its ``event_timestamp`` is that midnight. A user with no trade in the window
gets zeros for activity and 0.5 for the win rate, with ``trades_in_window`` = 0 saying so.
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


def position_table(trades: pd.DataFrame, users: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """One row per position: its opening trade joined with its close (if any) and context."""
    opens = trades[trades["action"] == "open"].set_index("position_id")
    closes = trades[trades["action"] == "close"].set_index("position_id")
    positions = opens[["user_id", "symbol", "ts", "direction", "price", "notional_usd", "leverage"]]
    positions = positions.rename(columns={"ts": "open_ts", "price": "open_price"})
    positions = positions.join(
        closes[["ts", "price"]].rename(columns={"ts": "close_ts", "price": "close_price"})
    )
    sign = np.where(positions["direction"] == "long", 1.0, -1.0)
    positions["pnl_pct"] = sign * (positions["close_price"] / positions["open_price"] - 1)
    positions["holding_days"] = (positions["close_ts"] - positions["open_ts"]) / pd.Timedelta(
        days=1
    )
    capital = users.set_index("user_id")["capital_usd"]
    positions["exposure"] = (
        positions["notional_usd"]
        * positions["leverage"]
        / positions["user_id"].map(capital).to_numpy()
    )
    momentum = _trailing_returns(daily, 20)
    open_day = positions["open_ts"].dt.normalize()
    keys = pd.MultiIndex.from_arrays([positions["symbol"], open_day])
    positions["entry_momentum"] = momentum.reindex(keys).to_numpy()
    return positions.reset_index()


def _trailing_returns(daily: pd.DataFrame, lookback: int) -> pd.Series:
    """Return over the ``lookback`` bars before each day (the day's own close excluded)."""
    frame = daily.sort_values(["symbol", "ts"])
    previous = frame.groupby("symbol")["close"].shift(1)
    base = frame.groupby("symbol")["close"].shift(lookback + 1)
    values = (previous / base - 1).to_numpy()
    return pd.Series(values, index=pd.MultiIndex.from_arrays([frame["symbol"], frame["ts"]]))


def compute_user_features(
    positions: pd.DataFrame, user_ids: np.ndarray, snapshot_days: pd.DatetimeIndex
) -> pd.DataFrame:
    """Daily snapshots for every user in ``user_ids`` and every day in ``snapshot_days``."""
    cutoffs = (snapshot_days + pd.Timedelta(days=1)).to_numpy()
    window_starts = cutoffs - WINDOW.to_timedelta64()
    by_user = dict(tuple(positions.groupby("user_id", sort=False)))
    frames = [
        _user_snapshots(int(user_id), by_user.get(user_id), cutoffs, window_starts)
        for user_id in user_ids
    ]
    features = pd.concat(frames, ignore_index=True)
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"]).dt.tz_localize("UTC")
    return features.astype({name: "float32" for name in USER_FEATURES})


def _user_snapshots(
    user_id: int,
    positions: pd.DataFrame | None,
    cutoffs: np.ndarray,
    window_starts: np.ndarray,
) -> pd.DataFrame:
    n = len(cutoffs)
    out: dict[str, np.ndarray] = {name: np.zeros(n) for name in USER_FEATURES}
    out["win_rate"] = np.full(n, 0.5)
    if positions is not None and len(positions):
        _fill_open_stats(out, positions.sort_values("open_ts"), cutoffs, window_starts)
        _fill_close_stats(out, positions.dropna(subset=["close_ts"]), cutoffs, window_starts)
    frame = pd.DataFrame(out)
    frame.insert(0, "event_timestamp", cutoffs)
    frame.insert(0, "user_id", user_id)
    return frame


def _window_sums(
    times: np.ndarray, values: np.ndarray, cutoffs: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Sum of ``values`` (rows x columns) over events with start <= time < cutoff."""
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    hi = np.searchsorted(times, cutoffs, side="left")
    lo = np.searchsorted(times, starts, side="left")
    return cumulative[hi] - cumulative[lo]


def _fill_open_stats(
    out: dict[str, np.ndarray], opens: pd.DataFrame, cutoffs: np.ndarray, starts: np.ndarray
) -> None:
    times = opens["open_ts"].to_numpy()
    symbols, symbol_codes = np.unique(opens["symbol"].to_numpy(), return_inverse=True)
    notional = opens["notional_usd"].to_numpy()
    per_symbol = np.zeros((len(opens), len(symbols)))
    per_symbol[np.arange(len(opens)), symbol_codes] = notional
    momentum = np.nan_to_num(opens["entry_momentum"].to_numpy())
    columns = np.column_stack(
        [
            np.ones(len(opens)),
            notional,
            opens["leverage"].to_numpy(),
            opens["exposure"].to_numpy(),
            (opens["direction"] == "short").to_numpy(dtype=float),
            momentum,
        ]
    )
    sums = _window_sums(times, columns, cutoffs, starts)
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
    out: dict[str, np.ndarray], closed: pd.DataFrame, cutoffs: np.ndarray, starts: np.ndarray
) -> None:
    if closed.empty:
        return
    closed = closed.sort_values("close_ts")
    columns = np.column_stack(
        [
            np.ones(len(closed)),
            closed["holding_days"].to_numpy(),
            (closed["pnl_pct"] > 0).to_numpy(dtype=float),
        ]
    )
    sums = _window_sums(closed["close_ts"].to_numpy(), columns, cutoffs, starts)
    count = sums[:, 0]
    safe = np.where(count > 0, count, 1.0)
    out["avg_holding_days"] = np.where(count > 0, sums[:, 1] / safe, 0.0)
    out["win_rate"] = np.where(count > 0, sums[:, 2] / safe, 0.5)
