"""The daily drift check's data plumbing: which rows of which view are compared with a
profile, and what becomes Prometheus series (the statistics are tested in test_drift.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trademaster.features.price_window import FEATURE_NAMES, WINDOW, WINDOW_COLUMN
from trademaster.monitoring.drift import compare
from trademaster.monitoring.drift_check import (
    Comparison,
    ViewSnapshot,
    in_population,
    offline_frame,
    profiled_columns,
    record_metrics,
    summary,
)
from trademaster.monitoring.metrics import batch_registry
from trademaster.monitoring.profile import build_profile

NEWEST = datetime(2026, 11, 30, tzinfo=UTC)


def _value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no {name}{labels} in the exposition")


def _users(n: int, rng: np.random.Generator, active: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.arange(n),
            "event_timestamp": NEWEST,
            "avg_leverage": rng.normal(2.0, 0.5, n),
            "win_rate": rng.uniform(0, 1, n),
            "trades_in_window": rng.integers(3, 40, n) if active else np.zeros(n, int),
        }
    )


def test_the_population_rule_keeps_only_rows_like_the_training_rows() -> None:
    rows = pd.DataFrame({"trades_in_window": [0, 2, 3, 9], "x": [1.0, 2.0, 3.0, 4.0]})

    kept = in_population(rows, {"trades_in_window": 3, "not_in_this_view": 1})

    assert kept["x"].tolist() == [3.0, 4.0]


def test_offline_rows_are_the_views_newest_snapshot_in_the_population() -> None:
    rng = np.random.default_rng(1)
    reference = _users(3_000, rng)
    profile = build_profile(
        reference[["avg_leverage", "win_rate", "trades_in_window"]],
        "behavior_model_v1",
        population={"trades_in_window": 3},
    )
    # 1,000 active users like the reference, and 600 inactive ones (zeros) the model never
    # trained on: without the rule they alone would look like drift.
    snapshot = pd.concat([_users(1_000, rng), _users(600, rng, active=False)])
    snapshots = {"user_behavior_fv": ViewSnapshot("user_behavior_fv", snapshot, NEWEST, 7 * 86400)}

    frame = offline_frame(profile, snapshots)
    report = compare(profile, frame)

    assert list(frame.columns) == ["avg_leverage", "win_rate", "trades_in_window"]
    assert len(frame) == 1_000
    assert report.drifted_features == ()


def test_the_price_window_is_compared_by_its_newest_bar() -> None:
    windows = np.arange(2 * WINDOW * len(FEATURE_NAMES), dtype=np.float32).reshape(2, -1)
    rows = pd.DataFrame({"symbol": ["A", "B"], WINDOW_COLUMN: list(windows)})

    bars = profiled_columns(rows, ["log_return", "relative_volume"])

    last = windows[:, -len(FEATURE_NAMES) :]
    assert bars["log_return"].tolist() == last[:, 0].tolist()
    assert bars["relative_volume"].tolist() == last[:, -1].tolist()


def test_every_feature_gets_its_state_score_and_the_views_their_freshness() -> None:
    rng = np.random.default_rng(2)
    reference = _users(3_000, rng)
    features = ["avg_leverage", "win_rate"]
    profile = build_profile(reference[features], "behavior_model_v1")
    current = reference[features].iloc[:800].copy()
    current["avg_leverage"] += 1.0  # two reference standard deviations
    report = compare(profile, current)
    metrics = batch_registry()

    record_metrics(
        metrics,
        [Comparison("behavioral-pattern-classifier", 4, "offline", report, profile, current)],
        {"user_behavior_fv": ViewSnapshot("user_behavior_fv", current, NEWEST, 604800.0)},
        checked_at=1_700_000_000.0,
    )

    text = generate_latest(metrics.registry).decode()
    labels = 'model_name="behavioral-pattern-classifier",model_version="4",source="offline"'
    assert (
        'ml_feature_drift_state{feature="avg_leverage",' + labels + ',state="drift"} 1.0'
    ) in text
    assert (
        'ml_feature_drift_state{feature="win_rate",' + labels + ',state="no_drift"} 1.0'
    ) in text
    assert f"ml_feature_drift_share{{{labels}}} 0.5" in text
    assert f"ml_feature_drift_checked_timestamp_seconds{{{labels}}} 1.7e+09" in text
    assert _value(
        text, "ml_feature_view_newest_event_timestamp_seconds", feature_view="user_behavior_fv"
    ) == pytest.approx(NEWEST.timestamp())
    assert 'ml_feature_view_ttl_seconds{feature_view="user_behavior_fv"} 604800.0' in text
    assert summary(
        [Comparison("behavioral-pattern-classifier", 4, "offline", report, profile, current)]
    ) == {
        "behavioral-pattern-classifier v4 (offline)": {
            "drifted": ["avg_leverage"],
            "drift": 1,
            "no_drift": 1,
            "insufficient_data": 0,
            "drift_share": 0.5,
        }
    }


def test_too_few_rows_are_insufficient_data_not_a_verdict() -> None:
    rng = np.random.default_rng(3)
    reference = _users(3_000, rng)
    profile = build_profile(reference[["avg_leverage"]], "behavior_model_v1")
    report = compare(profile, reference[["avg_leverage"]].iloc[:20] + 5.0)
    metrics = batch_registry()

    record_metrics(
        metrics, [Comparison("m", 1, "served", report, profile, reference)], {}, checked_at=0.0
    )

    text = generate_latest(metrics.registry).decode()
    assert 'state="insufficient_data"} 1.0' in text
    assert "ml_feature_drift_score{" not in text


def test_the_logged_newest_bar_becomes_the_lstm_features() -> None:
    from trademaster.monitoring.drift_check import served_features

    bar = [0.01, 0.02, 0.005, 0.7, 1.1]

    assert served_features({f"{WINDOW_COLUMN}_last_bar": bar}) == dict(
        zip(FEATURE_NAMES, bar, strict=True)
    )
    assert served_features({"avg_leverage": 2.0}) == {"avg_leverage": 2.0}
