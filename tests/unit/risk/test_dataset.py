from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trademaster.risk.dataset import time_split

N_DAYS = 200
EMBARGO = 10


def _examples(labels: np.ndarray | None = None) -> pd.DataFrame:
    """One labelled row per business day, in shuffled order, at 15:00 UTC."""
    days = pd.bdate_range("2025-01-06", periods=N_DAYS) + pd.Timedelta(hours=15)
    frame = pd.DataFrame(
        {
            "event_timestamp": days.tz_localize("UTC"),
            "f0": np.arange(N_DAYS, dtype=float),
            "f1": np.arange(N_DAYS, dtype=float) ** 2,
            "label": np.arange(N_DAYS) % 2 if labels is None else labels,
        }
    )
    return frame.sample(frac=1.0, random_state=0)


def _business_days_between(earlier: pd.Series, later: pd.Timestamp) -> np.ndarray:
    return np.busday_count(
        earlier.dt.tz_localize(None).dt.date.to_numpy(dtype="datetime64[D]"),
        np.datetime64(later.tz_localize(None).date()),
    )


def test_holdout_is_the_latest_fraction() -> None:
    frame = _examples()

    split = time_split(frame, ["f0", "f1"], holdout_fraction=0.25, embargo_days=EMBARGO)

    latest = frame.sort_values("event_timestamp").tail(len(split.holdout))
    assert abs(len(split.holdout) - 0.25 * N_DAYS) <= 1
    assert set(split.holdout["f0"]) == set(latest["f0"])
    assert split.train["event_timestamp"].max() < split.holdout["event_timestamp"].min()


def test_no_training_row_lies_within_the_embargo_before_the_cut() -> None:
    split = time_split(_examples(), ["f0", "f1"], holdout_fraction=0.25, embargo_days=EMBARGO)

    cut = split.holdout["event_timestamp"].min()
    gap = _business_days_between(split.train["event_timestamp"], cut)
    assert gap.min() > EMBARGO
    # ... and the embargo does not throw away much more than it has to.
    assert gap.min() <= EMBARGO + 2
    assert len(split.train) >= N_DAYS - len(split.holdout) - (EMBARGO + 2)


def test_arrays_are_float32_features_in_the_given_order() -> None:
    split = time_split(_examples(), ["f1", "f0"], holdout_fraction=0.25, embargo_days=EMBARGO)

    features, labels = split.arrays("holdout")

    assert features.dtype == np.float32
    assert labels.dtype == np.float32
    assert features.shape == (len(split.holdout), 2)
    np.testing.assert_array_equal(features[:, 0], split.holdout["f1"].to_numpy(np.float32))
    np.testing.assert_array_equal(labels, split.holdout["label"].to_numpy(np.float32))
    assert split.arrays("train")[0].shape == (len(split.train), 2)


def _single_class_holdout() -> pd.DataFrame:
    labels = np.where(np.arange(N_DAYS) < N_DAYS // 2, np.arange(N_DAYS) % 2, 0)
    return _examples(labels)


def test_a_single_class_holdout_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="class") as info:
        time_split(_single_class_holdout(), ["f0"], holdout_fraction=0.25, embargo_days=EMBARGO)
    assert "label" in str(info.value)


def test_an_empty_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="0 training"):
        time_split(_examples(), ["f0"], holdout_fraction=0.25, embargo_days=N_DAYS)
