"""The warehouse contract, checked by SQL on a SQLite file holding (corrupted) tables.

The tables are written without constraints (``DataFrame.to_sql``), as a warehouse that lacks
them could hold repeated keys or NULLs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.unit.warehouse.helpers import small_settings
from trademaster.warehouse.seed import WarehouseFrames
from trademaster.warehouse.validation import DataValidationError, validate_warehouse

SETTINGS = small_settings()


def validate_frames(
    frames: dict[str, pd.DataFrame], min_users: int, min_trades: int, folder: Path
) -> dict[str, int]:
    """``validate_warehouse`` on a new SQLite database holding ``frames`` as its tables."""
    engine = sa.create_engine(f"sqlite:///{folder / 'warehouse.db'}")
    try:
        with engine.begin() as connection:
            for name, frame in frames.items():
                frame.to_sql(name, connection, index=False, if_exists="replace")
        with engine.connect() as connection:
            return validate_warehouse(connection, min_users=min_users, min_trades=min_trades)
    finally:
        engine.dispose()


@pytest.fixture
def frames(small_frames: WarehouseFrames) -> dict[str, pd.DataFrame]:
    """Copies of the generated tables that a test may corrupt."""
    return {
        "market_data": small_frames.market_data.copy(),
        "users": small_frames.users.copy(),
        "trades": small_frames.trades.copy(),
        "headlines": small_frames.headlines.copy(),
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def _validate(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, int]:
    return validate_frames(
        frames, min_users=SETTINGS.n_users, min_trades=SETTINGS.n_trades, folder=folder
    )


def _problems(frames: dict[str, pd.DataFrame], folder: Path) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        _validate(frames, folder)
    message = str(info.value)
    assert message.startswith("warehouse validation failed:")
    return message.split("\n- ")[1:]


def test_generated_frames_pass(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    counts = _validate(frames, folder)

    assert counts == {name: len(frame) for name, frame in frames.items()}


def test_null_prices_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["trades"].loc[[0, 5, 9], "price"] = np.nan

    problems = _problems(frames, folder)

    assert "trades.price: 3 null values" in problems


def test_negative_prices_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["market_data"].loc[3, ["open", "high", "low", "close"]] = [-1.0, 1.0, -2.0, -1.0]

    problems = _problems(frames, folder)

    assert problems == ["market_data: 1 rows violate 'prices are positive'"]


def test_a_missing_column_is_named(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["users"] = frames["users"].drop(columns="capital_usd")

    problems = _problems(frames, folder)

    assert problems == ["users: missing columns ['capital_usd']"]


def test_too_few_rows_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["market_data"] = frames["market_data"].head(999)

    problems = _problems(frames, folder)

    assert problems == ["market_data: 999 rows, expected at least 1000"]


def test_too_few_users_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    with pytest.raises(DataValidationError, match=r"users: 100 rows, expected at least 101"):
        validate_frames(frames, min_users=101, min_trades=SETTINGS.n_trades, folder=folder)


def test_trades_of_unknown_users_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["trades"].loc[[1, 2], "user_id"] = 999_999

    problems = _problems(frames, folder)

    assert problems == ["trades: 2 rows reference unknown users"]


def test_absurd_leverage_is_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    frames["trades"].loc[7, "leverage"] = 50.0

    problems = _problems(frames, folder)

    assert problems == ["trades: 1 rows violate 'leverage within [1, 10]'"]


def test_inconsistent_bars_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    bar = frames["market_data"].loc[4]
    frames["market_data"].loc[4, "high"] = bar["low"] * 0.5

    problems = _problems(frames, folder)

    assert problems == ["market_data: 1 rows violate 'low <= open, close <= high'"]


def test_every_problem_is_listed_in_one_message(
    frames: dict[str, pd.DataFrame], folder: Path
) -> None:
    frames["trades"].loc[0, "price"] = np.nan
    frames["trades"].loc[1, "leverage"] = 50.0
    frames["trades"].loc[2, "user_id"] = 999_999
    frames["users"].loc[0, "capital_usd"] = -5.0

    problems = _problems(frames, folder)

    assert sorted(problems) == sorted(
        [
            "users: 1 rows violate 'capital is positive'",
            "trades.price: 1 null values",
            "trades: 1 rows violate 'price is positive'",
            "trades: 1 rows violate 'leverage within [1, 10]'",
            "trades: 1 rows reference unknown users",
        ]
    )


def test_corrupt_headlines_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    headlines = frames["headlines"]
    headlines.loc[headlines.index[:3], "label"] = "ecstatic"
    headlines.loc[headlines.index[3], "headline"] = None

    problems = _problems(frames, folder)

    assert any("headlines" in p and "label" in p for p in problems), problems
    assert any("headlines.headline" in p and "null" in p for p in problems), problems


def test_repeated_keys_are_refused(frames: dict[str, pd.DataFrame], folder: Path) -> None:
    """A warehouse without the constraints may repeat a trade or a bar."""
    trades = frames["trades"]
    frames["trades"] = pd.concat([trades, trades.iloc[:3]], ignore_index=True)
    bars = frames["market_data"]
    frames["market_data"] = pd.concat([bars, bars.iloc[-2:]], ignore_index=True)

    assert _problems(frames, folder) == [
        "market_data: 2 rows repeat the key (symbol, interval, ts)",
        "trades: 3 rows repeat the key (trade_id)",
    ]
