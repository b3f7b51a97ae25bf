"""Feature pipeline: extract -> offline parquet -> Feast registry -> Redis online store."""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trademaster.features.extract import DailyExtract, current_extract
from trademaster.features.market_features import SENTIMENT_SCORE, compute_market_features
from trademaster.features.price_window import window_rows
from trademaster.features.store import load_definitions, open_feature_store
from trademaster.features.user_features import (
    USER_FEATURES,
    compute_user_features,
    iter_user_features,
    with_entry_momentum,
)
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

    created = pd.Timestamp(datetime.now(UTC))
    settings.features_dir.mkdir(parents=True, exist_ok=True)
    user_rows = write_user_features(
        settings, extract, daily, settings.features_dir / USER_BEHAVIOR_FILE, created
    )
    # Windows of every series at its own interval (EURUSD stays hourly, as evaluated): the
    # LSTM's input is the bars themselves, not a daily aggregate.
    windows = window_rows(read_table(settings, schema.market_data)).drop(columns=["bar_ts"])
    log.info("price windows: %d rows", len(windows))
    for frame, name in (
        (market_features.drop(columns=["bar_date"]), MARKET_FEATURES_FILE),
        (windows, PRICE_WINDOWS_FILE),
    ):
        frame.assign(created=created).to_parquet(settings.features_dir / name, index=False)
    cutoffs = snapshot_days(extract, daily) + pd.Timedelta(days=1)
    return FeatureSummary(
        user_rows=user_rows,
        market_rows=len(market_features),
        n_users=len(extract.user_ids),
        n_symbols=int(market_features["symbol"].nunique()),
        first_snapshot=str(cutoffs.min().tz_localize("UTC")),
        last_snapshot=str(cutoffs.max().tz_localize("UTC")),
    )


def snapshot_days(extract: DailyExtract, daily: pd.DataFrame) -> pd.DatetimeIndex:
    """Every business day from the extract's first complete window to the newest bar."""
    return pd.bdate_range(extract.snapshot_start, daily["ts"].max())


def extract_user_features(extract: DailyExtract, daily: pd.DataFrame) -> pd.DataFrame:
    """User snapshots for every ``snapshot_days`` day, from the extract's per user and day
    aggregates, in one frame (embedded; small extracts, tests)."""
    days = snapshot_days(extract, daily)
    opens = with_entry_momentum(extract.opens, daily)
    return compute_user_features(opens, extract.closes, extract.user_ids, days)


def write_user_features(
    settings: PipelineSettings,
    extract: DailyExtract,
    daily: pd.DataFrame,
    path: Path,
    created: pd.Timestamp,
) -> int:
    """Writes the user snapshots into ``path`` a chunk of users at a time (memory stays
    bounded at any number of users), computed embedded or, with ``spark_master``, on Spark;
    returns the rows written. The file is replaced whole when complete."""
    days = snapshot_days(extract, daily)
    log.info(
        "user features: %d users x %d days%s",
        len(extract.user_ids),
        len(days),
        f" on Spark ({settings.spark_master})" if settings.spark_master else "",
    )
    if settings.spark_master:
        from trademaster.features.extract import extract_dir
        from trademaster.features.spark import iter_user_features_on_spark

        folder = extract_dir(settings) / extract.manifest.version
        chunks = iter_user_features_on_spark(settings.spark_master, folder, daily, days)
    else:
        opens = with_entry_momentum(extract.opens, daily)
        chunks = iter_user_features(opens, extract.closes, extract.user_ids, days)
    schema_ = user_feature_schema()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    written = 0
    try:
        with pq.ParquetWriter(temporary, schema_) as writer:
            for chunk in chunks:
                table = pa.Table.from_pandas(chunk.assign(created=created), preserve_index=False)
                writer.write_table(table.select(schema_.names).cast(schema_))
                written += len(chunk)
                log.debug("user features: %d rows written", written)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    log.info("user features: %d rows", written)
    return written


def user_feature_schema() -> pa.Schema:
    """The columns of ``user_behavior.parquet``, whichever engine computed them."""
    stamp = pa.timestamp("ns", tz="UTC")
    return pa.schema(
        [
            ("user_id", pa.int64()),
            ("event_timestamp", stamp),
            *((name, pa.float32()) for name in USER_FEATURES),
            ("created", stamp),
        ]
    )


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
    """``feast apply`` of the definitions, then materialisation into Redis of each entity's
    newest row, every view read from the oldest of those on (``materialize_starts``)."""
    from feast import FileSource

    store_root = settings.feature_store_root.resolve()
    store = open_feature_store(store_root, settings.online_store_redis)
    objects = feast_objects(store_root)
    store.apply(objects)
    log.info("feast apply: %d objects registered", len(objects))
    starts = materialize_starts(settings)
    end = datetime.now(UTC)
    materialized: dict[str, str] = {}
    for view in store.list_feature_views():
        source = view.batch_source
        if not isinstance(source, FileSource):
            raise TypeError(f"{view.name}: not a parquet file source ({source})")
        start = starts[Path(source.path).name]
        log.info(
            "materializing %s from %s into Redis %s", view.name, start, settings.online_store_redis
        )
        store.materialize(start_date=start, end_date=end, feature_views=[view.name])
        materialized[view.name] = start.isoformat()
    return {
        "feature_views": sorted(view.name for view in store.list_feature_views()),
        "feature_services": sorted(service.name for service in store.list_feature_services()),
        "materialized_from": materialized,
        "materialized_to": end.isoformat(),
    }


# Per offline file: the oldest of its entities' newest snapshots (DuckDB over the parquet).
_OLDEST_NEWEST = (
    "SELECT min(newest) FROM "
    "(SELECT max(event_timestamp) AS newest FROM read_parquet(?) GROUP BY {})"
)
OLDEST_NEWEST_SQL = {
    USER_BEHAVIOR_FILE: _OLDEST_NEWEST.format("user_id"),
    MARKET_FEATURES_FILE: _OLDEST_NEWEST.format("symbol"),
    PRICE_WINDOWS_FILE: _OLDEST_NEWEST.format("symbol"),
}


def materialize_starts(settings: PipelineSettings) -> dict[str, datetime]:
    """Per offline file, the oldest of its entities' newest snapshots: the online store
    holds each entity's newest row, so older rows need not be read (at 100K users the user
    file holds 25M snapshots; the newest of each are the last day's). Computed by DuckDB
    over the parquet files, which are not loaded into memory."""
    import duckdb

    starts = {}
    with duckdb.connect() as connection:
        for name, query in OLDEST_NEWEST_SQL.items():
            row = connection.execute(query, [str(settings.features_dir / name)]).fetchone()
            if not row or row[0] is None:
                raise ValueError(f"no rows in {settings.features_dir / name}")
            oldest = pd.Timestamp(row[0])
            oldest = oldest.tz_localize("UTC") if oldest.tzinfo is None else oldest
            # A second before: the boundary row is in however the offline store compares.
            starts[name] = (oldest.tz_convert("UTC") - pd.Timedelta(seconds=1)).to_pydatetime()
    return starts
