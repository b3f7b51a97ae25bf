"""The daily aggregates, computed by SQL in a hand-made SQLite warehouse, checked by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from trademaster.warehouse import aggregates, schema
from trademaster.warehouse.read import read_only_engine


def _trade(
    trade_id: int,
    position_id: int,
    user_id: int,
    symbol: str,
    ts: str,
    action: str,
    direction: str,
    price: float,
    notional: float,
    leverage: float,
) -> dict[str, object]:
    side = "buy" if (action == "open") == (direction == "long") else "sell"
    return {
        "trade_id": trade_id,
        "position_id": position_id,
        "user_id": user_id,
        "symbol": symbol,
        "ts": datetime.fromisoformat(ts),
        "action": action,
        "side": side,
        "direction": direction,
        "quantity": notional / price,
        "price": price,
        "notional_usd": notional,
        "leverage": leverage,
    }


TRADES = [
    # User 7 (capital 5,000): two opens on AAA on 2 March, one short on BBB.
    _trade(1, 1, 7, "AAA", "2026-03-02 15:00:00", "open", "long", 100.0, 1_000.0, 2.0),
    _trade(2, 2, 7, "AAA", "2026-03-02 16:30:00", "open", "long", 101.0, 500.0, 4.0),
    _trade(3, 3, 7, "BBB", "2026-03-02 23:59:59", "open", "short", 50.0, 2_000.0, 1.0),
    # Closes: P1 at a gain after 2 days, P3 (short) at a loss (price rose), P2 at its price.
    _trade(4, 1, 7, "AAA", "2026-03-04 15:00:00", "close", "long", 110.0, 1_100.0, 2.0),
    _trade(5, 3, 7, "BBB", "2026-03-04 11:59:59", "close", "short", 55.0, 2_200.0, 1.0),
    _trade(6, 2, 7, "AAA", "2026-03-05 04:30:00", "close", "long", 101.0, 500.0, 4.0),
    # User 8 (capital 20,000): one short on 3 March, closed in profit on 4 March.
    _trade(7, 4, 8, "AAA", "2026-03-03 09:00:00", "open", "short", 105.0, 4_000.0, 3.0),
    _trade(8, 4, 8, "AAA", "2026-03-04 09:00:00", "close", "short", 99.0, 3_771.4, 3.0),
]
USERS = [(7, 5_000.0), (8, 20_000.0)]


def _bar(symbol: str, interval: str, ts: str, ohlcv: tuple[float, ...]) -> dict[str, object]:
    open_, high, low, close, volume = ohlcv
    return {
        "symbol": symbol,
        "interval": interval,
        "ts": datetime.fromisoformat(ts),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }


BARS = [
    _bar("AAA", "1d", "2026-03-02 00:00:00", (99, 102, 98, 101, 1_000)),
    _bar("AAA", "1d", "2026-03-03 00:00:00", (101, 106, 100, 105, 1_500)),
    # Hourly FX bars, stored out of order: a day's open is its first bar, close its last.
    _bar("EURUSD", "1h", "2026-03-02 10:00:00", (1.12, 1.125, 1.115, 1.121, 30)),
    _bar("EURUSD", "1h", "2026-03-02 09:00:00", (1.10, 1.13, 1.09, 1.12, 10)),
    _bar("EURUSD", "1h", "2026-03-02 23:00:00", (1.121, 1.122, 1.08, 1.11, 5)),
    _bar("EURUSD", "1h", "2026-03-03 00:00:00", (1.11, 1.14, 1.105, 1.13, 7)),
    # Monthly bars are not daily bars.
    _bar("BTCUSD", "1mo", "2026-02-28 00:00:00", (1, 2, 0.5, 1.5, 9)),
]


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[sa.Connection]:
    url = f"sqlite:///{tmp_path / 'hand.db'}"
    owner = sa.create_engine(url)
    schema.metadata.create_all(owner)
    with owner.begin() as writing:
        writing.execute(
            schema.users.insert(),
            [
                {
                    "user_id": user_id,
                    "archetype": "day_trader",
                    "secondary_share": 0.0,
                    "capital_usd": capital,
                    "signup_date": datetime(2025, 1, 1),
                }
                for user_id, capital in USERS
            ],
        )
        writing.execute(schema.trades.insert(), TRADES)
        writing.execute(schema.market_data.insert(), BARS)
    owner.dispose()
    engine = read_only_engine(url)
    with engine.connect() as reading:
        yield reading
    engine.dispose()


def _rows(connection: sa.Connection, query: sa.Select[tuple[object, ...]]) -> pd.DataFrame:
    frame = aggregates.fetch(connection, query)
    keys = [column for column in ("user_id", "symbol", "day") if column in frame]
    return frame.sort_values(keys).set_index(keys)


def test_opens_per_user_symbol_and_day(connection: sa.Connection) -> None:
    opens = _rows(connection, aggregates.opens_by_user_symbol_day(date(2026, 3, 1)))

    march2, march3 = pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-03")
    assert list(opens.index) == [(7, "AAA", march2), (7, "BBB", march2), (8, "AAA", march3)]
    aaa = opens.loc[(7, "AAA", march2)]
    assert aaa["n_opened"] == 2
    assert aaa["notional_usd"] == pytest.approx(1_500.0)
    assert aaa["leverage"] == pytest.approx(6.0)
    assert aaa["exposure"] == pytest.approx((1_000 * 2 + 500 * 4) / 5_000)
    assert aaa["n_short"] == 0
    # 23:59:59 still belongs to its own day.
    assert opens.loc[(7, "BBB", march2), "n_short"] == 1
    assert opens.loc[(8, "AAA", march3), "exposure"] == pytest.approx(4_000 * 3 / 20_000)


def test_closes_per_user_and_day_join_each_position_s_opening_trade(
    connection: sa.Connection,
) -> None:
    closes = _rows(connection, aggregates.closes_by_user_day(date(2026, 3, 1)))

    march4, march5 = pd.Timestamp("2026-03-04"), pd.Timestamp("2026-03-05")
    assert list(closes.index) == [(7, march4), (7, march5), (8, march4)]
    user7 = closes.loc[(7, march4)]
    assert user7["n_closed"] == 2
    # P1 held 2 days; P3 from 2 March 23:59:59 to 4 March 11:59:59.
    assert user7["holding_days"] == pytest.approx(2.0 + 1.5, abs=1e-6)
    assert user7["n_won"] == 1  # P1 up 10%; P3 short while the price rose 10%
    # P2 closed at its opening price: no profit.
    assert closes.loc[(7, march5), "n_won"] == 0
    assert closes.loc[(7, march5), "holding_days"] == pytest.approx(2.5, abs=1e-6)
    assert closes.loc[(8, march4), "n_won"] == 1  # short, price fell


def test_since_keeps_days_from_its_midnight_with_opens_found_before_it(
    connection: sa.Connection,
) -> None:
    since = date(2026, 3, 4)

    assert aggregates.fetch(connection, aggregates.opens_by_user_symbol_day(since)).empty
    closes = aggregates.fetch(connection, aggregates.closes_by_user_day(since))
    # Every close from 4 March on, though their positions opened earlier.
    assert closes["n_closed"].sum() == 4
    late = aggregates.fetch(connection, aggregates.opens_by_user_symbol_day(date(2026, 3, 3)))
    assert list(late["user_id"]) == [8]


def test_daily_bars_per_symbol_and_day(connection: sa.Connection) -> None:
    since = {"AAA": date(2026, 3, 1), "EURUSD": date(2026, 3, 1), "BTCUSD": date(2026, 1, 1)}
    bars = _rows(connection, aggregates.bars_by_symbol_day(since))

    assert set(bars.index.get_level_values("symbol")) == {"AAA", "EURUSD"}
    aaa = bars.loc[("AAA", pd.Timestamp("2026-03-03"))]
    assert tuple(aaa) == (101, 106, 100, 105, 1_500)
    eurusd = bars.loc[("EURUSD", pd.Timestamp("2026-03-02"))]
    assert tuple(eurusd) == pytest.approx((1.10, 1.13, 1.08, 1.11, 45))
    assert tuple(bars.loc[("EURUSD", pd.Timestamp("2026-03-03"))]) == pytest.approx(
        (1.11, 1.14, 1.105, 1.13, 7)
    )


def test_daily_bars_read_each_symbol_from_its_own_day(connection: sa.Connection) -> None:
    bars = aggregates.fetch(connection, aggregates.bars_by_symbol_day({"AAA": date(2026, 3, 3)}))

    assert list(zip(bars["symbol"], bars["day"], strict=True)) == [
        ("AAA", pd.Timestamp("2026-03-03"))
    ]
    assert aggregates.fetch(connection, aggregates.bars_by_symbol_day({})).empty


def test_spans_and_ids(connection: sa.Connection) -> None:
    assert aggregates.trade_day_span(connection) == (date(2026, 3, 2), date(2026, 3, 5))
    assert aggregates.last_bar_days(connection) == {
        "AAA": date(2026, 3, 3),
        "EURUSD": date(2026, 3, 3),
    }
    assert aggregates.user_ids(connection) == [7, 8]
