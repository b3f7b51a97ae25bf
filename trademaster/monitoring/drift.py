"""Current data against a reference profile: one state per feature, one summary per version.

The methods and thresholds follow Evidently's data-drift preset, so its documentation
explains the numbers we publish:

- numeric, reference of at most ``KS_MAX_REFERENCE`` rows: two-sample Kolmogorov-Smirnov,
  drift when the p-value is below ``ks_alpha`` after the Holm correction below. The
  profile's sketch is then the exact reference sample. The statistic is the largest ECDF
  difference over the pooled points; the p-value is Smirnov's two-sided distribution as
  ``scipy.stats.kstwo`` with n = round(n*m/(n+m)), which is what ``ks_2samp`` computes with
  ``method="asymp"``. We never use its exact method: it is O(n*m) and the served sample can
  hold every request of a day.
- numeric, larger reference: Wasserstein-1 distance between the current values and the
  sketch (which stands for the reference), divided by the reference std (Evidently's rule
  for a constant reference: divide by ``max(std, 0.001)``); drift above 0.1.
- categorical: Jensen-Shannon *distance* (the square root of the divergence), natural log,
  as ``scipy.spatial.distance.jensenshannon`` by default; drift above 0.1.

The KS p-values of one comparison (every feature of one model version) are corrected for
testing many features at once with Holm-Bonferroni. Wasserstein and Jensen-Shannon are
effect sizes compared with a fixed threshold, not tests, so they are not corrected.

We add what Evidently lacks, a minimum current sample (``min_samples``): below it a feature
is ``insufficient_data``. The distances are biased upwards on small samples; drawing the
current sample from the reference distribution itself, normed Wasserstein exceeds 0.1 in
about 65% of draws of 100 rows, 30% of 200, 1-6% of 500 and under 1% of 1,000 (normal,
exponential and log-normal references); JS on 10 categories in 55%, 6% and 0% of draws of
100, 200 and 500 rows. 500 is the compromise: small enough that the daily offline snapshot
(one row per user) is checked at all, large enough that noise rarely reads as drift.

Calibration, which Evidently lacks too: market-driven features move together across users
and symbols (a rally lifts every win rate at once), so a single day's cross-section sits
further from a pooled 90-day reference than sampling noise alone explains, and 0.1 flags
quiet days. A profile may carry, per feature, the largest distance its own recent quiet
days showed against it (``reference.calibrated``); a distance is drift only above both the
default threshold and ``calibration_margin`` (1.5) times that. Without calibration the
Evidently defaults apply unchanged.

PSI (population stability index) is reported beside every checked feature for the
dashboards, over the profile's decile bins (categories for categorical features); shares
are floored at 1e-4 before the logarithm so an empty bin gives a large, finite value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from trademaster.monitoring.profile import (
    SKETCH_SIZE,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    category_values,
    finite_values,
    psi_bin_counts,
)

KS_MAX_REFERENCE = 1_000
PSI_FLOOR = 1e-4
# Evidently's norm for a constant reference feature (any change then reads as drift).
MIN_STD = 1e-3

Kind = Literal["numeric", "categorical"]
Method = Literal["ks", "wasserstein", "jensenshannon"]


@dataclass(frozen=True)
class DriftSettings:
    ks_alpha: float = 0.05
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    dataset_drift_share: float = 0.5
    min_samples: int = 500
    ks_max_reference: int = KS_MAX_REFERENCE
    # A distance is drift only above max(threshold, margin x the profile's calibration).
    calibration_margin: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.ks_alpha < 1:
            raise ValueError(f"ks_alpha must be in (0, 1), got {self.ks_alpha}")
        if self.ks_max_reference > SKETCH_SIZE:
            # Above SKETCH_SIZE the sketch is quantiles, not the sample a KS test needs.
            raise ValueError(f"ks_max_reference must be at most {SKETCH_SIZE}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
        if self.calibration_margin < 1:
            raise ValueError(f"calibration_margin must be >= 1, got {self.calibration_margin}")


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: Kind
    method: Method
    state: str  # one of metrics.DRIFT_STATES
    score: float | None  # KS: the raw p-value; otherwise the distance
    threshold: float  # KS: the Holm-corrected alpha this p-value was compared with
    psi: float | None
    samples: int
    reference_samples: int


@dataclass(frozen=True)
class DriftReport:
    feature_service: str
    features: tuple[FeatureDrift, ...]
    drift_share: float | None  # drifted / checked; None when nothing could be checked
    dataset_drift: bool  # informational: drift_share >= settings.dataset_drift_share

    @property
    def drifted_features(self) -> tuple[FeatureDrift, ...]:
        return tuple(feature for feature in self.features if feature.state == "drift")


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """sup |F_ref - F_cur| over the pooled points (both arrays sorted)."""
    pooled = np.concatenate([reference, current])
    cdf_ref = np.searchsorted(reference, pooled, side="right") / reference.size
    cdf_cur = np.searchsorted(current, pooled, side="right") / current.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    effective_n = max(1.0, np.round(n * m / (n + m)))  # two single values: n = 0.5
    return float(np.clip(stats.kstwo.sf(statistic, effective_n), 0.0, 1.0))


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """W1 in its CDF form, integral |F_ref - F_cur| dx, exact for two samples (sorted)."""
    pooled = np.sort(np.concatenate([reference, current]))
    widths = np.diff(pooled)
    cdf_ref = np.searchsorted(reference, pooled[:-1], side="right") / reference.size
    cdf_cur = np.searchsorted(current, pooled[:-1], side="right") / current.size
    return float(np.sum(np.abs(cdf_ref - cdf_cur) * widths))


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """JS distance (natural log) between two distributions given as counts or shares."""
    p = p / p.sum()
    q = q / q.sum()
    mixture = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / mixture[mask])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    ref = np.maximum(reference_shares, PSI_FLOOR)
    cur = np.maximum(current_shares, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _unchecked(
    name: str, kind: Kind, method: Method, threshold: float, samples: int, reference: int
) -> FeatureDrift:
    return FeatureDrift(
        feature=name,
        kind=kind,
        method=method,
        state="insufficient_data",
        score=None,
        threshold=threshold,
        psi=None,
        samples=samples,
        reference_samples=reference,
    )


def distance_threshold(default: float, calibrated: float | None, settings: DriftSettings) -> float:
    """The default distance threshold, raised to ``calibration_margin`` times the largest
    distance a quiet day of the reference period showed (None: not calibrated)."""
    if calibrated is None:
        return default
    return max(default, settings.calibration_margin * calibrated)


def _numeric(
    name: str,
    reference: NumericProfile,
    current: pd.Series,
    settings: DriftSettings,
    calibrated: float | None = None,
) -> FeatureDrift:
    values = finite_values(current, name)
    small = reference.count <= settings.ks_max_reference
    method: Method = "ks" if small else "wasserstein"
    threshold = (
        settings.ks_alpha
        if small
        else distance_threshold(settings.wasserstein_threshold, calibrated, settings)
    )
    base = _unchecked(name, "numeric", method, threshold, values.size, reference.count)
    if values.size < settings.min_samples:
        return base
    sketch = np.asarray(reference.sketch, dtype=float)
    if small:
        score = ks_pvalue(ks_statistic(sketch, values), sketch.size, values.size)
        drifted = score < threshold  # provisional: Holm decides in compare()
    else:
        score = wasserstein(sketch, values) / max(reference.std, MIN_STD)
        drifted = score > threshold
    shares = psi_bin_counts(values, reference.psi_edges) / values.size
    return replace(
        base,
        state="drift" if drifted else "no_drift",
        score=score,
        psi=psi(np.asarray(reference.psi_shares), shares),
    )


def _categorical(
    name: str,
    reference: CategoricalProfile,
    current: pd.Series,
    settings: DriftSettings,
    calibrated: float | None = None,
) -> FeatureDrift:
    values = category_values(current)
    threshold = distance_threshold(settings.jensenshannon_threshold, calibrated, settings)
    base = _unchecked(name, "categorical", "jensenshannon", threshold, values.size, reference.count)
    if values.size < settings.min_samples:
        return base
    counts = values.value_counts()
    categories = sorted(set(reference.frequencies) | set(counts.index))
    ref = np.array([reference.frequencies.get(c, 0) for c in categories], dtype=float)
    cur = np.array([counts.get(c, 0) for c in categories], dtype=float)
    score = jensenshannon(ref, cur)
    return replace(
        base,
        state="drift" if score > threshold else "no_drift",
        score=score,
        psi=psi(ref / ref.sum(), cur / cur.sum()),
    )


def holm(features: Sequence[FeatureDrift], alpha: float) -> list[FeatureDrift]:
    """Holm's step-down over the checked KS features, the rest unchanged.

    The i-th smallest of m p-values is compared with alpha / (m - i + 1) until one is not
    below it; that one and every larger p-value are kept, and are reported against the
    threshold where the procedure stopped, so ``state == "drift"`` iff ``score < threshold``
    holds for every feature."""
    tested = sorted(
        (f.score, i) for i, f in enumerate(features) if f.method == "ks" and f.score is not None
    )
    out = list(features)
    stopped: float | None = None
    for rank, (score, index) in enumerate(tested):
        feature = features[index]
        threshold = stopped if stopped is not None else alpha / (len(tested) - rank)
        rejected = stopped is None and score < threshold
        if not rejected:
            stopped = threshold
        out[index] = replace(
            feature, threshold=threshold, state="drift" if rejected else "no_drift"
        )
    return out


def compare(
    profile: FeatureProfile, current: pd.DataFrame, settings: DriftSettings = DriftSettings()
) -> DriftReport:
    """Every profiled feature of ``current`` against ``profile``; extra columns are ignored.

    Nulls and non-finite values are dropped before comparing (``samples`` counts the rest)."""
    if profile.min_samples is not None:
        settings = replace(settings, min_samples=profile.min_samples)
    missing = [name for name in profile.features if name not in current.columns]
    if missing:
        raise ValueError(
            f"{profile.feature_service}: current data lacks profiled features {missing}"
        )
    checks = [
        _numeric(name, column, current[name], settings, profile.calibration.get(name))
        if isinstance(column, NumericProfile)
        else _categorical(name, column, current[name], settings, profile.calibration.get(name))
        for name, column in profile.features.items()
    ]
    features = tuple(holm(checks, settings.ks_alpha))
    checked = [f for f in features if f.state != "insufficient_data"]
    share = sum(f.state == "drift" for f in checked) / len(checked) if checked else None
    return DriftReport(
        feature_service=profile.feature_service,
        features=features,
        drift_share=share,
        dataset_drift=share is not None and share >= settings.dataset_drift_share,
    )
