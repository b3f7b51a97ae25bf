"""Reference rows and calibration: a quiet day of the reference period must not read as drift."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from trademaster.monitoring.drift import DriftSettings, compare, distance_threshold
from trademaster.monitoring.profile import FeatureProfile
from trademaster.monitoring.reference import calibrated, recent_rows, training_reference

DAYS = pd.date_range("2026-06-01", periods=120, freq="D", tz="UTC")


def _market_days(rng: np.random.Generator, days: int = 30, rows: int = 1_000) -> pd.DataFrame:
    """Users' win rates with a common daily factor (a market that lifts them all at once)."""
    frames = []
    for day in DAYS[-days:]:
        common = rng.normal(0.0, 0.05)
        frames.append(
            pd.DataFrame({"event_timestamp": day, "win_rate": rng.normal(0.5 + common, 0.1, rows)})
        )
    return pd.concat(frames, ignore_index=True)


def test_the_reference_is_the_recent_rows() -> None:
    frame = pd.DataFrame({"event_timestamp": DAYS, "x": np.arange(len(DAYS), dtype=float)})

    recent = recent_rows(frame, days=10)

    assert recent["x"].tolist() == list(range(110, 120))


def test_a_day_moved_by_the_common_factor_is_quiet_once_calibrated() -> None:
    rng = np.random.default_rng(5)
    history = _market_days(rng)
    profile = training_reference(history, ["win_rate"], "svc", {"trades_in_window": 3})
    quiet_days = [rows for _, rows in history.groupby("event_timestamp")]
    # A new day as far off as the reference's own days typically are.
    new_day = pd.DataFrame({"win_rate": rng.normal(0.5 + 0.06, 0.1, 1_000)})

    raw = compare(profile, new_day)
    tuned = calibrated(profile, quiet_days)
    after = compare(tuned, new_day)

    assert profile.population == {"trades_in_window": 3}
    assert raw.drifted_features != ()  # the plain 0.1 threshold flags it
    largest = max(compare(profile, day).features[0].score or 0.0 for day in quiet_days)
    assert tuned.calibration == {"win_rate": pytest.approx(largest)}
    assert after.features[0].threshold == pytest.approx(1.5 * largest)
    assert after.features[0].state == "no_drift"
    # A real shift, several times the daily wobble, is still drift.
    shifted = pd.DataFrame({"win_rate": rng.normal(0.5 + 0.3, 0.1, 1_000)})
    assert compare(tuned, shifted).features[0].state == "drift"


def test_calibration_survives_the_profile_round_trip() -> None:
    rng = np.random.default_rng(6)
    history = _market_days(rng, days=5)
    tuned = calibrated(
        training_reference(history, ["win_rate"], "svc"),
        [rows for _, rows in history.groupby("event_timestamp")],
    )

    assert FeatureProfile.from_json(tuned.to_json()) == tuned
    assert tuned.calibration["win_rate"] > 0


def test_calibration_never_lowers_the_default_threshold() -> None:
    settings = DriftSettings()

    assert distance_threshold(0.1, None, settings) == 0.1
    assert distance_threshold(0.1, 0.01, settings) == 0.1
    assert distance_threshold(0.1, 0.2, settings) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="calibration_margin"):
        replace(settings, calibration_margin=0.5)


def test_days_too_small_to_check_calibrate_nothing() -> None:
    rng = np.random.default_rng(7)
    history = _market_days(rng, days=3)
    profile = training_reference(history, ["win_rate"], "svc")

    assert calibrated(profile, [history.iloc[:50]]).calibration == {}
