"""The prediction log's table as the pipeline reads it: time windows, a model filter, JSON
decoded, several writers on one SQLite file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from trademaster.contract.prediction_log import (
    create_schema,
    prediction_log_engine,
    read_predictions,
    write_records,
)

START = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


def record(minute: int, model_name: str = "risk-assessment-model", **fields: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{minute}",
        "logged_at": START + timedelta(minutes=minute),
        "model_name": model_name,
        "model_version": 3,
        "route": "primary",
        "feature_service": "risk_model_v1",
        "entity": {"user_id": 12, "symbol": "GOOG"},
        "features": {"a": np.float32(0.5), "b": 2},
        "feature_timestamps": {"user_fv": START - timedelta(hours=1)},
        "stale_views": ("user_fv",),
        "prediction": 0.25,
        "confidence": 0.75,
        "interval": None,
        "cache_hit": False,
        **fields,
    }


def engine_in(folder: Path) -> sa.Engine:
    engine = prediction_log_engine(f"sqlite:///{folder / 'log' / 'predictions.sqlite'}")
    create_schema(engine)
    return engine


def test_json_columns_and_times_come_back_decoded(tmp_path: Path) -> None:
    engine = engine_in(tmp_path)
    interval = {"level": 0.9, "lower": -0.01, "upper": 0.02}
    write_records(
        engine,
        [
            record(0),
            record(
                1, "price-prediction-lstm", prediction=0.005, confidence=None, interval=interval
            ),
        ],
    )

    rows = read_predictions(engine, START)

    first = rows.iloc[0]
    assert first["entity"] == {"user_id": 12, "symbol": "GOOG"}
    assert first["features"] == {"a": 0.5, "b": 2}
    assert first["feature_timestamps"] == {"user_fv": "2024-06-01T08:00:00Z"}
    assert first["stale_views"] == ["user_fv"]
    assert first["logged_at"] == START
    assert rows["cache_hit"].dtype == bool
    assert not first["cache_hit"]
    assert rows.iloc[1]["interval"] == interval
    assert rows.iloc[0]["interval"] is None


def test_reads_a_half_open_window_of_one_model(tmp_path: Path) -> None:
    engine = engine_in(tmp_path)
    write_records(engine, [record(m) for m in range(5)] + [record(2, "sentiment-analyzer")])
    # Another zone, same instants: 09:01 UTC is 11:01 at UTC+2.
    plus_two = timezone(timedelta(hours=2))

    window = read_predictions(
        engine,
        since=datetime(2024, 6, 1, 11, 1, tzinfo=plus_two),
        until=START + timedelta(minutes=3),
        model_name="risk-assessment-model",
    )

    assert list(window["request_id"]) == ["req-1", "req-2"]
    assert len(read_predictions(engine, START)) == 6


def test_a_store_never_written_reads_empty(tmp_path: Path) -> None:
    rows = read_predictions(f"sqlite:///{tmp_path / 'none.sqlite'}", START)
    assert rows.empty
    assert "features" in rows.columns


def test_workers_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    create_schema(prediction_log_engine(url))
    engines = [prediction_log_engine(url) for _ in range(4)]  # as separate gateway workers

    with ThreadPoolExecutor(4) as pool:
        counts = list(
            pool.map(
                lambda engine: sum(write_records(engine, [record(m)] * 50) for m in range(10)),
                engines,
            )
        )

    assert counts == [500] * 4
    assert len(read_predictions(url, START)) == 2000
    with engines[0].connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_class_probabilities_are_kept(tmp_path: Path) -> None:
    engine = engine_in(tmp_path)
    probabilities = {"negative": 0.1, "neutral": 0.2, "positive": 0.7}
    write_records(engine, [record(0, "sentiment-analyzer", probabilities=probabilities), record(1)])

    rows = read_predictions(engine, START)

    assert rows.iloc[0]["probabilities"] == probabilities
    assert rows.iloc[1]["probabilities"] is None


def test_a_table_from_before_probabilities_is_migrated_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.sqlite'}"
    engine = prediction_log_engine(url)
    create_schema(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE predictions DROP COLUMN probabilities")
    old = record(0)
    old.pop("interval")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO predictions (request_id, logged_at, model_name, model_version, route,"
            " entity, features, feature_timestamps, stale_views, prediction, cache_hit)"
            " VALUES ('old', '2024-06-01 09:00:00.000000', 'risk-assessment-model', 3,"
            " 'primary', '{}', '{}', '{}', '[]', '0.5', 0)"
        )

    create_schema(engine)  # as a gateway of this release does before its first write
    create_schema(engine)  # and again, from another worker
    write_records(engine, [record(1, probabilities={"up": 1.0})])

    rows = read_predictions(engine, START)
    assert list(rows["request_id"]) == ["old", "req-1"]
    assert rows.iloc[0]["probabilities"] is None
    assert rows.iloc[1]["probabilities"] == {"up": 1.0}
