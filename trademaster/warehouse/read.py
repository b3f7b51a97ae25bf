"""Read-only access to the trading warehouse: the pipeline never writes to it.

The engine enforces it where the database can: SQLite is opened with ``mode=ro``, PostgreSQL
sessions start with ``default_transaction_read_only``, so a bug that tried to write would
fail instead of touching the trading app's data. A database role with only ``SELECT`` on the
tables below is enough (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import sqlalchemy as sa

from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema

log = logging.getLogger(__name__)

TABLES: tuple[sa.Table, ...] = (
    schema.symbols,
    schema.market_data,
    schema.users,
    schema.trades,
    schema.headlines,
)


# The tables whose first and last timestamps the run's summary reports.
SPANNED: tuple[tuple[str, sa.Table], ...] = (("bar", schema.market_data), ("trade", schema.trades))


class WarehouseNotReady(RuntimeError):
    """The warehouse lacks a table the pipeline reads, or holds no rows in one."""


def read_only_engine(url: str) -> sa.Engine:
    """An engine on ``url`` that cannot write (SQLite, PostgreSQL; other dialects as given)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = parsed.database
        return sa.create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"uri": True}
        )
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            url, connect_args={"options": "-c default_transaction_read_only=on"}
        )
    log.warning("%s: read-only not enforced for this dialect", parsed.get_backend_name())
    return sa.create_engine(url)


@contextmanager
def warehouse_connection(settings: PipelineSettings) -> Iterator[sa.Connection]:
    engine = read_only_engine(settings.resolved_warehouse_url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def read_table(settings: PipelineSettings, table: sa.Table) -> pd.DataFrame:
    with warehouse_connection(settings) as connection:
        return pd.read_sql_table(table.name, connection)


def read_trades_since(settings: PipelineSettings, since: pd.Timestamp | None) -> pd.DataFrame:
    """The trades stamped ``since`` or later (every trade when None), selected in SQL;
    ``since`` naive or aware (the warehouse stores naive UTC)."""
    trades = schema.trades
    query = sa.select(trades).order_by(trades.c.trade_id)
    if since is not None and not pd.isna(since):
        stamp = pd.Timestamp(since)
        naive = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
        query = query.where(trades.c.ts >= naive.to_pydatetime())
    with warehouse_connection(settings) as connection:
        return pd.read_sql(query, connection, parse_dates=["ts"])


def row_counts(connection: sa.Connection) -> dict[str, int]:
    """Rows in each of the warehouse tables that exist (absent tables are left out)."""
    present = set(sa.inspect(connection).get_table_names())
    return {
        table.name: int(
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        )
        for table in TABLES
        if table.name in present
    }


def table_counts(settings: PipelineSettings) -> dict[str, int]:
    """Rows per table the pipeline reads; WarehouseNotReady naming what is missing or empty,
    and how to fill a demo warehouse."""
    return _summary(settings, spans=False)["counts"]


def warehouse_summary(settings: PipelineSettings) -> dict[str, Any]:
    """Counts and the time span of bars and trades, computed in the warehouse."""
    summary = _summary(settings, spans=True)
    return {
        "url": redacted_url(settings.resolved_warehouse_url),
        **{f"n_{name}": count for name, count in summary["counts"].items()},
        **summary["spans"],
    }


def _summary(settings: PipelineSettings, spans: bool) -> dict[str, Any]:
    """One connection: the counts (checked) and, with ``spans``, the first and last bar and
    trade."""
    redacted = redacted_url(settings.resolved_warehouse_url)
    found: dict[str, str] = {}
    try:
        with warehouse_connection(settings) as connection:
            counts = row_counts(connection)
            missing = [table.name for table in TABLES if table.name not in counts]
            if missing:
                raise WarehouseNotReady(
                    f"the warehouse at {redacted} has no table {', '.join(missing)}; "
                    "for demo data run `trademaster warehouse seed`"
                )
            empty = [name for name, count in counts.items() if count == 0]
            if empty:
                raise WarehouseNotReady(
                    f"the warehouse at {redacted} has no rows in {', '.join(empty)}; "
                    "for demo data run `trademaster warehouse seed`"
                )
            for kind, table in SPANNED if spans else ():
                first, last = connection.execute(
                    sa.select(sa.func.min(table.c.ts), sa.func.max(table.c.ts))
                ).one()
                found[f"first_{kind}"], found[f"last_{kind}"] = str(first), str(last)
    except sa.exc.OperationalError as exc:
        raise WarehouseNotReady(f"cannot read the warehouse at {redacted}: {exc.orig}") from exc
    return {"counts": counts, "spans": found}


def redacted_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
