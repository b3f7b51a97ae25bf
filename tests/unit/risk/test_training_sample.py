"""Reading large warehouses in part: training-set samples and recent trades, selected in SQL."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tests.unit.warehouse.helpers import seeded_small_warehouse
from trademaster.behavior.pipeline import training_users
from trademaster.risk.dataset import opening_trades
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.read import read_table, read_trades_since


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    return seeded_small_warehouse(tmp_path_factory.mktemp("sample"))


def test_below_the_cap_every_opening_trade_is_read_as_the_table_holds_it(
    seeded: PipelineSettings,
) -> None:
    trades = read_table(seeded, schema.trades)
    expected = trades[trades["action"] == "open"].reset_index(drop=True)

    opens = opening_trades(seeded, max_trades=len(trades))

    pd.testing.assert_frame_equal(opens, expected)


def test_above_the_cap_every_kth_position_spread_over_time_and_users(
    seeded: PipelineSettings,
) -> None:
    trades = read_table(seeded, schema.trades)
    every = trades[trades["action"] == "open"]
    cap = len(every) // 3

    opens = opening_trades(seeded, max_trades=cap)

    stride = math.ceil(len(every) / cap)
    assert stride >= 3
    assert (opens["position_id"] % stride == 0).all()
    assert 0.8 * len(every) / stride < len(opens) <= cap
    # Spread: the sample covers the months and most users the trades do.
    months = every["ts"].dt.to_period("M")
    assert set(opens["ts"].dt.to_period("M")) == set(months)
    assert opens["user_id"].nunique() > 0.7 * every["user_id"].nunique()


def test_the_behaviour_sample_takes_every_kth_user() -> None:
    users = pd.DataFrame({"user_id": range(1, 1001)})

    assert training_users(users, max_users=1000) is users
    sample = training_users(users, max_users=300)

    assert list(sample["user_id"]) == list(range(4, 1001, 4))


def test_trades_since_a_logged_answer_are_read_in_sql(seeded: PipelineSettings) -> None:
    """Realized monitoring reads only the trades from the first logged answer on."""
    trades = read_table(seeded, schema.trades)
    middle = trades["ts"].sort_values().iloc[len(trades) // 2]

    later = read_trades_since(seeded, middle.tz_localize("UTC"))

    expected = trades[trades["ts"] >= middle].reset_index(drop=True)
    assert 0 < len(later) < len(trades)
    pd.testing.assert_frame_equal(later, expected)
    pd.testing.assert_frame_equal(read_trades_since(seeded, None), trades)
