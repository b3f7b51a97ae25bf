"""``market advance``: new business days appended to a seeded warehouse, continuing it."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.unit.warehouse.helpers import END_DATE, small_settings
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.advance import (
    DayNotOver,
    NotADemoWarehouse,
    Regime,
    advance_market,
)
from trademaster.warehouse.read import read_table, warehouse_connection
from trademaster.warehouse.seed import seed_warehouse
from trademaster.warehouse.validation import validate_warehouse

TODAY = date(2026, 9, 30)  # three months after the seed's END_DATE
TABLES = (schema.market_data, schema.users, schema.trades, schema.headlines)


def _seeded(tmp_path: Path, name: str = "w") -> PipelineSettings:
    settings = small_settings(
        data_dir=tmp_path, warehouse_url=f"sqlite:///{tmp_path / f'{name}.db'}"
    )
    seed_warehouse(settings)
    return settings


def _tables(settings: PipelineSettings) -> dict[str, pd.DataFrame]:
    return {table.name: read_table(settings, table) for table in TABLES}


def test_advancing_appends_days_and_keeps_every_existing_row(tmp_path: Path) -> None:
    settings = _seeded(tmp_path)
    before = _tables(settings)

    summary = advance_market(settings, days=3, today=TODAY)
    after = _tables(settings)

    new_days = pd.bdate_range(pd.Timestamp(END_DATE) + pd.offsets.BDay(1), periods=3)
    assert (summary.first_day, summary.last_day) == (
        str(new_days[0].date()),
        str(new_days[-1].date()),
    )
    for name, old in before.items():
        kept = after[name].iloc[: len(old)].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, old, check_dtype=False)
    bars = after["market_data"].iloc[len(before["market_data"]) :]
    generated = before["market_data"]["symbol"].str.startswith("SYN")
    n_generated = before["market_data"].loc[generated, "symbol"].nunique()
    assert len(bars) == summary.bars == 3 * n_generated
    assert set(pd.to_datetime(bars["ts"])) == set(new_days)

    trades = after["trades"].iloc[len(before["trades"]) :]
    assert len(trades) == summary.trades > 0
    assert pd.to_datetime(trades["ts"]).min() >= new_days[0]
    assert trades["trade_id"].is_unique
    assert after["trades"]["trade_id"].is_unique
    # The same users keep trading (and sign-ups join them), opening positions at the rate
    # the warehouse had: not every user every day.
    known = set(after["users"]["user_id"])
    assert set(trades["user_id"]) <= known
    old_trades = before["trades"]
    seed_days = len(pd.bdate_range(old_trades["ts"].min(), old_trades["ts"].max()))
    seed_rate = (old_trades["action"] == "open").sum() / seed_days
    opened = (trades["action"] == "open").sum()
    assert 0.5 * 3 * seed_rate < opened < 2 * 3 * seed_rate, (opened, seed_rate)
    assert len(set(trades["user_id"]) & set(before["users"]["user_id"])) > 0.8 * len(
        set(trades["user_id"])
    )
    headlines = after["headlines"].iloc[len(before["headlines"]) :]
    assert len(headlines) == summary.headlines > 0
    assert after["headlines"]["headline_id"].is_unique
    # Still a warehouse the pipeline accepts.
    with warehouse_connection(settings) as connection:
        validate_warehouse(connection, min_users=settings.n_users, min_trades=settings.n_trades)


def test_advancing_is_deterministic_for_a_seed_and_state(tmp_path: Path) -> None:
    first, second = _seeded(tmp_path, "a"), _seeded(tmp_path, "b")
    advance_market(first, days=2, today=TODAY)
    advance_market(second, days=2, today=TODAY)

    for table in TABLES:
        pd.testing.assert_frame_equal(read_table(first, table), read_table(second, table))


def test_bars_continue_each_symbols_process(tmp_path: Path) -> None:
    """Over 40 new days, each symbol's daily volatility stays that of its history (within a
    sampling band), and the first new open starts from the last close."""
    settings = _seeded(tmp_path)
    history = read_table(settings, schema.market_data)
    history = history[history["symbol"].str.startswith("SYN")]
    advance_market(settings, days=40, today=TODAY + pd.Timedelta(days=60))
    bars = read_table(settings, schema.market_data)
    bars = bars[bars["symbol"].str.startswith("SYN")]
    last = pd.Timestamp(END_DATE)

    def returns(frame: pd.DataFrame) -> pd.DataFrame:
        return np.log(frame.pivot(index="ts", columns="symbol")["close"]).diff().iloc[1:]

    old, new = returns(history), returns(bars).iloc[-40:]
    ratio = new.std() / old.std()
    assert 0.7 < ratio.median() < 1.45, ratio
    # Volatile symbols stay the volatile ones, about as much as from one 40-day window of
    # the seed's history to the next (the baseline, measured on the same symbols).
    windows = [old.iloc[start : start + 40].std() for start in range(0, len(old) - 39, 40)]
    baseline = min(np.corrcoef(a, b)[0, 1] for a, b in itertools.pairwise(windows))
    assert np.corrcoef(old.std(), new.std())[0, 1] > baseline - 0.2
    last_close = history[pd.to_datetime(history["ts"]) == last].set_index("symbol")["close"]
    first_open = bars[pd.to_datetime(bars["ts"]) == last + pd.offsets.BDay(1)]
    gap = np.log(first_open.set_index("symbol")["open"] / last_close)
    assert (gap.abs() < 5 * old.std()).all()


def test_a_day_is_added_only_after_its_session(tmp_path: Path) -> None:
    settings = _seeded(tmp_path)
    with pytest.raises(DayNotOver, match=r"at most 2 can be added now"):
        advance_market(settings, days=3, today=date(2026, 7, 3))  # Friday: Wed, Thu are over


def test_a_warehouse_without_generated_symbols_is_refused(tmp_path: Path) -> None:
    settings = small_settings(warehouse_url=f"sqlite:///{tmp_path / 'other.db'}")
    engine = sa.create_engine(settings.resolved_warehouse_url)
    schema.metadata.create_all(engine)
    engine.dispose()
    with pytest.raises(NotADemoWarehouse, match="no generated symbols"):
        advance_market(settings, days=1, today=TODAY)


def _new_rows(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    return after.iloc[len(before) :]


def test_a_volatility_regime_scales_the_new_days_moves(tmp_path: Path) -> None:
    """Same seed and state, so the same shocks: tripled, the day's returns are about three
    times as large across symbols (the drift drill of monitoring)."""
    quiet, stormy = _seeded(tmp_path, "a"), _seeded(tmp_path, "b")
    before = read_table(quiet, schema.market_data)
    advance_market(quiet, days=1, today=TODAY)
    advance_market(stormy, days=1, today=TODAY, regime=Regime(volatility=3.0))

    def day_moves(settings: PipelineSettings) -> pd.Series:
        bars = read_table(settings, schema.market_data)
        bars = bars[bars["symbol"].str.startswith("SYN")]
        close = bars.pivot(index="ts", columns="symbol")["close"]
        return np.log(close).diff().iloc[-1].abs()

    ratio = day_moves(stormy).median() / day_moves(quiet).median()
    assert 2.0 < ratio < 4.0, ratio
    new = _new_rows(before, read_table(stormy, schema.market_data))
    assert ((new["high"] >= new[["open", "close"]].max(axis=1)) & (new["low"] > 0)).all()


def test_a_surge_adds_sign_ups_of_one_archetype_who_trade(tmp_path: Path) -> None:
    settings = _seeded(tmp_path)
    users_before = read_table(settings, schema.users)
    trades_before = read_table(settings, schema.trades)

    summary = advance_market(
        settings, days=1, today=TODAY, regime=Regime.parse_surge("day_trader:120")
    )

    users = _new_rows(users_before, read_table(settings, schema.users))
    assert summary.new_users == len(users) >= 120
    assert (users["archetype"] == "day_trader").sum() >= 120
    trades = _new_rows(trades_before, read_table(settings, schema.trades))
    newcomers = set(users["user_id"])
    assert trades["user_id"].isin(newcomers).sum() > 0


@pytest.mark.parametrize(
    ("surge", "message"),
    [
        ("day_trader", "ARCHETYPE:COUNT"),
        ("crypto_bro:10", "unknown archetype 'crypto_bro'"),
    ],
)
def test_a_bad_regime_is_refused_with_what_is_wrong(surge: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Regime.parse_surge(surge)
    with pytest.raises(ValueError, match="volatility"):
        Regime(volatility=0)


def test_users_keep_trading_their_own_symbols(tmp_path: Path) -> None:
    """A continued market, not a reshuffled one: users who traded before open new positions
    in the symbols they traded before (a new watchlist each day would spread every user
    across the market, a drift of its own)."""
    settings = _seeded(tmp_path)
    before = read_table(settings, schema.trades)

    advance_market(settings, days=5, today=TODAY)

    new = _new_rows(before, read_table(settings, schema.trades))
    opened = new[(new["action"] == "open") & new["user_id"].isin(before["user_id"])]
    known = before[before["action"] == "open"].groupby("user_id")["symbol"].agg(set)
    kept = [row.symbol in known[row.user_id] for row in opened.itertuples()]
    assert len(opened) > 10
    # Momentum chasers buy the day's leaders wherever they are; everyone else stays put.
    assert np.mean(kept) > 0.8, np.mean(kept)
