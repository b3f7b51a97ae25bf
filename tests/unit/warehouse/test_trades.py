from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.warehouse.helpers import generated_bars, on_entry_day, positions_of
from trademaster.warehouse.seed import WarehouseFrames
from trademaster.warehouse.users import ARCHETYPE_BY_NAME

SESSION_OPEN = pd.Timedelta(hours=14, minutes=30)
SESSION_CLOSE = pd.Timedelta(hours=21)


@pytest.fixture(scope="module")
def positions(small_frames: WarehouseFrames) -> pd.DataFrame:
    return positions_of(small_frames)


def _closed(positions: pd.DataFrame) -> pd.DataFrame:
    return positions[positions["close_ts"].notna()]


def test_every_position_opens_once_and_closes_at_most_once(
    small_frames: WarehouseFrames, positions: pd.DataFrame
) -> None:
    trades = small_frames.trades
    per_position = trades.groupby("position_id")["action"].agg(list)
    assert per_position.map(lambda actions: actions in (["open"], ["open", "close"])).all()
    closed = _closed(positions)
    assert len(closed) > 0.5 * len(positions)
    assert (closed["close_user_id"] == closed["user_id"]).all()
    assert (closed["close_symbol"] == closed["symbol"]).all()
    assert (closed["close_quantity"] == closed["quantity"]).all()
    assert (closed["close_direction"] == closed["direction"]).all()
    assert (closed["close_side"] != closed["side"]).all()
    long = positions["direction"] == "long"
    assert (positions.loc[long, "side"] == "buy").all()
    assert (positions.loc[~long, "side"] == "sell").all()


def test_every_close_is_after_its_open(positions: pd.DataFrame) -> None:
    closed = _closed(positions)
    assert (closed["close_ts"] > closed["ts"]).all()


def test_trade_ids_follow_time(small_frames: WarehouseFrames) -> None:
    trades = small_frames.trades
    assert list(trades["trade_id"]) == list(range(1, len(trades) + 1))
    assert trades["ts"].is_monotonic_increasing
    assert len(trades) >= 2_000


def test_trades_happen_in_the_session_at_a_price_within_the_bar(
    small_frames: WarehouseFrames,
) -> None:
    trades = small_frames.trades
    time_of_day = trades["ts"] - trades["ts"].dt.normalize()
    assert (time_of_day >= SESSION_OPEN).all()
    assert (time_of_day < SESSION_CLOSE).all()

    low = on_entry_day(generated_bars(small_frames, "low"), trades["ts"], trades["symbol"])
    high = on_entry_day(generated_bars(small_frames, "high"), trades["ts"], trades["symbol"])
    assert (trades["price"].to_numpy() >= low - 1e-4).all()
    assert (trades["price"].to_numpy() <= high + 1e-4).all()
    np.testing.assert_allclose(
        trades["notional_usd"], trades["quantity"] * trades["price"], atol=0.006
    )


def test_day_traders_close_within_the_session(positions: pd.DataFrame) -> None:
    day_trades = positions[positions["archetype"] == "day_trader"]
    assert len(day_trades) > 100
    assert day_trades["close_ts"].notna().all()
    assert (day_trades["close_ts"].dt.normalize() == day_trades["ts"].dt.normalize()).all()


def test_long_term_investors_hold_much_longer_than_day_traders(positions: pd.DataFrame) -> None:
    held = (positions["close_ts"] - positions["ts"]) / pd.Timedelta(days=1)
    day_trader = held[positions["archetype"] == "day_trader"].dropna()
    investor = held[positions["archetype"] == "long_term_investor"].dropna()

    assert len(investor) >= 3
    assert day_trader.max() < 1
    assert investor.min() >= 60  # at least 60 business days


@pytest.mark.parametrize("archetype", ["day_trader", "swing_trader", "momentum_chaser"])
def test_holding_period_follows_the_archetype(positions: pd.DataFrame, archetype: str) -> None:
    closed = _closed(positions[positions["archetype"] == archetype])
    business_days = np.busday_count(
        closed["ts"].dt.date.to_numpy(dtype="datetime64[D]"),
        closed["close_ts"].dt.date.to_numpy(dtype="datetime64[D]"),
    )
    shortest, longest = ARCHETYPE_BY_NAME[archetype].holding_days

    assert len(closed) > 20
    assert business_days.min() >= shortest
    assert business_days.max() <= longest


def test_leverage_is_between_one_and_five_in_half_steps(small_frames: WarehouseFrames) -> None:
    leverage = small_frames.trades["leverage"]
    assert leverage.between(1.0, 5.0).all()
    assert (leverage * 2 == np.round(leverage * 2)).all()


def test_investors_and_panic_sellers_never_short(positions: pd.DataFrame) -> None:
    never_short = positions["archetype"].isin(["long_term_investor", "panic_seller"])
    assert (positions.loc[never_short, "direction"] == "long").all()
    assert (positions.loc[positions["archetype"] == "day_trader", "direction"] == "short").any()


def test_long_term_investors_are_unlevered(positions: pd.DataFrame) -> None:
    investor = positions[positions["archetype"] == "long_term_investor"]
    assert len(investor) > 0
    assert (investor["leverage"] == 1.0).all(), investor["leverage"].value_counts().to_dict()


def test_momentum_chasers_buy_recent_winners(
    small_frames: WarehouseFrames, positions: pd.DataFrame
) -> None:
    close = generated_bars(small_frames, "close")
    # Return over the 20 bars before the entry day (what the trader could see at the open).
    trailing = close.shift(1) / close.shift(21) - 1
    entry = positions.assign(momentum=on_entry_day(trailing, positions["ts"], positions["symbol"]))
    mean = entry.groupby("archetype")["momentum"].mean()

    assert mean["momentum_chaser"] > mean["swing_trader"] + 0.05


def test_panic_sellers_sell_at_the_close_of_the_first_day_four_percent_down(
    small_frames: WarehouseFrames, positions: pd.DataFrame
) -> None:
    close = generated_bars(small_frames, "close")
    days = close.index
    panic = _closed(positions[positions["archetype"] == "panic_seller"])
    assert len(panic) > 10
    stopped = 0
    for row in panic.itertuples():
        path = close[row.symbol]
        entry = days.get_loc(row.ts.normalize())
        exit_ = days.get_loc(row.close_ts.normalize())
        drawdown = path.iloc[entry + 1 : exit_ + 1] / path.iloc[entry] - 1
        # No missed stop before the exit day ...
        assert (drawdown.iloc[:-1] > -0.04).all(), row.Index
        # ... and the exit is at the day's close.
        assert row.close_price == pytest.approx(path.iloc[exit_], abs=1e-4)
        stopped += bool(drawdown.iloc[-1] <= -0.04)
    assert stopped > 0
