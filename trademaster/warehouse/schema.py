"""Warehouse tables (SQLAlchemy Core), portable across sqlite, duckdb and Postgres."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

symbols = Table(
    "symbols",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("asset_class", String(16), nullable=False),
    Column("sector", String(32), nullable=False),
    # "real:backtesting/GOOG.csv" for shipped histories, "generated" for synthetic ones.
    Column("source", String(64), nullable=False),
)

market_data = Table(
    "market_data",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("interval", String(4), primary_key=True),  # "1d", "1h" or "1mo"
    Column("ts", DateTime, primary_key=True),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("volume", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True),
    # Ground truth of the generator; never a model input. ``archetype`` is the one in
    # effect now; a drifting user had ``previous_archetype`` until ``archetype_since``.
    Column("archetype", String(32), nullable=False),
    Column("previous_archetype", String(32), nullable=True),
    Column("archetype_since", DateTime, nullable=True),
    # Mixed users trade ``secondary_share`` of their positions in a second style.
    Column("secondary_archetype", String(32), nullable=True),
    Column("secondary_share", Float, nullable=False),
    Column("capital_usd", Float, nullable=False),
    Column("signup_date", DateTime, nullable=False),
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", Integer, primary_key=True),
    Column("position_id", Integer, nullable=False, index=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("symbol", String(16), nullable=False),
    Column("ts", DateTime, nullable=False, index=True),
    Column("action", String(8), nullable=False),  # "open" or "close"
    Column("side", String(4), nullable=False),  # "buy" or "sell"
    Column("direction", String(5), nullable=False),  # "long" or "short"
    Column("quantity", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("notional_usd", Float, nullable=False),
    Column("leverage", Float, nullable=False),
)

headlines = Table(
    "headlines",
    metadata,
    Column("headline_id", Integer, primary_key=True),
    Column("symbol", String(16), nullable=False, index=True),
    Column("ts", DateTime, nullable=False, index=True),
    Column("headline", String(256), nullable=False),  # generated; longest so far ~95 chars
    Column("template_id", Integer, nullable=False),
    Column("label", String(8), nullable=False),  # negative / neutral / positive
)

TABLES = (symbols, market_data, users, trades, headlines)
