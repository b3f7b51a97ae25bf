"""Trade simulation: each user opens and closes positions the way their archetype does.

Day traders open and close within a session with leverage; swing traders hold days to weeks;
long-term investors hold months, unlevered and diversified; momentum chasers buy what rose most
over the last 20 days; panic sellers sell as soon as a position is 4% under water. Mixed users
trade a share of their positions in a second style, drifting users switch archetype once, and
nobody trades before signing up. Positions still open at the end of the calendar have only
their opening trade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from trademaster.warehouse.users import ARCHETYPE_BY_NAME, Archetype

MARKET_OPEN_UTC = pd.Timedelta(hours=14, minutes=30)
SESSION = pd.Timedelta(hours=6, minutes=30)


class Habit(NamedTuple):
    """What a user traded so far: the symbols and the typical leverage."""

    symbols: tuple[str, ...]
    leverage: float


def trading_habits(opens: pd.DataFrame) -> dict[int, Habit]:
    """Per user, from their opening trades (``user_id``, ``symbol``, ``leverage``)."""
    return {
        int(user): Habit(tuple(sorted(set(rows["symbol"]))), float(rows["leverage"].median()))
        for user, rows in opens.groupby("user_id")
    }


@dataclass(frozen=True)
class PricePanel:
    """Daily bars of the tradable symbols as (days x symbols) arrays over one calendar."""

    calendar: pd.DatetimeIndex
    symbols: tuple[str, ...]
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> PricePanel:
        wide = bars.pivot(index="ts", columns="symbol")
        return cls(
            calendar=pd.DatetimeIndex(wide.index),
            symbols=tuple(wide["close"].columns),
            high=wide["high"].to_numpy(),
            low=wide["low"].to_numpy(),
            close=wide["close"].to_numpy(),
        )

    def momentum_leaders(self, lookback: int = 20, top: int = 5) -> np.ndarray:
        """Per day, the indices of the ``top`` symbols by trailing ``lookback``-day return."""
        trailing = np.full_like(self.close, -np.inf)
        # Up to the previous close: a trader entering during day d cannot see d's close.
        trailing[lookback + 1 :] = self.close[lookback:-1] / self.close[: -lookback - 1] - 1
        return np.argsort(-trailing, axis=1)[:, :top]


def simulate_trades(
    users: pd.DataFrame,
    panel: PricePanel,
    first_trade_day: int,
    n_trades: int,
    rng: np.random.Generator,
    positions: float | None = None,
    habits: Mapping[int, Habit] | None = None,
) -> pd.DataFrame:
    """At least ``n_trades`` trades, from day index ``first_trade_day`` to the panel's end.

    Positions still open at the end have no closing trade, so when too many are open the
    plan grows (by the shortfall, at least 10%) until the trades reach ``n_trades``.

    ``positions`` instead continues a market that is already trading (``market advance``):
    that many positions opened on average, each user drawing a Poisson count at their
    rate (most users open none on a given day), and whatever trades they make; the seed's
    "at least one position per user" would have every user trade on every new day.
    ``habits`` keeps users on the symbols and leverage they traded before (a continued
    market would otherwise draw every user a new watchlist each day).
    """
    if positions is not None:
        planned_positions = _plan_positions(
            users, panel, first_trade_day, 0, rng, positions, habits
        )
        return _positions_to_trades(_apply_exits(planned_positions, panel), panel, rng)
    planned = n_trades
    for _ in range(_MAX_PLANS):
        positions = _plan_positions(users, panel, first_trade_day, planned, rng)
        positions = _apply_exits(positions, panel)
        trades = _positions_to_trades(positions, panel, rng)
        if len(trades) >= n_trades:
            return trades
        planned = math.ceil(planned * max(1.1, n_trades / max(1, len(trades))))
    raise RuntimeError(
        f"could not plan {n_trades} trades in {_MAX_PLANS} attempts (last: {len(trades)}); "
        "the trade window is too short for the positions' holding periods"
    )


_MAX_PLANS = 10


def _plan_positions(
    users: pd.DataFrame,
    panel: PricePanel,
    first_trade_day: int,
    n_trades: int,
    rng: np.random.Generator,
    expected_positions: float | None = None,
    habits: Mapping[int, Habit] | None = None,
) -> pd.DataFrame:
    """Positions of every user: in each phase (before / after a drift) the phase's archetype,
    except a ``secondary_share`` of positions in the user's secondary style; none before the
    user signed up. ``archetype`` of a position is the style it was traded in.

    ``expected_positions``: Poisson counts around that total (continuation) instead of at
    least one position per phase sized for ``n_trades``."""
    n_symbols = panel.close.shape[1]
    phases = _user_phases(users, panel.calendar, first_trade_day)
    # Expected positions of each phase: its archetype's activity times its length.
    user_noise = np.exp(rng.normal(0.0, 0.4, size=len(users)))
    weight = np.array(
        [
            ARCHETYPE_BY_NAME[name].activity * (end - start) * user_noise[row]
            for row, name, start, end in phases
        ]
    )
    if expected_positions is not None:
        counts = rng.poisson(weight / weight.sum() * expected_positions)
    else:
        target_positions = math.ceil(n_trades / 2 * 1.06)
        counts = np.maximum(1, np.round(weight / weight.sum() * target_positions)).astype(int)

    leaders = panel.momentum_leaders()
    style_state: dict[tuple[int, str], tuple[np.ndarray, float]] = {}
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _POSITION_COLUMNS}
    for (row, phase_archetype, start, end), count in zip(phases, counts, strict=True):
        user = users.iloc[row]
        secondary = user["secondary_archetype"]
        use_secondary = (
            rng.random(count) < float(user["secondary_share"])
            if isinstance(secondary, str)
            else np.zeros(count, dtype=bool)
        )
        entry_days = rng.integers(start, end, size=count)
        for style_name, chosen in ((phase_archetype, ~use_secondary), (secondary, use_secondary)):
            if not chosen.any():
                continue
            style = ARCHETYPE_BY_NAME[str(style_name)]
            key = (row, style.name)
            habit = (habits or {}).get(int(user["user_id"]))
            if key not in style_state and habit is not None:  # as the user traded before
                symbols = [
                    panel.symbols.index(name) for name in habit.symbols if name in panel.symbols
                ]
                if symbols:
                    low, high = style.leverage
                    style_state[key] = (np.array(symbols), min(max(habit.leverage, low), high))
            if key not in style_state:  # a user keeps one watchlist and leverage per style
                size = int(rng.integers(style.watchlist_size[0], style.watchlist_size[1] + 1))
                watchlist = rng.choice(n_symbols, size=min(size, n_symbols), replace=False)
                style_state[key] = (watchlist, float(rng.uniform(*style.leverage)))
            watchlist, base_leverage = style_state[key]
            _append_style_positions(
                columns,
                style,
                int(user["user_id"]),
                float(user["capital_usd"]),
                entry_days[chosen],
                watchlist,
                base_leverage,
                leaders,
                rng,
            )
    return pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})


_POSITION_COLUMNS = (
    "user_id",
    "archetype",
    "symbol_index",
    "entry_day",
    "hold_days",
    "direction",
    "leverage",
    "notional_target",
    "stop_loss",
)


def _user_phases(
    users: pd.DataFrame, calendar: pd.DatetimeIndex, first_trade_day: int
) -> list[tuple[int, str, int, int]]:
    """(row, archetype, first day, end day) of each user's trading phases, in day indices."""
    signup_day = np.searchsorted(calendar, users["signup_date"].to_numpy(), side="left")
    since = pd.to_datetime(users["archetype_since"])
    since_day = np.searchsorted(calendar, since.fillna(calendar[-1]).to_numpy(), side="left")
    n_days = len(calendar)
    phases = []
    for row in range(len(users)):
        start = max(first_trade_day, int(signup_day[row]))
        previous = users["previous_archetype"].iloc[row]
        current = str(users["archetype"].iloc[row])
        if isinstance(previous, str) and start < since_day[row] < n_days:
            phases.append((row, previous, start, int(since_day[row])))
            start = int(since_day[row])
        phases.append((row, current, min(start, n_days - 1), n_days))
    return phases


def _append_style_positions(
    columns: dict[str, list[np.ndarray]],
    style: Archetype,
    user_id: int,
    capital: float,
    entry_day: np.ndarray,
    watchlist: np.ndarray,
    base_leverage: float,
    leaders: np.ndarray,
    rng: np.random.Generator,
) -> None:
    count = len(entry_day)
    if style.entry_rule == "momentum":
        symbol = leaders[entry_day, rng.integers(0, leaders.shape[1], size=count)]
    else:
        symbol = rng.choice(watchlist, size=count)
    leverage = np.clip(base_leverage + rng.normal(0, 0.25, size=count), *style.leverage)
    values = {
        "user_id": np.full(count, user_id),
        "archetype": np.full(count, style.name, dtype=object),
        "symbol_index": symbol,
        "entry_day": entry_day,
        "hold_days": rng.integers(style.holding_days[0], style.holding_days[1] + 1, size=count),
        "direction": np.where(rng.random(count) < style.short_probability, "short", "long"),
        "leverage": np.round(leverage * 2) / 2,
        "notional_target": capital * rng.uniform(*style.position_fraction, size=count),
        "stop_loss": np.full(count, style.stop_loss or 0.0),
    }
    for name, value in values.items():
        columns[name].append(value)


def _apply_exits(positions: pd.DataFrame, panel: PricePanel) -> pd.DataFrame:
    """Exit day per position: planned holding period, or earlier for a triggered stop-loss."""
    exit_day = (positions["entry_day"] + positions["hold_days"]).to_numpy().copy()
    stops = positions.index[positions["stop_loss"] > 0]
    close = panel.close
    for row in stops:
        entry = int(positions.at[row, "entry_day"])
        last = min(int(exit_day[row]), close.shape[0] - 1)
        symbol = int(positions.at[row, "symbol_index"])
        path = close[entry + 1 : last + 1, symbol] / close[entry, symbol] - 1
        hit = np.flatnonzero(path <= -positions.at[row, "stop_loss"])
        if hit.size:
            exit_day[row] = entry + 1 + int(hit[0])
    out = positions.assign(exit_day=exit_day)
    return out.assign(is_closed=out["exit_day"] < close.shape[0])


def _positions_to_trades(
    positions: pd.DataFrame, panel: PricePanel, rng: np.random.Generator
) -> pd.DataFrame:
    n = len(positions)
    symbol = positions["symbol_index"].to_numpy()
    entry_day = positions["entry_day"].to_numpy()
    exit_day = np.minimum(positions["exit_day"].to_numpy(), len(panel.calendar) - 1)
    intraday = positions["hold_days"].to_numpy() == 0

    entry_fraction = rng.uniform(0.02, 0.6, size=n)
    exit_fraction = np.where(
        intraday, rng.uniform(entry_fraction + 0.05, 0.98), rng.uniform(0.02, 0.98, size=n)
    )
    entry_price = _price_within_range(panel, entry_day, symbol, rng)
    exit_price = _price_within_range(panel, exit_day, symbol, rng)
    stopped = positions["stop_loss"].to_numpy() > 0
    exit_price = np.where(stopped, panel.close[exit_day, symbol], exit_price)

    quantity = np.maximum(1.0, np.floor(positions["notional_target"].to_numpy() / entry_price))
    is_long = positions["direction"].to_numpy() == "long"
    symbols = np.array(panel.symbols)[symbol]
    position_id = np.arange(1, n + 1)

    opens = pd.DataFrame(
        {
            "position_id": position_id,
            "user_id": positions["user_id"].to_numpy(),
            "symbol": symbols,
            "ts": (panel.calendar[entry_day] + MARKET_OPEN_UTC + SESSION * entry_fraction).floor(
                "s"
            ),
            "action": "open",
            "side": np.where(is_long, "buy", "sell"),
            "direction": positions["direction"].to_numpy(),
            "quantity": quantity,
            "price": np.round(entry_price, 4),
            "leverage": positions["leverage"].to_numpy(),
            # Ground truth of the generator (the style the position was traded in), for
            # tests; not a warehouse column.
            "style": positions["archetype"].to_numpy(),
        }
    )
    closed = positions["is_closed"].to_numpy()
    closes = pd.DataFrame(
        {
            "position_id": position_id[closed],
            "user_id": positions["user_id"].to_numpy()[closed],
            "symbol": symbols[closed],
            "ts": (
                panel.calendar[exit_day[closed]] + MARKET_OPEN_UTC + SESSION * exit_fraction[closed]
            ).floor("s"),
            "action": "close",
            "side": np.where(is_long[closed], "sell", "buy"),
            "direction": positions["direction"].to_numpy()[closed],
            "quantity": quantity[closed],
            "price": np.round(exit_price[closed], 4),
            "leverage": positions["leverage"].to_numpy()[closed],
            "style": positions["archetype"].to_numpy()[closed],
        }
    )
    trades = pd.concat([opens, closes], ignore_index=True)
    trades["notional_usd"] = np.round(trades["quantity"] * trades["price"], 2)
    trades = trades.sort_values(["ts", "position_id"], ignore_index=True)
    trades.insert(0, "trade_id", np.arange(1, len(trades) + 1))
    return trades


def _price_within_range(
    panel: PricePanel, day: np.ndarray, symbol: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    low = panel.low[day, symbol]
    high = panel.high[day, symbol]
    return low + (high - low) * rng.beta(2.0, 2.0, size=len(day))
