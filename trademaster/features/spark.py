"""User features on a Spark cluster (``spark_master``): the embedded path's code, per task.

The cluster reads the extract's parquet partitions itself (``data_dir`` must be storage it
shares), groups the aggregate rows by a bucket of users, and runs
``user_features.user_feature_chunk`` (after ``with_entry_momentum``, on the daily bars it is
handed) on each bucket with ``applyInPandas``: the same function the embedded path runs on
chunks of users, so both give the same rows. Spark writes its part files; they are then
concatenated, one row group per part, into the single parquet file Feast reads.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from trademaster.features.user_features import (
    USER_FEATURES,
    user_feature_chunk,
    with_entry_momentum,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Users per Spark task: about 30 MB of dense grids each at two years of days.
USERS_PER_TASK = 2_000
OUTPUT_SCHEMA = ", ".join(
    ["user_id long", "event_timestamp timestamp", *(f"{name} float" for name in USER_FEATURES)]
)


class SparkUnavailable(RuntimeError):
    """``spark_master`` is set but Spark cannot start: no Java, or the master is unreachable."""


def check_spark(master: str, timeout_s: float = 5.0) -> None:
    """Fails fast, saying what to do, where a session would fail late or wait for a master
    that never answers (a standalone master that is down leaves jobs waiting forever)."""
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise SparkUnavailable(
            f"TRADEMASTER_SPARK_MASTER={master} needs Java 17 (Debian: openjdk-17-jre-headless; "
            "scripts/bootstrap.sh installs it); unset it to compute the features embedded"
        )
    if master.startswith("spark://"):
        for address in master.removeprefix("spark://").split(","):
            host, _, port = address.partition(":")
            try:
                socket.create_connection((host, int(port or 7077)), timeout=timeout_s).close()
            except (OSError, ValueError) as exc:
                raise SparkUnavailable(
                    f"Spark master {address} of TRADEMASTER_SPARK_MASTER={master} is not "
                    f"reachable ({exc}); unset it to compute the features embedded"
                ) from exc


@contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """A session on ``master``, stopped on exit. Timestamps are UTC; parquet nanosecond
    timestamps (pandas' default) are read as integers, which the feature code accepts."""
    from pyspark.sql import SparkSession

    check_spark(master)
    log.info("starting a Spark session on %s", master)
    # Python workers run this interpreter (the pipeline image's, on a cluster) unless told:
    # PySpark reads the variable, not the setting, when it starts them.
    python = os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(master)
        .appName("trademaster-user-features")
        .config("spark.ui.enabled", "false")
        .config("spark.pyspark.python", python)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    try:
        yield session
    finally:
        session.stop()


def iter_user_features_on_spark(
    master: str, extract_folder: Path, daily: pd.DataFrame, snapshot_days: pd.DatetimeIndex
) -> Iterator[pd.DataFrame]:
    """The snapshots of every user in the extract at ``extract_folder``, computed on Spark,
    one part file at a time. ``daily``: symbol, ts, close (the daily bars, for entry
    momentum)."""
    parts = extract_folder.parent / f".spark-{uuid.uuid4().hex}"
    try:
        with spark_session(master) as spark:
            _user_features(spark, extract_folder, daily, snapshot_days).write.parquet(str(parts))
        for part in sorted(parts.glob("part-*.parquet")):
            frame = pd.read_parquet(part)
            if len(frame):
                yield frame
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _user_features(
    spark: SparkSession, extract_folder: Path, daily: pd.DataFrame, snapshot_days: pd.DatetimeIndex
) -> DataFrame:
    from pyspark.sql import functions as F

    from trademaster.features.extract import CLOSES, OPENS, USERS_FILE

    users = spark.read.parquet(str(extract_folder / USERS_FILE))
    n_users = users.count()
    n_buckets = max(1, math.ceil(n_users / USERS_PER_TASK))
    # One frame of three kinds of rows, so that a bucket holds its users' opens and closes
    # and also the users without any.
    opens = spark.read.parquet(str(extract_folder / OPENS.name))
    closes = spark.read.parquet(str(extract_folder / CLOSES.name))
    rows = (
        opens.withColumn("kind", F.lit("open"))
        .unionByName(closes.withColumn("kind", F.lit("close")), allowMissingColumns=True)
        .unionByName(users.withColumn("kind", F.lit("user")), allowMissingColumns=True)
    )
    bars = daily[["symbol", "ts", "close"]].copy()

    def features_of_bucket(bucket: pd.DataFrame) -> pd.DataFrame:
        kind = bucket["kind"]
        opens = bucket[kind == "open"].assign(day=lambda f: pd.to_datetime(f["day"]))
        closes = bucket[kind == "close"].assign(day=lambda f: pd.to_datetime(f["day"]))
        user_ids = bucket.loc[kind == "user", "user_id"].to_numpy(dtype="int64")
        return user_feature_chunk(with_entry_momentum(opens, bars), closes, user_ids, snapshot_days)

    log.info("user features on Spark: %d users in %d tasks", n_users, n_buckets)
    return rows.groupBy((F.col("user_id") % n_buckets).alias("bucket")).applyInPandas(
        features_of_bucket, OUTPUT_SCHEMA
    )
