"""Trade simulation: each user opens and closes positions the way their archetype does.

Day traders open and close within a session with leverage; swing traders hold days to weeks;
long-term investors hold months, unlevered and diversified; momentum chasers buy what rose most
over the last 20 days; panic sellers sell as soon as a position is 4% under water. Positions
still open at the end of the calendar have only their opening trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trademaster.warehouse.users import ARCHETYPES

MARKET_OPEN_UTC = pd.Timedelta(hours=14, minutes=30)
SESSION = pd.Timedelta(hours=6, minutes=30)


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
) -> pd.DataFrame:
    """At least ``n_trades`` trades, from day index ``first_trade_day`` to the panel's end."""
    positions = _plan_positions(users, panel, first_trade_day, n_trades, rng)
    positions = _apply_exits(positions, panel)
    trades = _positions_to_trades(positions, panel, rng)
    if len(trades) < n_trades:  # only if nearly everything is still open; plan more
        return simulate_trades(users, panel, first_trade_day, math.ceil(n_trades * 1.1), rng)
    return trades


def _plan_positions(
    users: pd.DataFrame,
    panel: PricePanel,
    first_trade_day: int,
    n_trades: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    archetypes = {archetype.name: archetype for archetype in ARCHETYPES}
    activity = np.array([archetypes[name].activity for name in users["archetype"]])
    activity = activity * np.exp(rng.normal(0.0, 0.4, size=len(users)))
    target_positions = math.ceil(n_trades / 2 * 1.06)
    counts = np.maximum(1, np.round(activity / activity.sum() * target_positions)).astype(int)

    n_days, n_symbols = panel.close.shape
    leaders = panel.momentum_leaders()
    frames = []
    for user, count in zip(users.itertuples(index=False), counts, strict=True):
        archetype = archetypes[str(user.archetype)]
        watch_size = int(rng.integers(archetype.watchlist_size[0], archetype.watchlist_size[1] + 1))
        watchlist = rng.choice(n_symbols, size=min(watch_size, n_symbols), replace=False)
        entry_day = rng.integers(first_trade_day, n_days, size=count)
        if archetype.entry_rule == "momentum":
            pick = rng.integers(0, leaders.shape[1], size=count)
            symbol = leaders[entry_day, pick]
        else:
            symbol = rng.choice(watchlist, size=count)
        base_leverage = rng.uniform(*archetype.leverage)
        leverage = np.clip(base_leverage + rng.normal(0, 0.25, size=count), *archetype.leverage)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": user.user_id,
                    "archetype": archetype.name,
                    "symbol_index": symbol,
                    "entry_day": entry_day,
                    "hold_days": rng.integers(
                        archetype.holding_days[0], archetype.holding_days[1] + 1, size=count
                    ),
                    "direction": np.where(
                        rng.random(count) < archetype.short_probability, "short", "long"
                    ),
                    "leverage": np.round(leverage * 2) / 2,
                    "notional_target": user.capital_usd
                    * rng.uniform(*archetype.position_fraction, size=count),
                    "stop_loss": archetype.stop_loss or 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


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
