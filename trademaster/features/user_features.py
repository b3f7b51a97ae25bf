"""Per-user daily behaviour features over a trailing window of trades.

One snapshot per user and business day, computed from the trades executed before midnight UTC
that ends the day; its ``event_timestamp`` is that midnight. A user with no trade in the window
gets zeros for activity and 0.5 for the win rate, with ``trades_in_window`` = 0 saying so.

The inputs are the warehouse's daily aggregates (``trademaster.warehouse.aggregates``): the
positions a user opened per day and symbol, and those closed per day. Since a window starts
and ends at midnights, a day's aggregate is either wholly inside a window or wholly outside.
"""

from __future__ import annotations

from collections.abc import Iterator

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
# Values in one chunk's dense grids (float64): about 160 MB at the default.
CHUNK_CELLS = 20_000_000
DAY_NS = 86_400 * 10**9


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
    """Daily snapshots for every user in ``user_ids`` and every day in ``snapshot_days``, in
    one frame (``iter_user_features`` yields the same rows a bounded chunk at a time).

    ``opens``: user_id, day, symbol and ``OPEN_SUMS``; ``closes``: user_id, day and
    ``CLOSE_SUMS`` (``day`` at midnight)."""
    chunks = list(iter_user_features(opens, closes, user_ids, snapshot_days))
    if not chunks:
        return user_feature_chunk(opens.iloc[:0], closes.iloc[:0], user_ids[:0], snapshot_days)
    return pd.concat(chunks, ignore_index=True)


def iter_user_features(
    opens: pd.DataFrame,
    closes: pd.DataFrame,
    user_ids: np.ndarray,
    snapshot_days: pd.DatetimeIndex,
    max_cells: int = CHUNK_CELLS,
) -> Iterator[pd.DataFrame]:
    """``user_feature_chunk`` over consecutive chunks of ``user_ids``, each small enough that
    its dense day grid holds about ``max_cells`` values (memory stays bounded at any number
    of users)."""
    users = np.sort(np.asarray(user_ids, dtype="int64"))
    n_symbols = max(1, opens["symbol"].nunique())
    days = _day_numbers(pd.concat([opens["day"], closes["day"]]))
    span = _calendar(days, *_window_bounds(snapshot_days))[1]
    per_chunk = max(1, max_cells // (span * (n_symbols + len(OPEN_SUMS) + len(CLOSE_SUMS))))
    opens = opens.sort_values("user_id", kind="stable", ignore_index=True)
    closes = closes.sort_values("user_id", kind="stable", ignore_index=True)
    open_users, close_users = opens["user_id"].to_numpy(), closes["user_id"].to_numpy()
    for first in range(0, len(users), per_chunk):
        chunk = users[first : first + per_chunk]
        low, high = chunk[0], chunk[-1]
        yield user_feature_chunk(
            opens.iloc[_rows_between(open_users, low, high)],
            closes.iloc[_rows_between(close_users, low, high)],
            chunk,
            snapshot_days,
        )


def user_feature_chunk(
    opens: pd.DataFrame,
    closes: pd.DataFrame,
    user_ids: np.ndarray,
    snapshot_days: pd.DatetimeIndex,
) -> pd.DataFrame:
    """The snapshots of ``user_ids`` (rows: user by user, each over ``snapshot_days``), from
    their aggregates in ``opens`` and ``closes`` (rows of other users are ignored).

    Vectorised over users: each aggregate column becomes a dense users x calendar-days grid;
    its cumulative sum along the days gives every window's sum as one difference. The
    embedded path and Spark (``trademaster.features.spark``) both run this function, on
    chunks of users, so the two agree row for row."""
    users = np.unique(np.asarray(user_ids, dtype="int64"))
    cutoffs, starts = _window_bounds(snapshot_days)
    n_users, n_days = len(users), len(cutoffs)
    opens = _own_rows(opens, users, ["user_id", "day", "symbol"])
    closes = _own_rows(closes, users, ["user_id", "day"])
    base, span = _calendar(_day_numbers(pd.concat([opens["day"], closes["day"]])), cutoffs, starts)
    hi, lo = cutoffs - base, starts - base

    def window_sums(rows: pd.DataFrame, columns: list[np.ndarray], n_groups: int) -> np.ndarray:
        """(groups x users, snapshot days) sums per column, rows grouped by ``columns[0]``."""
        user_index = np.searchsorted(users, rows["user_id"].to_numpy())
        cell = (columns[0] * n_users + user_index) * span + (_day_numbers(rows["day"]) - base)
        out = []
        for values in columns[1:]:
            grid = np.bincount(cell, weights=values, minlength=n_groups * n_users * span)
            cumulative = np.zeros((n_groups * n_users, span + 1))
            np.cumsum(grid.reshape(n_groups * n_users, span), axis=1, out=cumulative[:, 1:])
            out.append(cumulative[:, hi] - cumulative[:, lo])
        return np.stack(out)

    out: dict[str, np.ndarray] = {name: np.zeros((n_users, n_days)) for name in USER_FEATURES}
    out["win_rate"] = np.full((n_users, n_days), 0.5)
    if len(opens) and n_days:
        no_group = np.zeros(len(opens), dtype="int64")
        sums = window_sums(
            opens, [no_group, *(opens[name].to_numpy(dtype=float) for name in OPEN_SUMS)], 1
        )
        symbols, symbol_codes = np.unique(opens["symbol"].to_numpy(), return_inverse=True)
        notional = opens["notional_usd"].to_numpy(dtype=float)
        per_symbol = window_sums(opens, [symbol_codes, notional], len(symbols))[0]
        _fill_open_stats(out, sums, per_symbol.reshape(len(symbols), n_users, n_days))
    if len(closes) and n_days:
        no_group = np.zeros(len(closes), dtype="int64")
        columns = [no_group, *(closes[name].to_numpy(dtype=float) for name in CLOSE_SUMS)]
        _fill_close_stats(out, window_sums(closes, columns, 1))
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(users, n_days),
            "event_timestamp": pd.DatetimeIndex(
                np.tile((cutoffs * DAY_NS).astype("datetime64[ns]"), n_users), tz="UTC"
            ),
            **{name: out[name].astype("float32").ravel() for name in USER_FEATURES},
        }
    )
    return frame


def _fill_open_stats(out: dict[str, np.ndarray], sums: np.ndarray, per_symbol: np.ndarray) -> None:
    """``sums``: (OPEN_SUMS, users, days) window sums; ``per_symbol``: (symbols, users, days)
    window sums of notional."""
    count = sums[0]
    active = count > 0
    safe = np.where(active, count, 1.0)
    out["trades_in_window"] = count
    out["trade_frequency"] = count / WINDOW_BUSINESS_DAYS
    out["avg_trade_size"] = np.where(active, sums[1] / safe, 0.0)
    out["avg_leverage"] = np.where(active, sums[2] / safe, 0.0)
    mean_exposure = np.where(active, sums[3] / safe, 0.0)
    out["short_ratio"] = np.where(active, sums[4] / safe, 0.0)
    out["entry_momentum"] = np.where(active, sums[5] / safe, 0.0)
    total = per_symbol.sum(axis=0)
    shares = per_symbol / np.where(total > 0, total, 1.0)
    diversity = 1.0 - (shares**2).sum(axis=0)
    out["portfolio_diversity"] = np.where(active, diversity, 0.0)
    # Risk score: levered exposure per position, scaled by how concentrated the book is.
    out["risk_score"] = mean_exposure * (1.0 + out["avg_leverage"]) * (2.0 - diversity) / 2.0


def _fill_close_stats(out: dict[str, np.ndarray], sums: np.ndarray) -> None:
    """``sums``: (CLOSE_SUMS, users, days) window sums."""
    count = sums[0]
    safe = np.where(count > 0, count, 1.0)
    out["avg_holding_days"] = np.where(count > 0, sums[1] / safe, 0.0)
    out["win_rate"] = np.where(count > 0, sums[2] / safe, 0.5)


def _window_bounds(snapshot_days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Each snapshot's window as day numbers: [start, cutoff), cutoff the midnight after."""
    cutoffs = _day_numbers(pd.Series(snapshot_days)) + 1
    return cutoffs, cutoffs - WINDOW.days


def _calendar(days: np.ndarray, cutoffs: np.ndarray, starts: np.ndarray) -> tuple[int, int]:
    """The first day number and the length of a grid holding every window and every day."""
    first = int(starts.min()) if len(starts) else 0
    base = int(min(first, days.min(initial=first)))
    end = int(max(cutoffs.max(initial=base), days.max(initial=base - 1) + 1))
    return base, end - base


def _day_numbers(days: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 of midnight timestamps."""
    values = pd.to_datetime(days).to_numpy(dtype="datetime64[ns]").astype("int64")
    return values // DAY_NS


def _own_rows(frame: pd.DataFrame, users: np.ndarray, order: list[str]) -> pd.DataFrame:
    """The rows of ``users``, in one fixed order (sums then add up alike on any engine)."""
    own = frame[frame["user_id"].isin(users)]
    return own.sort_values(order, kind="stable", ignore_index=True)


def _rows_between(sorted_users: np.ndarray, low: int, high: int) -> slice:
    return slice(
        int(np.searchsorted(sorted_users, low, side="left")),
        int(np.searchsorted(sorted_users, high, side="right")),
    )
