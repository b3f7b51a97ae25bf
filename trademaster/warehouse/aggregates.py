"""Daily aggregates computed in the warehouse: per user and day, per symbol and day.

SQLAlchemy Core expressions that run on SQLite and PostgreSQL (and other dialects through the
SQL-standard forms), so the pipeline reads aggregated rows instead of whole tables. Every
query takes a ``since`` day and reads only rows stamped on or after its midnight (the
``ts`` columns are indexed); a day is the calendar day of ``ts`` (UTC, as stored).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from trademaster.warehouse import schema

# Intervals that make daily bars (hourly ones are aggregated; monthly bars are not daily).
DAILY_INTERVALS = ("1d", "1h")


class day_of(FunctionElement[date]):  # lower case, like the SQL functions it stands for
    """The calendar day of a timestamp."""

    type = sa.Date()
    inherit_cache = True


@compiles(day_of)
def _day_of_standard(element: day_of, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(day_of, "sqlite")
def _day_of_sqlite(element: day_of, compiler: Any, **kw: Any) -> str:
    # SQLite has no DATE type: CAST would keep only the year.
    return f"date({compiler.process(element.clauses, **kw)})"


class days_between(FunctionElement[float]):
    """``later - earlier`` in (fractional) days."""

    type = sa.Float()
    inherit_cache = True


@compiles(days_between)
def _days_between_standard(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def opens_by_user_symbol_day(since: date) -> sa.Select[Any]:
    """Positions opened per user, day and symbol: counts, notional, leverage, exposure (levered
    notional / the user's capital) and how many were short.

    The symbol stays in the key because diversity (1 - HHI of notional per symbol) and entry
    momentum (a per-symbol, per-day market value) need it."""
    trades, users = schema.trades, schema.users
    day = day_of(trades.c.ts).label("day")
    # Grouped by day first: SQLite then reads the range through the ts index.
    return (
        sa.select(
            trades.c.user_id,
            day,
            trades.c.symbol,
            sa.func.count().label("n_opened"),
            sa.func.sum(trades.c.notional_usd).label("notional_usd"),
            sa.func.sum(trades.c.leverage).label("leverage"),
            sa.func.sum(trades.c.notional_usd * trades.c.leverage / users.c.capital_usd).label(
                "exposure"
            ),
            sa.func.sum(sa.case((trades.c.direction == "short", 1), else_=0)).label("n_short"),
        )
        .join(users, users.c.user_id == trades.c.user_id)
        .where(trades.c.action == "open", trades.c.ts >= midnight(since))
        .group_by(day, trades.c.user_id, trades.c.symbol)
    )


def closes_by_user_day(since: date) -> sa.Select[Any]:
    """Positions closed per user and day: counts, days held and how many closed in profit.

    Each closing trade is joined with its position's opening trade (wherever that fell), so a
    position counts on the day it closed."""
    closing = schema.trades.alias("closing")
    opening = schema.trades.alias("opening")
    day = day_of(closing.c.ts).label("day")
    change = closing.c.price / opening.c.price - 1
    pnl = sa.case((opening.c.direction == "long", change), else_=-change)
    return (
        sa.select(
            closing.c.user_id,
            day,
            sa.func.count().label("n_closed"),
            sa.func.sum(days_between(closing.c.ts, opening.c.ts)).label("holding_days"),
            sa.func.sum(sa.case((pnl > 0, 1), else_=0)).label("n_won"),
        )
        .join(
            opening,
            sa.and_(opening.c.position_id == closing.c.position_id, opening.c.action == "open"),
        )
        .where(closing.c.action == "close", closing.c.ts >= midnight(since))
        .group_by(day, closing.c.user_id)
    )


def bars_by_symbol_day(since: dict[str, date]) -> sa.Select[Any]:
    """Daily OHLCV per symbol: daily bars as stored, hourly bars aggregated (first open, highest
    high, lowest low, last close, summed volume), for each symbol from its own ``since`` day.
    """
    bars = schema.market_data
    day = day_of(bars.c.ts).label("day")
    windows = [
        sa.and_(bars.c.symbol == symbol, bars.c.ts >= midnight(first))
        for symbol, first in sorted(since.items())
    ]
    per_day = (
        sa.select(
            bars.c.symbol,
            bars.c.interval,
            day,
            sa.func.min(bars.c.ts).label("first_ts"),
            sa.func.max(bars.c.ts).label("last_ts"),
            sa.func.max(bars.c.high).label("high"),
            sa.func.min(bars.c.low).label("low"),
            sa.func.sum(bars.c.volume).label("volume"),
        )
        .where(bars.c.interval.in_(DAILY_INTERVALS), sa.or_(sa.false(), *windows))
        .group_by(bars.c.symbol, bars.c.interval, day)
        .subquery("per_day")
    )
    first_bar = bars.alias("first_bar")
    last_bar = bars.alias("last_bar")
    return (
        sa.select(
            per_day.c.symbol,
            per_day.c.day,
            first_bar.c.open,
            per_day.c.high,
            per_day.c.low,
            last_bar.c.close,
            per_day.c.volume,
        )
        .join(first_bar, _same_bar(first_bar, per_day, per_day.c.first_ts))
        .join(last_bar, _same_bar(last_bar, per_day, per_day.c.last_ts))
    )


def _same_bar(bars: sa.FromClause, per_day: sa.Subquery, ts: ColumnElement[Any]) -> Any:
    return sa.and_(
        bars.c.symbol == per_day.c.symbol, bars.c.interval == per_day.c.interval, bars.c.ts == ts
    )


def last_bar_days(connection: sa.Connection) -> dict[str, date]:
    """The newest day with a daily (or hourly) bar, per symbol."""
    bars = schema.market_data
    query = (
        sa.select(bars.c.symbol, sa.func.max(bars.c.ts))
        .where(bars.c.interval.in_(DAILY_INTERVALS))
        .group_by(bars.c.symbol)
    )
    return {str(symbol): _as_date(last) for symbol, last in connection.execute(query)}


def trade_day_span(connection: sa.Connection) -> tuple[date, date] | None:
    """The first and the last day with a trade; None without trades."""
    trades = schema.trades
    query = sa.select(sa.func.min(trades.c.ts), sa.func.max(trades.c.ts))
    first, last = connection.execute(query).one()
    if first is None:
        return None
    return _as_date(first), _as_date(last)


def user_ids(connection: sa.Connection) -> list[int]:
    query = sa.select(schema.users.c.user_id).order_by(schema.users.c.user_id)
    return [int(user_id) for user_id in connection.scalars(query)]


def fetch(connection: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    """The query's rows as a frame, ``day`` as datetime64 (midnight)."""
    result = connection.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if "day" in frame:
        frame["day"] = pd.to_datetime(frame["day"]).astype("datetime64[ns]")
    return frame


def _as_date(value: Any) -> date:
    # SQLite hands aggregates of DateTime columns back as text.
    return pd.Timestamp(value).date()
