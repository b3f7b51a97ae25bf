"""Split conformal prediction intervals, normalised by each window's realised volatility.

Scores are ``|actual - point| / volatility`` on a calibration slice the model never trained on;
the interval is ``point +- q * volatility`` with ``q`` the finite-sample conformal quantile.
Under exchangeability of calibration and test scores, coverage is at least ``coverage`` (and
below ``coverage + 1 / (n + 1)``); across time it holds only as far as the score distribution
is stable, which is why test coverage is measured, not assumed.
"""

from __future__ import annotations

import math

import numpy as np

from trademaster.contract.parameters import INTERVAL_LEVEL

INTERVAL_COVERAGE = INTERVAL_LEVEL


def normalised_scores(actual: np.ndarray, point: np.ndarray, volatility: np.ndarray) -> np.ndarray:
    """Absolute residuals in units of the window's volatility."""
    return np.abs(np.asarray(actual, np.float64) - point) / np.asarray(volatility, np.float64)


def conformal_quantile(scores: np.ndarray, coverage: float = INTERVAL_COVERAGE) -> float:
    """The ``ceil((n + 1) * coverage)``-th smallest score (``inf`` if ``n`` is too small)."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    values = np.sort(np.asarray(scores, np.float64))
    if np.any(~np.isfinite(values)):
        raise ValueError("conformal scores must be finite")
    rank = math.ceil((len(values) + 1) * coverage)
    if rank > len(values):
        return math.inf
    return float(values[rank - 1])


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of ``actual`` inside ``[lower, upper]``."""
    actual = np.asarray(actual, np.float64)
    if not len(actual):
        return math.nan
    return float(np.mean((actual >= lower) & (actual <= upper)))
