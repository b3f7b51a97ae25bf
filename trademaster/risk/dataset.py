"""Point-in-time-correct training sets: entity rows from the warehouse, features from Feast."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trademaster.features.store import feature_service_columns
from trademaster.risk.labels import adverse_move_labels
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.market import daily_bars
from trademaster.warehouse.read import read_table

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
    trades = read_table(settings, schema.trades)
    daily = daily_bars(read_table(settings, schema.market_data))
    opens = trades[trades["action"] == "open"]
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
