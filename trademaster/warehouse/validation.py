"""Data validation before training: schema, nulls, ranges, duplicate keys and row counts.

The checks run in the warehouse, as SQL: one aggregate query per table (row count, nulls per
column, rows failing each rule), one ``GROUP BY ... HAVING`` for repeated keys, one anti-join
for trades of unknown users. Only counts come back, so validating 5M trades costs what the
database needs to scan them, not Python memory. Every problem found is collected, so a
corrupt warehouse fails with one message listing all of them instead of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from trademaster.warehouse import schema

# A rule on one table's columns; a row passes where it is true (NULL fails, as false).
Rule = Callable[[sa.ColumnCollection[str, sa.Column[object]]], ColumnElement[bool]]
# Slack for the OHLC ordering (prices as stored: floats).
OHLC_SLACK = 1e-9


class DataValidationError(ValueError):
    """The warehouse does not satisfy the contract the features and models rely on."""


@dataclass(frozen=True)
class TableContract:
    table: sa.Table
    required_columns: tuple[str, ...]
    min_rows: int
    non_null: tuple[str, ...]
    checks: tuple[tuple[str, Rule], ...] = field(default=())
    # Columns identifying a row: a warehouse without the constraint may still repeat them.
    key: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.table.name


def _ohlc_consistent(c: sa.ColumnCollection[str, sa.Column[object]]) -> ColumnElement[bool]:
    return sa.and_(
        *(c.low <= c[price] + OHLC_SLACK for price in ("open", "close")),
        *(c.high >= c[price] - OHLC_SLACK for price in ("open", "close")),
    )


def contracts(min_users: int, min_trades: int) -> tuple[TableContract, ...]:
    return (
        TableContract(
            schema.market_data,
            ("symbol", "interval", "ts", "open", "high", "low", "close", "volume"),
            min_rows=1_000,
            non_null=("symbol", "ts", "open", "high", "low", "close", "volume"),
            checks=(
                (
                    "prices are positive",
                    lambda c: sa.and_(*(c[p] > 0 for p in ("open", "high", "low", "close"))),
                ),
                ("volume is not negative", lambda c: c.volume >= 0),
                ("low <= open, close <= high", _ohlc_consistent),
                ("interval is 1d, 1h or 1mo", lambda c: c.interval.in_(["1d", "1h", "1mo"])),
            ),
            key=("symbol", "interval", "ts"),
        ),
        TableContract(
            schema.users,
            ("user_id", "archetype", "secondary_share", "capital_usd", "signup_date"),
            min_rows=min_users,
            non_null=("user_id", "archetype", "capital_usd"),
            checks=(
                ("capital is positive", lambda c: c.capital_usd > 0),
                ("secondary_share is in [0, 1)", lambda c: c.secondary_share.between(0, 0.999)),
            ),
            key=("user_id",),
        ),
        TableContract(
            schema.headlines,
            ("headline_id", "symbol", "ts", "headline", "template_id", "label"),
            min_rows=1,
            non_null=("headline_id", "symbol", "ts", "headline", "label"),
            key=("headline_id",),
            checks=(
                (
                    "label is negative, neutral or positive",
                    lambda c: c.label.in_(["negative", "neutral", "positive"]),
                ),
                (
                    "headline is 1 to 256 characters",
                    lambda c: sa.func.length(c.headline).between(1, 256),
                ),
            ),
        ),
        TableContract(
            schema.trades,
            (
                "trade_id",
                "position_id",
                "user_id",
                "symbol",
                "ts",
                "action",
                "side",
                "direction",
                "quantity",
                "price",
                "notional_usd",
                "leverage",
            ),
            min_rows=min_trades,
            non_null=("trade_id", "user_id", "symbol", "ts", "price", "quantity", "leverage"),
            key=("trade_id",),
            checks=(
                ("price is positive", lambda c: c.price > 0),
                ("quantity is positive", lambda c: c.quantity > 0),
                ("leverage within [1, 10]", lambda c: c.leverage.between(1, 10)),
                ("action is open or close", lambda c: c.action.in_(["open", "close"])),
                ("side is buy or sell", lambda c: c.side.in_(["buy", "sell"])),
            ),
        ),
    )


def validate_warehouse(
    connection: sa.Connection, min_users: int, min_trades: int
) -> dict[str, int]:
    """Checks every table against its contract, in the warehouse; returns the row count per
    table, or raises one error listing every problem."""
    problems: list[str] = []
    counts: dict[str, int] = {}
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    for contract in contracts(min_users, min_trades):
        if contract.name not in present:
            problems.append(f"{contract.name}: no such table")
            continue
        columns = {column["name"] for column in inspector.get_columns(contract.name)}
        missing = [column for column in contract.required_columns if column not in columns]
        if missing:
            problems.append(f"{contract.name}: missing columns {missing}")
            continue
        counts[contract.name], table_problems = _check_table(connection, contract)
        problems.extend(table_problems)
    if {"trades", "users"} <= counts.keys():
        orphans = _orphan_trades(connection)
        if orphans:
            problems.append(f"trades: {orphans} rows reference unknown users")
    if problems:
        raise DataValidationError("warehouse validation failed:\n- " + "\n- ".join(problems))
    return counts


def _failing(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """Rows where ``condition`` is not true (false or NULL)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 0), else_=1)), 0)


def _check_table(connection: sa.Connection, contract: TableContract) -> tuple[int, list[str]]:
    """Row count, nulls and rule failures in one scan, then repeated keys."""
    c = contract.table.c
    measures = [
        sa.func.count().label("rows"),
        *(_failing(c[column].is_not(None)) for column in contract.non_null),
        *(_failing(rule(c)) for _, rule in contract.checks),
    ]
    rows, *failures = connection.execute(sa.select(*measures).select_from(contract.table)).one()
    null_counts, rule_counts = (
        failures[: len(contract.non_null)],
        failures[len(contract.non_null) :],
    )
    name = contract.name
    problems = []
    if rows < contract.min_rows:
        problems.append(f"{name}: {rows} rows, expected at least {contract.min_rows}")
    for column, nulls in zip(contract.non_null, null_counts, strict=True):
        if nulls:
            problems.append(f"{name}.{column}: {nulls} null values")
    for (description, _), failing in zip(contract.checks, rule_counts, strict=True):
        if failing:
            problems.append(f"{name}: {failing} rows violate '{description}'")
    if contract.key:
        repeated = _repeated_keys(connection, contract)
        if repeated:
            problems.append(f"{name}: {repeated} rows repeat the key ({', '.join(contract.key)})")
    return int(rows), problems


def _repeated_keys(connection: sa.Connection, contract: TableContract) -> int:
    """Rows beyond the first of each key."""
    key = [contract.table.c[column] for column in contract.key]
    groups = (
        sa.select((sa.func.count() - 1).label("extra"))
        .select_from(contract.table)
        .group_by(*key)
        .having(sa.func.count() > 1)
        .subquery()
    )
    query = sa.select(sa.func.coalesce(sa.func.sum(groups.c.extra), 0))
    return int(connection.execute(query).scalar_one())


def _orphan_trades(connection: sa.Connection) -> int:
    trades, users = schema.trades, schema.users
    query = (
        sa.select(sa.func.count())
        .select_from(trades.outerjoin(users, users.c.user_id == trades.c.user_id))
        .where(users.c.user_id.is_(None))
    )
    return int(connection.execute(query).scalar_one())
