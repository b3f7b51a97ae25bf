from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from tests.unit.warehouse.helpers import END_DATE, small_settings
from trademaster.settings import PipelineSettings
from trademaster.warehouse.seed import (
    WarehouseFrames,
    WarehouseNotEmpty,
    generate_frames,
    seed_if_empty,
    seed_warehouse,
)

REAL_SYMBOLS = {"GOOG", "EURUSD", "BTCUSD"}
FRAME_NAMES = ("symbols", "market_data", "users", "trades")


def test_default_sizes_give_a_realistic_warehouse(
    default_settings: PipelineSettings, default_frames: WarehouseFrames
) -> None:
    symbols = default_frames.symbols
    assert len(symbols) >= 50
    assert symbols["symbol"].is_unique

    real = symbols[symbols["symbol"].isin(REAL_SYMBOLS)]
    assert set(real["symbol"]) == REAL_SYMBOLS
    for row in real.itertuples():
        assert row.source == f"real:backtesting/{row.symbol}.csv"

    generated = symbols[~symbols["symbol"].isin(REAL_SYMBOLS)]
    assert len(generated) == default_settings.n_generated_symbols
    assert all(re.fullmatch(r"SYN\d{3}", name) for name in generated["symbol"])
    assert set(generated["source"]) == {"generated"}

    bars = default_frames.market_data
    assert set(bars["symbol"]) == set(symbols["symbol"])
    generated_bars = bars[bars["symbol"].isin(generated["symbol"])]
    assert set(generated_bars["interval"]) == {"1d"}
    bars_per_symbol = generated_bars.groupby("symbol")["ts"].nunique()
    assert bars_per_symbol.min() >= 252
    assert generated_bars["ts"].max() == pd.Timestamp(END_DATE)

    assert len(default_frames.users) >= 2_000
    assert default_frames.users["user_id"].is_unique
    assert len(default_frames.trades) >= 100_000
    assert default_frames.trades["trade_id"].is_unique


def test_trades_reference_known_users_and_generated_symbols(
    small_frames: WarehouseFrames,
) -> None:
    trades = small_frames.trades
    assert trades["user_id"].isin(small_frames.users["user_id"]).all()
    generated = small_frames.symbols.loc[small_frames.symbols["source"] == "generated", "symbol"]
    assert trades["symbol"].isin(generated).all()


def test_generation_is_deterministic(small_frames: WarehouseFrames) -> None:
    again = generate_frames(small_settings())

    for name in FRAME_NAMES:
        assert_frame_equal(getattr(again, name), getattr(small_frames, name), obj=name)


def test_another_seed_gives_other_generated_data(small_frames: WarehouseFrames) -> None:
    other = generate_frames(small_settings(seed=small_settings().seed + 1))

    for name in ("market_data", "users", "trades"):
        with pytest.raises(AssertionError):
            assert_frame_equal(getattr(other, name), getattr(small_frames, name))
    # The real histories are data, not random: they do not depend on the seed.
    real = small_frames.market_data[small_frames.market_data["symbol"].isin(REAL_SYMBOLS)]
    other_real = other.market_data[other.market_data["symbol"].isin(REAL_SYMBOLS)]
    assert_frame_equal(other_real, real)


def test_seeding_refuses_a_warehouse_with_rows_unless_replacing(tmp_path: Path) -> None:
    settings = small_settings(data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path / 'w.db'}")
    first = seed_warehouse(settings)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE app_orders (id INTEGER PRIMARY KEY)"))
        connection.execute(sa.text("INSERT INTO app_orders VALUES (1), (2)"))

    with pytest.raises(WarehouseNotEmpty, match=r"users \([\d,]+ rows\).*--replace"):
        seed_warehouse(settings)
    assert seed_if_empty(settings) is None
    again = seed_warehouse(settings, replace=True)

    assert again == first
    with engine.connect() as connection:
        # The seed replaced its own tables only.
        assert connection.execute(sa.text("SELECT count(*) FROM app_orders")).scalar_one() == 2
        users = connection.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    assert users == first.n_users
    engine.dispose()


def test_an_empty_warehouse_is_seeded_once(tmp_path: Path) -> None:
    settings = small_settings(data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path / 'w.db'}")
    seeded = seed_if_empty(settings)
    assert seeded is not None
    assert seeded.n_users == settings.n_users
    assert seed_if_empty(settings) is None
