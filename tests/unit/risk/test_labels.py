from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademaster.risk.labels import adverse_move_labels

DAYS = pd.bdate_range("2026-03-02", periods=15)
HORIZON = 5
THRESHOLD = 0.10


def _flat_bars(symbol: str = "AAA") -> pd.DataFrame:
    """15 daily bars trading 99-101 around a close of 100."""
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": DAYS,
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.0,
        }
    )


def _opens(rows: list[tuple[int, str, float]], symbol: str = "AAA") -> pd.DataFrame:
    """Opening trades at 100 on bar ``day`` 15:00 as (day, direction, leverage)."""
    return pd.DataFrame(
        {
            "trade_id": np.arange(1, len(rows) + 1),
            "symbol": symbol,
            "ts": [DAYS[day] + pd.Timedelta(hours=15) for day, _, _ in rows],
            "direction": [direction for _, direction, _ in rows],
            "price": 100.0,
            "leverage": [leverage for _, _, leverage in rows],
        }
    )


def _labels(opens: pd.DataFrame, daily: pd.DataFrame) -> pd.Series:
    labelled = adverse_move_labels(opens, daily, HORIZON, THRESHOLD)
    return labelled.set_index("trade_id")["label"]


def test_a_4_percent_dip_hurts_a_3x_long_but_not_an_unlevered_one() -> None:
    daily = _flat_bars()
    daily.loc[3, "low"] = 96.0  # within days 1..5 after the entry on day 0

    labelled = adverse_move_labels(
        _opens([(0, "long", 3.0), (0, "long", 1.0), (0, "short", 3.0)]), daily, HORIZON, THRESHOLD
    ).set_index("trade_id")

    assert labelled.loc[1, "adverse_move"] == pytest.approx(3 * (96 / 100 - 1))
    assert labelled["label"].to_dict() == {1: 1, 2: 0, 3: 0}


def test_a_4_percent_rally_hurts_a_3x_short_but_not_an_unlevered_one() -> None:
    daily = _flat_bars()
    daily.loc[2, "high"] = 104.0

    labelled = adverse_move_labels(
        _opens([(0, "short", 3.0), (0, "short", 1.0), (0, "long", 3.0)]), daily, HORIZON, THRESHOLD
    ).set_index("trade_id")

    assert labelled.loc[1, "adverse_move"] == pytest.approx(3 * (1 - 104 / 100))
    assert labelled["label"].to_dict() == {1: 1, 2: 0, 3: 0}


def test_only_the_bars_after_the_entry_within_the_horizon_count() -> None:
    daily = _flat_bars()
    daily.loc[0, "low"] = 50.0  # the entry session itself
    daily.loc[HORIZON + 1, "low"] = 50.0  # one bar past the horizon

    assert _labels(_opens([(0, "long", 5.0)]), daily).tolist() == [0]
    assert _labels(_opens([(1, "long", 5.0)]), daily).tolist() == [1]


def test_trades_whose_horizon_runs_past_the_last_bar_are_dropped() -> None:
    last_known = len(DAYS) - 1 - HORIZON  # its horizon ends on the last bar
    opens = _opens([(0, "long", 1.0), (last_known, "long", 1.0), (last_known + 1, "long", 1.0)])

    labelled = adverse_move_labels(opens, _flat_bars(), HORIZON, THRESHOLD)

    assert labelled["trade_id"].tolist() == [1, 2]


def test_symbols_are_labelled_from_their_own_bars() -> None:
    calm, crash = _flat_bars("CALM"), _flat_bars("CRASH")
    crash.loc[1, "low"] = 80.0
    opens = pd.concat(
        [_opens([(0, "long", 1.0)], "CALM"), _opens([(0, "long", 1.0)], "CRASH")],
        ignore_index=True,
    ).assign(trade_id=[1, 2])

    labelled = _labels(opens, pd.concat([calm, crash], ignore_index=True))

    assert labelled.to_dict() == {1: 0, 2: 1}


def test_no_known_outcome_gives_no_rows() -> None:
    opens = _opens([(len(DAYS) - 2, "long", 1.0)])

    labelled = adverse_move_labels(opens, _flat_bars(), HORIZON, THRESHOLD)

    assert labelled.empty
