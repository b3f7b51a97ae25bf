"""Point-in-time-correct training sets: entity rows from the warehouse, features from Feast."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trademaster.features.store import feature_service_columns
from trademaster.risk.labels import adverse_move_labels
from trademaster.settings import PipelineSettings
from trademaster.training.sampling import sample_stride
from trademaster.warehouse import schema
from trademaster.warehouse.market import daily_bars
from trademaster.warehouse.read import read_table, warehouse_connection

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

RISK_FEATURE_SERVICE = "risk_model_v1"


class NoLabelledTrades(ValueError):
    """No opening trade's outcome is known yet: there is nothing to train the risk model on."""


@dataclass(frozen=True)
class SplitDataset:
    feature_names: list[str]
    train: pd.DataFrame
    holdout: pd.DataFrame

    def arrays(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        frame = self.train if part == "train" else self.holdout
        features = frame[self.feature_names].to_numpy(dtype=np.float32)
        return features, frame["label"].to_numpy(dtype=np.float32)


def risk_examples(
    settings: PipelineSettings, store: FeatureStore
) -> tuple[pd.DataFrame, list[str]]:
    """Opening trades labelled by their outcome, joined point-in-time with Feast features."""
    opens = opening_trades(settings, settings.risk_max_training_trades)
    daily = daily_bars(read_table(settings, schema.market_data))
    labelled = adverse_move_labels(
        opens, daily, settings.risk_horizon_days, settings.risk_loss_threshold
    )
    if labelled.empty:
        raise NoLabelledTrades(
            f"none of {len(opens)} opening trades has a known outcome: risk_horizon_days="
            f"{settings.risk_horizon_days} business days reach past the last daily bar of "
            "every symbol"
        )
    entity_df = pd.DataFrame(
        {
            "user_id": labelled["user_id"].astype("int64"),
            "symbol": labelled["symbol"].astype(str),
            "event_timestamp": labelled["ts"].dt.tz_localize("UTC"),
            "label": labelled["label"],
        }
    )
    service = store.get_feature_service(RISK_FEATURE_SERVICE)
    names = feature_service_columns(service)
    log.info("historical features for %d labelled trades", len(entity_df))
    frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    complete = frame.dropna(subset=names)
    log.info(
        "%d rows with complete features (%d dropped: no snapshot before the trade)",
        len(complete),
        len(frame) - len(complete),
    )
    # Feast returns rows in no fixed order; a total order keeps training reproducible.
    order = ["event_timestamp", "user_id", "symbol"]
    return complete.sort_values(order, ignore_index=True), names


def opening_trades(settings: PipelineSettings, max_trades: int) -> pd.DataFrame:
    """The opening trades, selected in SQL (closing trades are not read). Above
    ``max_trades``, every k-th position (``position_id`` divisible by k, the smallest k that
    fits): a fixed sample spread evenly over users and time, the same on every run."""
    trades = schema.trades
    is_open = trades.c.action == "open"
    with warehouse_connection(settings) as connection:
        total = connection.execute(sa.select(sa.func.count()).where(is_open)).scalar_one()
        stride = sample_stride(total, max_trades)
        query = sa.select(trades).where(is_open).order_by(trades.c.trade_id)
        if stride > 1:
            query = query.where(trades.c.position_id % stride == 0)
        opens = pd.read_sql(query, connection, parse_dates=["ts"])
    if stride > 1:
        log.info(
            "risk training sample: %d of %d opening trades (every %dth position; "
            "risk_max_training_trades=%d)",
            len(opens),
            total,
            stride,
            max_trades,
        )
    return opens


def time_split(
    frame: pd.DataFrame, feature_names: list[str], holdout_fraction: float, embargo_days: int
) -> SplitDataset:
    """Train on the earlier rows, hold out the latest ``holdout_fraction``.

    Training rows within ``embargo_days`` business days of the cut are dropped, because their
    labels look into the held-out period.
    """
    cutoff = frame["event_timestamp"].quantile(1 - holdout_fraction)
    embargo_start = cutoff - pd.offsets.BDay(embargo_days + 1)
    train = frame[frame["event_timestamp"] < embargo_start]
    holdout = frame[frame["event_timestamp"] >= cutoff]
    if not (train.empty or holdout.empty) and holdout["label"].nunique() < 2:
        raise ValueError(
            f"the held-out period ({len(holdout)} rows from {cutoff}) has a single class "
            f"(label {holdout['label'].iloc[0]}): AUC is undefined; use a longer trade window"
        )
    if train.empty or holdout.empty:
        raise ValueError(
            f"time split left {len(train)} training and {len(holdout)} held-out rows; "
            "generate more trades or a longer trade window"
        )
    return SplitDataset(feature_names, train.reset_index(drop=True), holdout.reset_index(drop=True))
