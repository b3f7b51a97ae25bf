"""Data validation before training: schema, nulls, ranges, duplicate keys and row counts.

Every problem found is collected, so a corrupt extract fails with one message listing all of
them instead of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


class DataValidationError(ValueError):
    """The warehouse does not satisfy the contract the features and models rely on."""


@dataclass(frozen=True)
class TableContract:
    name: str
    required_columns: tuple[str, ...]
    min_rows: int
    non_null: tuple[str, ...]
    checks: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = field(default=())
    # Columns identifying a row: a warehouse without the constraint may still repeat them.
    key: tuple[str, ...] = ()


def _ohlc_consistent(frame: pd.DataFrame) -> pd.Series:
    return (frame["low"] <= frame[["open", "close"]].min(axis=1) + 1e-9) & (
        frame["high"] >= frame[["open", "close"]].max(axis=1) - 1e-9
    )


def contracts(min_users: int, min_trades: int) -> tuple[TableContract, ...]:
    return (
        TableContract(
            "market_data",
            ("symbol", "interval", "ts", "open", "high", "low", "close", "volume"),
            min_rows=1_000,
            non_null=("symbol", "ts", "open", "high", "low", "close", "volume"),
            checks=(
                (
                    "prices are positive",
                    lambda f: f[["open", "high", "low", "close"]].gt(0).all(axis=1),
                ),
                ("volume is not negative", lambda f: f["volume"].ge(0)),
                ("low <= open, close <= high", _ohlc_consistent),
                ("interval is 1d, 1h or 1mo", lambda f: f["interval"].isin(["1d", "1h", "1mo"])),
            ),
            key=("symbol", "interval", "ts"),
        ),
        TableContract(
            "users",
            ("user_id", "archetype", "secondary_share", "capital_usd", "signup_date"),
            min_rows=min_users,
            non_null=("user_id", "archetype", "capital_usd"),
            checks=(
                ("capital is positive", lambda f: f["capital_usd"].gt(0)),
                ("secondary_share is in [0, 1)", lambda f: f["secondary_share"].between(0, 0.999)),
            ),
            key=("user_id",),
        ),
        TableContract(
            "headlines",
            ("headline_id", "symbol", "ts", "headline", "template_id", "label"),
            min_rows=1,
            non_null=("headline_id", "symbol", "ts", "headline", "label"),
            key=("headline_id",),
            checks=(
                (
                    "label is negative, neutral or positive",
                    lambda f: f["label"].isin(["negative", "neutral", "positive"]),
                ),
                (
                    "headline is 1 to 256 characters",
                    lambda f: f["headline"].str.len().between(1, 256),
                ),
            ),
        ),
        TableContract(
            "trades",
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
                ("price is positive", lambda f: f["price"].gt(0)),
                ("quantity is positive", lambda f: f["quantity"].gt(0)),
                ("leverage within [1, 10]", lambda f: f["leverage"].between(1, 10)),
                ("action is open or close", lambda f: f["action"].isin(["open", "close"])),
                ("side is buy or sell", lambda f: f["side"].isin(["buy", "sell"])),
            ),
        ),
    )


def validate_frames(
    frames: dict[str, pd.DataFrame], min_users: int, min_trades: int
) -> dict[str, int]:
    """Checks every table against its contract; raises one error listing every problem."""
    problems: list[str] = []
    for contract in contracts(min_users, min_trades):
        frame = frames[contract.name]
        missing = [column for column in contract.required_columns if column not in frame.columns]
        if missing:
            problems.append(f"{contract.name}: missing columns {missing}")
            continue
        if len(frame) < contract.min_rows:
            problems.append(
                f"{contract.name}: {len(frame)} rows, expected at least {contract.min_rows}"
            )
        for column in contract.non_null:
            nulls = int(frame[column].isna().sum())
            if nulls:
                problems.append(f"{contract.name}.{column}: {nulls} null values")
        for description, check in contract.checks:
            failing = int((~check(frame).fillna(False)).sum())
            if failing:
                problems.append(f"{contract.name}: {failing} rows violate '{description}'")
        if contract.key:
            repeated = int(frame.duplicated(list(contract.key)).sum())
            if repeated:
                problems.append(
                    f"{contract.name}: {repeated} rows repeat the key ({', '.join(contract.key)})"
                )
    trades, users = frames["trades"], frames["users"]
    if {"user_id"} <= set(trades.columns) and {"user_id"} <= set(users.columns):
        orphans = int((~trades["user_id"].isin(users["user_id"])).sum())
        if orphans:
            problems.append(f"trades: {orphans} rows reference unknown users")
    if problems:
        raise DataValidationError("warehouse validation failed:\n- " + "\n- ".join(problems))
    return {name: len(frame) for name, frame in frames.items()}
