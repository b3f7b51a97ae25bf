"""Demo data for an empty warehouse: real OHLCV histories, generated symbols, users, trades and
headlines, written in one transaction by ``trademaster warehouse seed``.

This is the only code that writes to a warehouse, and only when asked: it refuses one that
already holds rows in any of its tables unless ``replace=True`` (``--replace``), and then
replaces those tables only; other tables are never touched. The pipeline only reads
(``trademaster.warehouse.read``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.headlines import generate_headlines
from trademaster.warehouse.market import (
    REAL_HISTORIES,
    business_calendar,
    generate_symbols,
    load_real_history,
    real_symbol_table,
)
from trademaster.warehouse.read import redacted_url, row_counts
from trademaster.warehouse.trades import PricePanel, simulate_trades
from trademaster.warehouse.users import generate_users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarehouseSummary:
    url: str
    n_symbols: int
    n_real_symbols: int
    n_market_rows: int
    n_users: int
    n_trades: int
    n_headlines: int
    first_bar: str
    last_bar: str
    first_trade: str
    last_trade: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class WarehouseFrames:
    symbols: pd.DataFrame
    market_data: pd.DataFrame
    users: pd.DataFrame
    trades: pd.DataFrame
    headlines: pd.DataFrame


def generate_frames(settings: PipelineSettings) -> WarehouseFrames:
    """All warehouse tables as data frames; deterministic for (seed, end_date, sizes)."""
    rng = np.random.default_rng(settings.seed)
    calendar = business_calendar(settings.resolved_end_date, settings.history_business_days)
    generated_bars, generated_symbols = generate_symbols(
        settings.n_generated_symbols, calendar, rng
    )
    real_bars = pd.concat([load_real_history(history) for history in REAL_HISTORIES])
    first_trade_day = len(calendar) - settings.trade_window_business_days
    users = generate_users(settings.n_users, calendar[first_trade_day:], rng)
    trades = simulate_trades(
        users, PricePanel.from_bars(generated_bars), first_trade_day, settings.n_trades, rng
    )
    # After the trades, with the same generator, so the other tables do not change.
    headlines = generate_headlines(
        generated_bars[generated_bars["ts"] >= calendar[first_trade_day]],
        rng,
        dict(zip(generated_symbols["symbol"], generated_symbols["sector"], strict=True)),
    )
    return WarehouseFrames(
        symbols=pd.concat([real_symbol_table(), generated_symbols], ignore_index=True),
        market_data=pd.concat([real_bars, generated_bars], ignore_index=True),
        users=users,
        trades=trades,
        headlines=headlines,
    )


class WarehouseNotEmpty(RuntimeError):
    """Seeding would replace rows someone else may own."""


def seed_if_empty(settings: PipelineSettings) -> WarehouseSummary | None:
    """Seeds a warehouse whose tables are missing or hold no rows (``make up`` on a fresh
    machine); None, touching nothing, when any of them holds rows."""
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        with engine.connect() as connection:
            if any(row_counts(connection).values()):
                return None
    except sa.exc.OperationalError:
        pass  # no database file yet (SQLite): seeding creates it
    finally:
        engine.dispose()
    return seed_warehouse(settings)


def seed_warehouse(settings: PipelineSettings, replace: bool = False) -> WarehouseSummary:
    """Generates the demo data and writes it to the warehouse at ``settings.warehouse_url``:
    creates the tables if missing; refuses (WarehouseNotEmpty, saying what would be lost) if
    any holds rows, unless ``replace``."""
    url = settings.resolved_warehouse_url
    if url.startswith("sqlite:///"):
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = {name: count for name, count in row_counts(connection).items() if count}
        if rows and not replace:
            listed = ", ".join(f"{name} ({count:,} rows)" for name, count in rows.items())
            raise WarehouseNotEmpty(
                f"the warehouse at {redacted_url(url)} is not empty: {listed}. Seeding would "
                "delete all of that; pass --replace to do it anyway (other tables are kept)"
            )
        log.info("generating market data, users and trades (seed=%d)", settings.seed)
        frames = generate_frames(settings)
        with engine.begin() as connection:
            if rows:
                log.warning("replacing %s", ", ".join(rows))
            # Only the seed's own tables, dropped and created again (their schema may have
            # changed); the trading app's other tables are not in this metadata.
            schema.metadata.drop_all(connection)
            schema.metadata.create_all(connection)
            for table, frame in (
                (schema.symbols, frames.symbols),
                (schema.market_data, frames.market_data),
                (schema.users, frames.users),
                (schema.trades, frames.trades),
                (schema.headlines, frames.headlines),
            ):
                log.info("writing %s: %d rows", table.name, len(frame))
                insert_frame(connection, table, frame)
    finally:
        engine.dispose()
    daily = frames.market_data[frames.market_data["interval"] == "1d"]
    return WarehouseSummary(
        url=redacted_url(url),
        n_symbols=len(frames.symbols),
        n_real_symbols=int((frames.symbols["source"] != "generated").sum()),
        n_market_rows=len(frames.market_data),
        n_users=len(frames.users),
        n_trades=len(frames.trades),
        n_headlines=len(frames.headlines),
        first_bar=str(daily["ts"].min().date()),
        last_bar=str(daily["ts"].max().date()),
        first_trade=str(frames.trades["ts"].min()),
        last_trade=str(frames.trades["ts"].max()),
    )


def insert_frame(connection: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    columns = [column.name for column in table.columns]
    values = frame[columns].astype(object)
    records = values.where(values.notna(), None).to_dict(orient="records")
    for start in range(0, len(records), 20_000):
        connection.execute(table.insert(), records[start : start + 20_000])
