"""The user features on Spark (local mode, a real session) equal the embedded path's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.unit.warehouse.helpers import seeded_small_warehouse
from trademaster.features.build import USER_BEHAVIOR_FILE, write_user_features
from trademaster.features.extract import current_extract
from trademaster.settings import PipelineSettings

CREATED = pd.Timestamp("2026-07-01", tz="UTC")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    return seeded_small_warehouse(tmp_path_factory.mktemp("spark"))


def _features(settings: PipelineSettings, path: Path) -> tuple[int, pd.DataFrame]:
    extract = current_extract(settings)
    daily = extract.bars.rename(columns={"day": "ts"})
    written = write_user_features(settings, extract, daily, path, CREATED)
    frame = pd.read_parquet(path).sort_values(["user_id", "event_timestamp"], ignore_index=True)
    return written, frame


def test_spark_local_mode_computes_the_embedded_features_row_for_row(
    seeded: PipelineSettings, tmp_path: Path
) -> None:
    embedded_rows, embedded = _features(seeded, tmp_path / "embedded" / USER_BEHAVIOR_FILE)
    on_spark = seeded.model_copy(update={"spark_master": "local[2]"})
    spark_rows, spark = _features(on_spark, tmp_path / "spark" / USER_BEHAVIOR_FILE)

    assert embedded_rows == spark_rows == len(embedded) == len(spark)
    assert embedded["user_id"].nunique() == seeded.n_users
    # Busy users, and users with nothing in some windows, on both sides.
    assert (embedded["trades_in_window"] > 5).any()
    assert (embedded["trades_in_window"] == 0).any()
    assert list(spark.columns) == list(embedded.columns)
    assert (spark.dtypes == embedded.dtypes).all()
    pd.testing.assert_frame_equal(spark, embedded, check_exact=True)
