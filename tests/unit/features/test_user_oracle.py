"""Every user feature agrees with SQL written out on the warehouse's raw trades.

The oracle does not use the extract, the daily aggregates or any of the feature code: for a
user and a snapshot it selects that user's trades in the 90-day window straight from
``trades`` (and the bars from ``market_data``) and computes each feature in SQL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.unit.warehouse.helpers import seeded_small_warehouse
from trademaster.features.build import extract_user_features, snapshot_days
from trademaster.features.extract import current_extract
from trademaster.features.user_features import (
    USER_FEATURES,
    WINDOW_BUSINESS_DAYS,
    compute_user_features,
    iter_user_features,
    with_entry_momentum,
)
from trademaster.settings import PipelineSettings

# The features are float32.
RTOL, ATOL = 1e-5, 1e-5
N_SNAPSHOT_DAYS = 5
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S"

# Positions opened in [start, cutoff): counts, means, the 20-bar return before the entry day
# (a daily close is the day's last bar, hourly series included) and the HHI of notional.
OPENS_SQL = """
WITH last_bar AS (
  SELECT symbol, date(ts) AS day, close,
         ROW_NUMBER() OVER (PARTITION BY symbol, date(ts) ORDER BY ts DESC) AS newest
  FROM market_data WHERE interval IN ('1d', '1h')
), daily AS (
  SELECT symbol, day,
         LAG(close, 1) OVER bars / LAG(close, 21) OVER bars - 1 AS momentum
  FROM last_bar WHERE newest = 1
  WINDOW bars AS (PARTITION BY symbol ORDER BY day)
), opened AS (
  SELECT t.symbol, t.notional_usd, t.leverage, t.direction,
         t.notional_usd * t.leverage / u.capital_usd AS exposure,
         COALESCE(d.momentum, 0) AS momentum
  FROM trades t
  JOIN users u ON u.user_id = t.user_id
  LEFT JOIN daily d ON d.symbol = t.symbol AND d.day = date(t.ts)
  WHERE t.user_id = :user AND t.action = 'open' AND t.ts >= :start AND t.ts < :cutoff
), per_symbol AS (
  SELECT SUM(notional_usd) AS notional FROM opened GROUP BY symbol
)
SELECT COUNT(*) AS n, AVG(notional_usd) AS avg_trade_size, AVG(leverage) AS avg_leverage,
       AVG(exposure) AS mean_exposure,
       AVG(CASE WHEN direction = 'short' THEN 1.0 ELSE 0.0 END) AS short_ratio,
       AVG(momentum) AS entry_momentum,
       1 - (SELECT SUM(notional * notional) FROM per_symbol)
           / ((SELECT SUM(notional) FROM per_symbol) * (SELECT SUM(notional) FROM per_symbol))
         AS portfolio_diversity
FROM opened
"""
# Positions closed in [start, cutoff), wherever they were opened.
CLOSES_SQL = """
SELECT COUNT(*) AS n,
       AVG(julianday(c.ts) - julianday(o.ts)) AS avg_holding_days,
       AVG(CASE WHEN (CASE WHEN o.direction = 'long' THEN c.price / o.price - 1
                           ELSE 1 - c.price / o.price END) > 0 THEN 1.0 ELSE 0.0 END) AS win_rate
FROM trades c JOIN trades o ON o.position_id = c.position_id AND o.action = 'open'
WHERE c.user_id = :user AND c.action = 'close' AND c.ts >= :start AND c.ts < :cutoff
"""


def _oracle(connection: sa.Connection, user: int, cutoff: pd.Timestamp) -> dict[str, float]:
    # Bound as text in SQLite's DateTime format: importing Feast's SQLite online store
    # registers a process-wide sqlite3 adapter that binds datetimes as epoch numbers.
    window = {
        "user": user,
        "start": (cutoff - pd.Timedelta(days=90)).strftime(SQLITE_DATETIME),
        "cutoff": cutoff.strftime(SQLITE_DATETIME),
    }
    opened = connection.execute(sa.text(OPENS_SQL), window).mappings().one()
    closed = connection.execute(sa.text(CLOSES_SQL), window).mappings().one()
    n = int(opened["n"])
    features = dict.fromkeys(USER_FEATURES, 0.0)
    features["trades_in_window"] = n
    features["trade_frequency"] = n / WINDOW_BUSINESS_DAYS
    if n:
        for name in ("avg_trade_size", "avg_leverage", "short_ratio", "entry_momentum"):
            features[name] = float(opened[name])
        diversity = float(opened["portfolio_diversity"])
        features["portfolio_diversity"] = diversity
        features["risk_score"] = (
            float(opened["mean_exposure"]) * (1 + features["avg_leverage"]) * (2 - diversity) / 2
        )
    features["win_rate"] = float(closed["win_rate"]) if closed["n"] else 0.5
    features["avg_holding_days"] = float(closed["avg_holding_days"]) if closed["n"] else 0.0
    return features


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    return seeded_small_warehouse(tmp_path_factory.mktemp("oracle"))


def test_every_user_feature_equals_sql_on_the_raw_trades(seeded: PipelineSettings) -> None:
    extract = current_extract(seeded)
    features = extract_user_features(extract, extract.bars.rename(columns={"day": "ts"}))
    stamps = np.sort(features["event_timestamp"].unique())
    # The first and last snapshot and some between, for every user.
    chosen = stamps[np.linspace(0, len(stamps) - 1, N_SNAPSHOT_DAYS).astype(int)]
    rows = features[features["event_timestamp"].isin(chosen)]
    engine = sa.create_engine(seeded.resolved_warehouse_url)
    mismatches: list[str] = []
    try:
        with engine.connect() as connection:
            for row in rows.itertuples(index=False):
                cutoff = pd.Timestamp(row.event_timestamp).tz_localize(None)
                expected = _oracle(connection, int(row.user_id), cutoff)
                for name in USER_FEATURES:
                    got = float(getattr(row, name))
                    if not np.isclose(got, expected[name], rtol=RTOL, atol=ATOL):
                        mismatches.append(
                            f"user {row.user_id} {cutoff} {name}: {got} != {expected[name]}"
                        )
    finally:
        engine.dispose()

    assert len(rows) == seeded.n_users * N_SNAPSHOT_DAYS
    # The check has teeth: active windows, short positions, closes and momentum occur.
    assert (rows["trades_in_window"] > 3).mean() > 0.3
    assert (rows["short_ratio"] > 0).any()
    assert (rows["entry_momentum"] != 0).any()
    assert (rows["win_rate"] != 0.5).any()
    assert (rows["portfolio_diversity"] > 0).any()
    assert not mismatches, "\n".join(mismatches[:20])


def test_chunks_of_users_give_the_rows_of_one_pass(seeded: PipelineSettings) -> None:
    """Memory is bounded by chunking the users; the chunk size changes nothing."""
    extract = current_extract(seeded)
    daily = extract.bars.rename(columns={"day": "ts"})
    days = snapshot_days(extract, daily)
    opens = with_entry_momentum(extract.opens, daily)
    one_pass = compute_user_features(
        opens, extract.closes, extract.user_ids, days
    )  # the default: every user of this warehouse in one chunk

    chunks = list(iter_user_features(opens, extract.closes, extract.user_ids, days, max_cells=1))

    assert len(chunks) == seeded.n_users  # one user per chunk
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), one_pass, check_exact=True)
