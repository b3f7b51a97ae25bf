from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademaster.features.user_features import (
    USER_FEATURES,
    WINDOW_BUSINESS_DAYS,
    compute_user_features,
    with_entry_momentum,
)

CAPITAL = 10_000.0


def _position(
    position_id: int,
    symbol: str,
    opened: str,
    direction: str,
    notional: float,
    leverage: float,
    closed: str | None = None,
    pnl_pct: float = np.nan,
    momentum: float = 0.0,
) -> dict[str, object]:
    """One position of user 1 (capital ``CAPITAL``)."""
    open_ts = pd.Timestamp(opened)
    close_ts = pd.Timestamp(closed) if closed else pd.NaT
    return {
        "position_id": position_id,
        "user_id": 1,
        "symbol": symbol,
        "open_ts": open_ts,
        "direction": direction,
        "open_price": 100.0,
        "notional_usd": notional,
        "leverage": leverage,
        "close_ts": close_ts,
        "close_price": 100.0 * (1 + pnl_pct) if closed else np.nan,
        "pnl_pct": pnl_pct,
        "holding_days": (close_ts - open_ts) / pd.Timedelta(days=1),
        "exposure": notional * leverage / CAPITAL,
        "entry_momentum": momentum,
    }


# User 1's book. P3 stays open.
POSITIONS = pd.DataFrame(
    [
        _position(1, "AAA", "2026-03-02 15:00", "long", 1_000, 2.0, "2026-03-04 15:00", 0.10, 0.02),
        _position(
            2, "BBB", "2026-03-03 16:00", "short", 3_000, 4.0, "2026-03-09 16:00", -0.05, 0.04
        ),
        _position(3, "AAA", "2026-03-05 15:00", "long", 2_000, 1.0, None, np.nan, 0.09),
    ]
)


def _daily_aggregates(positions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The book as the warehouse aggregates it: opens per user, day and symbol; closes per
    user and day."""
    opened = positions.assign(
        day=positions["open_ts"].dt.normalize(),
        n_opened=1,
        n_short=(positions["direction"] == "short").astype(int),
    )
    opens = opened.groupby(["user_id", "day", "symbol"], as_index=False)[
        ["n_opened", "notional_usd", "leverage", "exposure", "n_short", "entry_momentum"]
    ].sum()
    closed = positions.dropna(subset=["close_ts"])
    closed = closed.assign(
        day=closed["close_ts"].dt.normalize(), n_closed=1, n_won=(closed["pnl_pct"] > 0).astype(int)
    )
    closes = closed.groupby(["user_id", "day"], as_index=False)[
        ["n_closed", "holding_days", "n_won"]
    ].sum()
    return opens, closes


def _features(user_ids: tuple[int, ...], days: list[str]) -> pd.DataFrame:
    opens, closes = _daily_aggregates(POSITIONS)
    return compute_user_features(
        opens, closes, np.array(user_ids), pd.DatetimeIndex(pd.to_datetime(days))
    )


def _snapshots(days: list[str], user_ids: tuple[int, ...] = (1,)) -> pd.DataFrame:
    return _features(user_ids, days).set_index(["user_id", "event_timestamp"])


def _row(features: pd.DataFrame, day: str, user_id: int = 1) -> pd.Series:
    cutoff = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    return features.loc[(user_id, cutoff)]


def test_one_snapshot_per_user_and_day_at_the_following_midnight_utc() -> None:
    features = _features((1, 2), ["2026-03-04", "2026-03-05"])

    assert len(features) == 4
    assert str(features["event_timestamp"].dt.tz) == "UTC"
    assert sorted(features["event_timestamp"].unique()) == [
        pd.Timestamp("2026-03-05", tz="UTC"),
        pd.Timestamp("2026-03-06", tz="UTC"),
    ]
    assert set(features[list(USER_FEATURES)].dtypes) == {np.dtype("float32")}


def test_window_statistics_of_a_hand_made_book() -> None:
    features = _snapshots(["2026-03-04", "2026-03-05", "2026-03-09"])

    day4 = _row(features, "2026-03-04")  # P1 and P2 opened; P1 closed with a gain
    assert day4["trades_in_window"] == 2
    assert day4["trade_frequency"] == pytest.approx(2 / WINDOW_BUSINESS_DAYS)
    assert day4["avg_trade_size"] == pytest.approx(2_000)
    assert day4["avg_leverage"] == pytest.approx(3.0)
    assert day4["short_ratio"] == pytest.approx(0.5)
    assert day4["portfolio_diversity"] == pytest.approx(1 - (0.25**2 + 0.75**2))
    assert day4["entry_momentum"] == pytest.approx(0.03)
    assert day4["win_rate"] == pytest.approx(1.0)
    assert day4["avg_holding_days"] == pytest.approx(2.0)
    mean_exposure = (1_000 * 2 + 3_000 * 4) / CAPITAL / 2
    diversity = 1 - (0.25**2 + 0.75**2)
    assert day4["risk_score"] == pytest.approx(mean_exposure * (1 + 3.0) * (2 - diversity) / 2)

    day5 = _row(features, "2026-03-05")  # P3 opened on AAA: notional 3000 AAA vs 3000 BBB
    assert day5["trades_in_window"] == 3
    assert day5["avg_leverage"] == pytest.approx(7 / 3)
    assert day5["short_ratio"] == pytest.approx(1 / 3)
    assert day5["portfolio_diversity"] == pytest.approx(0.5)
    assert day5["win_rate"] == pytest.approx(1.0)

    day9 = _row(features, "2026-03-09")  # P2 closed at a loss after six days
    assert day9["trades_in_window"] == 3
    assert day9["win_rate"] == pytest.approx(0.5)
    assert day9["avg_holding_days"] == pytest.approx((2 + 6) / 2)


def test_a_trade_is_only_seen_after_the_midnight_that_ends_its_day() -> None:
    # P3 opens 2026-03-05 15:00.
    features = _snapshots(["2026-03-04", "2026-03-05"])

    before = features.loc[(1, pd.Timestamp("2026-03-05 00:00", tz="UTC"))]
    after = features.loc[(1, pd.Timestamp("2026-03-06 00:00", tz="UTC"))]
    assert before["trades_in_window"] == 2
    assert after["trades_in_window"] == 3
    # Likewise the close of P1 (2026-03-04 15:00) is not known the day before.
    day3 = _row(_snapshots(["2026-03-03"]), "2026-03-03")
    assert day3["trades_in_window"] == 2
    assert day3["win_rate"] == pytest.approx(0.5)
    assert day3["avg_holding_days"] == 0


def test_trades_older_than_90_days_drop_out() -> None:
    features = _snapshots(["2026-05-29", "2026-06-01", "2026-06-08"])

    # Window [2026-03-01, 2026-05-30): all three opens.
    assert _row(features, "2026-05-29")["trades_in_window"] == 3
    # Window [2026-03-04, 2026-06-02): P1 and P2 opened before it; both closed inside it.
    june1 = _row(features, "2026-06-01")
    assert june1["trades_in_window"] == 1
    assert june1["avg_leverage"] == pytest.approx(1.0)
    assert june1["portfolio_diversity"] == pytest.approx(0.0)
    assert june1["win_rate"] == pytest.approx(0.5)
    # Window [2026-03-11, 2026-06-09): nothing left.
    june8 = _row(features, "2026-06-08")
    assert june8["trades_in_window"] == 0
    assert june8["avg_leverage"] == 0
    assert june8["win_rate"] == pytest.approx(0.5)


def test_a_user_without_trades_gets_zeros_and_an_even_win_rate() -> None:
    features = _snapshots(["2026-03-05"], user_ids=(1, 2))

    quiet = _row(features, "2026-03-05", user_id=2)
    assert quiet["win_rate"] == pytest.approx(0.5)
    assert (quiet.drop("win_rate") == 0).all()
    assert _row(features, "2026-03-05", user_id=1)["trades_in_window"] == 3


def test_entry_momentum_is_the_20_bar_return_before_the_entry_day() -> None:
    days = pd.bdate_range("2026-02-02", periods=30)
    daily = pd.DataFrame({"symbol": "AAA", "ts": days, "close": 100.0 + np.arange(30)})
    opens = pd.DataFrame(
        {
            "user_id": [7, 7, 7],
            "day": [days[25], days[10], days[25] + pd.Timedelta(days=1)],
            "symbol": ["AAA", "AAA", "BBB"],
            "n_opened": [2, 1, 1],
        }
    )

    momentum = with_entry_momentum(opens, daily)["entry_momentum"]

    # The 20 bars before the entry day: close[24] / close[4] - 1 (the day's own close unseen),
    # once per position opened.
    assert momentum[0] == pytest.approx(2 * (124 / 104 - 1))
    # Fewer than 21 bars before the day, or a symbol without bars: 0.
    assert momentum[1] == 0
    assert momentum[2] == 0
