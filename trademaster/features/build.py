"""Feature pipeline: extract -> offline parquet -> Feast registry -> Redis online store."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademaster.features.extract import DailyExtract, current_extract
from trademaster.features.market_features import SENTIMENT_SCORE, compute_market_features
from trademaster.features.price_window import window_rows
from trademaster.features.store import load_definitions, open_feature_store
from trademaster.features.user_features import compute_user_features, with_entry_momentum
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.read import read_table

log = logging.getLogger(__name__)

USER_BEHAVIOR_FILE = "user_behavior.parquet"
MARKET_FEATURES_FILE = "market_features.parquet"
PRICE_WINDOWS_FILE = "price_windows.parquet"


@dataclass(frozen=True)
class FeatureSummary:
    user_rows: int
    market_rows: int
    n_users: int
    n_symbols: int
    first_snapshot: str
    last_snapshot: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def build_offline_features(
    settings: PipelineSettings, daily_sentiment: pd.DataFrame | None
) -> FeatureSummary:
    """Computes user and market features from the extract into the offline parquet files.

    The extract holds the warehouse's daily aggregates (``trademaster.features.extract``);
    without one for these settings, one is extracted first. ``daily_sentiment`` (symbol,
    bar_date, sentiment_score: the day's mean headline score by the sentiment-analyzer
    champion, handed over by the pipeline) becomes the market features' ``sentiment_score``;
    None (no champion yet) makes it 0, neutral."""
    extract = current_extract(settings)
    daily = extract.bars.rename(columns={"day": "ts"})
    log.info("market features for %d symbols", daily["symbol"].nunique())
    market_features = with_sentiment(compute_market_features(daily), daily_sentiment)
    user_features = extract_user_features(extract, daily)

    created = pd.Timestamp(datetime.now(UTC))
    settings.features_dir.mkdir(parents=True, exist_ok=True)
    # Windows of every series at its own interval (EURUSD stays hourly, as evaluated): the
    # LSTM's input is the bars themselves, not a daily aggregate.
    windows = window_rows(read_table(settings, schema.market_data)).drop(columns=["bar_ts"])
    log.info("price windows: %d rows", len(windows))
    for frame, name in (
        (user_features, USER_BEHAVIOR_FILE),
        (market_features.drop(columns=["bar_date"]), MARKET_FEATURES_FILE),
        (windows, PRICE_WINDOWS_FILE),
    ):
        frame.assign(created=created).to_parquet(settings.features_dir / name, index=False)
    return FeatureSummary(
        user_rows=len(user_features),
        market_rows=len(market_features),
        n_users=int(user_features["user_id"].nunique()),
        n_symbols=int(market_features["symbol"].nunique()),
        first_snapshot=str(user_features["event_timestamp"].min()),
        last_snapshot=str(user_features["event_timestamp"].max()),
    )


def extract_user_features(extract: DailyExtract, daily: pd.DataFrame) -> pd.DataFrame:
    """User snapshots for every business day from the extract's first complete window to the
    newest bar, from its per user and day aggregates."""
    snapshot_days = pd.bdate_range(extract.snapshot_start, daily["ts"].max())
    log.info("user features: %d users x %d days", len(extract.user_ids), len(snapshot_days))
    opens = with_entry_momentum(extract.opens, daily)
    return compute_user_features(opens, extract.closes, extract.user_ids, snapshot_days)


def with_sentiment(
    market_features: pd.DataFrame, daily_sentiment: pd.DataFrame | None
) -> pd.DataFrame:
    """Adds ``sentiment_score`` per symbol and day (0, neutral, on days without headlines or
    while there is no sentiment champion)."""
    if daily_sentiment is None:
        log.warning("%s set to 0: no sentiment scores", SENTIMENT_SCORE)
        return market_features.assign(**{SENTIMENT_SCORE: np.float32(0.0)})
    log.info("sentiment scores of %d symbol-days", len(daily_sentiment))
    merged = market_features.merge(daily_sentiment, on=["symbol", "bar_date"], how="left")
    return merged.assign(**{SENTIMENT_SCORE: merged[SENTIMENT_SCORE].fillna(0.0).astype("float32")})


def feast_objects(store_root: Path) -> list[Any]:
    """Every entity, feature view and feature service in ``feature_repo/definitions.py``.

    Relative parquet paths are made absolute under ``store_root``: Feast's duckdb offline
    store would otherwise read them relative to the working directory.
    """
    from feast import Entity, FeatureService, FeatureView, FileSource

    definitions = load_definitions()
    kinds = (Entity, FeatureView, FeatureService)
    objects = [value for value in vars(definitions).values() if isinstance(value, kinds)]
    for view in objects:
        source = getattr(view, "batch_source", None)
        if isinstance(source, FileSource) and not Path(source.path).is_absolute():
            source.file_options.uri = str(store_root / source.path)
    return objects


def apply_and_materialize(settings: PipelineSettings) -> dict[str, Any]:
    """``feast apply`` of the definitions, then materialisation of all rows into Redis."""
    store_root = settings.feature_store_root.resolve()
    store = open_feature_store(store_root, settings.online_store_redis)
    objects = feast_objects(store_root)
    store.apply(objects)
    log.info("feast apply: %d objects registered", len(objects))
    start = _earliest_event(settings)
    end = datetime.now(UTC)
    log.info("materializing %s .. %s into Redis %s", start, end, settings.online_store_redis)
    store.materialize(start_date=start, end_date=end)
    return {
        "feature_views": sorted(view.name for view in store.list_feature_views()),
        "feature_services": sorted(service.name for service in store.list_feature_services()),
        "materialized_from": start.isoformat(),
        "materialized_to": end.isoformat(),
    }


def _earliest_event(settings: PipelineSettings) -> datetime:
    earliest = min(
        pd.read_parquet(settings.features_dir / name, columns=["event_timestamp"])[
            "event_timestamp"
        ].min()
        for name in (USER_BEHAVIOR_FILE, MARKET_FEATURES_FILE, PRICE_WINDOWS_FILE)
    )
    return pd.Timestamp(earliest).to_pydatetime()
