"""No training row sees a feature stamped after its label time (real Feast, real Redis).

A constructed book where leakage would change the answer: a user trades small for weeks,
then opens one huge position on the day of the label. A training row labelled that
afternoon (the risk model labels each opening trade at its own timestamp) must get the
snapshot from the midnight before, which cannot know the huge trade; a row labelled after
the next midnight gets it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trademaster.features.build import USER_BEHAVIOR_FILE, feast_objects
from trademaster.features.store import open_feature_store
from trademaster.features.user_features import OPEN_SUMS, compute_user_features
from trademaster.launchers.redis_server import RedisServer
from trademaster.settings import PipelineSettings

USER = 7
HUGE = 1_000_000.0
SMALL = 1_000.0
BIG_DAY = pd.Timestamp("2026-03-18")  # a Wednesday


def _book() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opens per day: one small position every business day of February and March before
    the big day, then the huge one on it. No closes."""
    days = pd.bdate_range("2026-02-02", BIG_DAY - pd.Timedelta(days=1))
    small = pd.DataFrame({"day": days, "notional_usd": SMALL})
    huge = pd.DataFrame({"day": [BIG_DAY], "notional_usd": [HUGE]})
    opens = pd.concat([small, huge], ignore_index=True).assign(
        user_id=USER, symbol="AAA", n_opened=1, leverage=1.0, exposure=0.1, n_short=0
    )
    opens["entry_momentum"] = 0.0
    closes = pd.DataFrame(
        {"user_id": [], "day": pd.to_datetime([]), "n_closed": [], "holding_days": [], "n_won": []}
    )
    return opens[["user_id", "day", "symbol", *OPEN_SUMS]], closes


@pytest.fixture
def store_settings(tmp_path: Path, redis_server: RedisServer) -> PipelineSettings:
    """A feature store under ``tmp_path`` holding only the constructed user's snapshots."""
    settings = PipelineSettings(
        data_dir=tmp_path / "var",
        feature_store_root=tmp_path / "store",
        online_store_redis=f"127.0.0.1:{redis_server.port},db=5",
    )
    opens, closes = _book()
    snapshots = compute_user_features(
        opens, closes, np.array([USER]), pd.bdate_range("2026-03-02", "2026-03-31")
    )
    settings.features_dir.mkdir(parents=True)
    created = pd.Timestamp("2026-04-01", tz="UTC")
    snapshots.assign(created=created).to_parquet(
        settings.features_dir / USER_BEHAVIOR_FILE, index=False
    )
    return settings


def test_a_training_row_only_sees_snapshots_stamped_before_its_label_time(
    store_settings: PipelineSettings,
) -> None:
    store = open_feature_store(store_settings.feature_store_root, store_settings.online_store_redis)
    store.apply(feast_objects(store_settings.feature_store_root))
    label_times = pd.to_datetime(
        [
            "2026-03-18 15:00:00",  # the huge trade's own timestamp
            "2026-03-18 23:59:59",  # still the big day
            "2026-03-19 00:00:00",  # the midnight that ends it: the snapshot now knows it
            "2026-03-19 09:30:00",
        ]
    ).tz_localize("UTC")
    entity_df = pd.DataFrame({"user_id": USER, "event_timestamp": label_times})

    rows = (
        store.get_historical_features(
            entity_df=entity_df,
            features=["user_behavior_fv:avg_trade_size", "user_behavior_fv:trades_in_window"],
        )
        .to_df()
        .sort_values("event_timestamp", ignore_index=True)
    )

    before = rows.iloc[:2]
    after = rows.iloc[2:]
    # Before the midnight: only the small positions of the trailing 90 days.
    n_small = len(pd.bdate_range("2026-02-02", BIG_DAY - pd.Timedelta(days=1)))
    assert list(before["avg_trade_size"]) == pytest.approx([SMALL, SMALL]), before
    assert (before["trades_in_window"] == n_small).all(), before
    # From the midnight on, the huge one is in the window: leakage would have shown it above.
    expected = (n_small * SMALL + HUGE) / (n_small + 1)
    assert list(after["avg_trade_size"]) == pytest.approx([expected, expected], rel=1e-6)
    assert (after["trades_in_window"] == n_small + 1).all(), after
