"""Which training rows a version's reference profile describes.

Drift is judged against the world as it was when the version was trained, not against
every row since the warehouse began: the training examples of the last ``REFERENCE_DAYS``
before the newest one. A population rule (a minimum per view column, e.g. active users
only) is kept with the profile, so the daily check compares the same kind of rows the
model was trained on.

``calibrated`` then measures how far the reference period's own days stray from it (the
daily check's distance for each of them): a quiet day must not read as drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import pandas as pd

from trademaster.monitoring.drift import compare
from trademaster.monitoring.profile import FeatureProfile, build_profile

REFERENCE_DAYS = 90
TIME_COLUMN = "event_timestamp"


def recent_rows(frame: pd.DataFrame, days: int = REFERENCE_DAYS) -> pd.DataFrame:
    """The rows within ``days`` of the newest ``event_timestamp``."""
    stamps = pd.to_datetime(frame[TIME_COLUMN], utc=True)
    return frame[stamps > stamps.max() - pd.Timedelta(days=days)]


def training_reference(
    frame: pd.DataFrame,
    features: Sequence[str],
    feature_service: str,
    population: Mapping[str, float] | None = None,
) -> FeatureProfile:
    """The reference profile of a version trained on ``frame`` (its recent rows)."""
    return build_profile(
        recent_rows(frame)[list(features)], feature_service, population=dict(population or {})
    )


def calibrated(profile: FeatureProfile, quiet_days: Iterable[pd.DataFrame]) -> FeatureProfile:
    """``profile`` with, per distance-checked feature, the largest distance any of
    ``quiet_days`` (frames like the daily check's, from the reference period) has from it.
    Days too small to check contribute nothing; KS features (small references) need none."""
    largest: dict[str, float] = {}
    plain = replace(profile, calibration={})
    for day in quiet_days:
        for feature in compare(plain, day.reindex(columns=list(profile.features))).features:
            if feature.method != "ks" and feature.score is not None:
                largest[feature.feature] = max(largest.get(feature.feature, 0.0), feature.score)
    return replace(profile, calibration=largest)
