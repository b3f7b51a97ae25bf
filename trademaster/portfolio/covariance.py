"""Covariance of holdings' returns for the optimizer, shrunk so that it is well conditioned.

With a few weeks of daily returns for dozens of holdings the sample covariance is singular or
close to it, and mean-variance weights built on it chase its noise. Ledoit and Wolf (2004, "A
well-conditioned estimator for large-dimensional covariance matrices") shrink it towards a
multiple of the identity with the weight that minimises the expected Frobenius loss, estimated
from the same data; the result is positive definite whenever any holding's returns vary.
"""

from __future__ import annotations

import numpy as np


def _centered(returns: np.ndarray) -> np.ndarray:
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"returns must be a (observations, holdings) matrix, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 observations per holding, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("returns contain NaN or infinity (fill or drop missing days first)")
    return x - x.mean(axis=0)


def ledoit_wolf_shrinkage(returns: np.ndarray) -> float:
    """The Ledoit-Wolf weight in [0, 1] of the scaled identity for a (T, n) returns matrix."""
    x = _centered(returns)
    t, n = x.shape
    sample = x.T @ x / t
    scale = np.trace(sample) / n
    # d^2: how far the sample covariance is from the target.
    distance = float(np.sum((sample - scale * np.eye(n)) ** 2)) / n
    if distance == 0.0:
        return 0.0
    # b^2: the sample covariance's own estimation error, sum_t |x_t x_t' - S|^2 / T^2.
    fourth = float(np.sum(np.sum(x * x, axis=1) ** 2))
    error = (fourth / t - float(np.sum(sample * sample))) / (n * t)
    return min(error, distance) / distance


def covariance_from_returns(returns: np.ndarray, shrinkage: float | None = None) -> np.ndarray:
    """Shrunk covariance ``(1 - d) S + d (trace(S) / n) I`` of a (T, n) returns matrix.

    ``S`` is the maximum-likelihood sample covariance (divides by T, as Ledoit-Wolf do); ``d``
    is ``ledoit_wolf_shrinkage(returns)`` unless given. Same units as the returns (daily log
    returns give a daily covariance), so pair it with expected returns over the same period.
    """
    x = _centered(returns)
    t, n = x.shape
    sample = x.T @ x / t
    weight = ledoit_wolf_shrinkage(returns) if shrinkage is None else float(shrinkage)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    target = np.trace(sample) / n * np.eye(n)
    return (1.0 - weight) * sample + weight * target
