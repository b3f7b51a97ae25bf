"""Small generated warehouses and views of them, shared by the warehouse tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademaster.settings import PipelineSettings
from trademaster.warehouse.seed import WarehouseFrames

END_DATE = date(2026, 6, 30)  # a Tuesday


def small_settings(**overrides: Any) -> PipelineSettings:
    """Small but complete data: 20 generated symbols so that momentum leaders are selective."""
    values: dict[str, Any] = {
        "end_date": END_DATE,
        "n_users": 100,
        "n_trades": 2_000,
        "n_generated_symbols": 20,
        "history_business_days": 200,
        "trade_window_business_days": 100,
        **overrides,
    }
    return PipelineSettings(**values)


def seeded_small_warehouse(root: Path) -> PipelineSettings:
    """``small_settings`` with data and a seeded SQLite warehouse under ``root``."""
    from trademaster.warehouse.seed import seed_warehouse

    settings = small_settings(data_dir=root, warehouse_url=f"sqlite:///{root / 'warehouse.db'}")
    seed_warehouse(settings)
    return settings


def positions_of(frames: WarehouseFrames) -> pd.DataFrame:
    """One row per position: the opening trade, its closing trade (``close_*``, NaN while the
    position is open) and ``archetype``, the style the generator traded it in (a mixed or
    drifting user's positions do not all follow the user's current archetype)."""
    trades = frames.trades.rename(columns={"style": "archetype"})
    opens = trades[trades["action"] == "open"].set_index("position_id")
    closes = trades[trades["action"] == "close"].set_index("position_id")
    return opens.join(closes.drop(columns="archetype").add_prefix("close_"), how="left")


def on_entry_day(wide: pd.DataFrame, ts: pd.Series, symbols: pd.Series) -> np.ndarray:
    """Values of a (days x symbols) frame on the day of each timestamp, for each symbol."""
    keys = pd.MultiIndex.from_arrays([ts.dt.normalize(), symbols])
    return wide.stack().reindex(keys).to_numpy()


def generated_bars(frames: WarehouseFrames, column: str) -> pd.DataFrame:
    """One OHLCV column of the generated symbols as a (days x symbols) frame."""
    bars = frames.market_data[frames.market_data["symbol"].str.startswith("SYN")]
    return bars.pivot(index="ts", columns="symbol", values=column)
