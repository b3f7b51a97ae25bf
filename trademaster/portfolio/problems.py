"""Random portfolio problems for validating the optimizer against a reference solver.

Covariances cover what noisy estimates look like: factor models, sample covariances from fewer
observations than holdings (singular), near-duplicate holdings, very high correlation, and
rank-deficient matrices with a vanishing diagonal (near-singular). Caps cover "no cap",
exactly 1/n (only equal weights are feasible), tight and loose; risk aversion spans 0.5-50.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_HOLDINGS, MAX_HOLDINGS = 2, 60
COVARIANCE_KINDS = ("factor", "sample", "duplicates", "correlated", "near_singular")


@dataclass(frozen=True)
class PortfolioProblem:
    expected_returns: np.ndarray
    covariance: np.ndarray
    max_weight: float
    risk_aversion: float
    kind: str

    @property
    def n(self) -> int:
        return int(self.expected_returns.size)


def _volatilities(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.08, 0.6, n)


def _factor(rng: np.random.Generator, n: int) -> np.ndarray:
    loadings = rng.normal(0.0, 0.2, (n, int(rng.integers(1, 6))))
    return loadings @ loadings.T + np.diag(rng.uniform(0.05, 0.4, n) ** 2)


def _sample(rng: np.random.Generator, n: int) -> np.ndarray:
    observations = int(rng.integers(max(2, n // 2), 3 * n + 3))
    returns = rng.normal(0.0, 1.0, (observations, n)) * _volatilities(rng, n)
    return np.cov(returns, rowvar=False).reshape(n, n)


def _duplicates(rng: np.random.Generator, n: int) -> np.ndarray:
    covariance = _factor(rng, n)
    copies = rng.integers(0, n, n // 3 + 1)
    for target, source in enumerate(copies):
        covariance[target, :] = covariance[source, :]
        covariance[:, target] = covariance[:, source]
    return covariance


def _correlated(rng: np.random.Generator, n: int) -> np.ndarray:
    rho = rng.uniform(0.95, 0.999)
    correlation = np.full((n, n), rho)
    np.fill_diagonal(correlation, 1.0)
    vols = _volatilities(rng, n)
    return correlation * np.outer(vols, vols)


def _near_singular(rng: np.random.Generator, n: int) -> np.ndarray:
    rank = int(rng.integers(1, max(2, n // 2)))
    loadings = rng.normal(0.0, 0.25, (n, rank))
    return loadings @ loadings.T + 1e-10 * np.eye(n)


_COVARIANCES = {
    "factor": _factor,
    "sample": _sample,
    "duplicates": _duplicates,
    "correlated": _correlated,
    "near_singular": _near_singular,
}


def _expected_returns(rng: np.random.Generator, n: int) -> np.ndarray:
    style = rng.integers(0, 4)
    if style == 0:
        return np.full(n, rng.normal(0.05, 0.02))  # ties: only the covariance decides
    if style == 1:
        return -np.abs(rng.normal(0.03, 0.05, n))  # every holding expected to lose
    return rng.normal(0.06, 0.10, n)


def _max_weight(rng: np.random.Generator, n: int) -> float:
    style = rng.integers(0, 4)
    if style == 0:
        return 1.0
    if style == 1:
        return 1.0 / n
    if style == 2:
        return float(min(1.0, rng.uniform(1.0, 2.0) / n))
    return float(rng.uniform(1.0 / n, 1.0))


def random_problem(
    rng: np.random.Generator, n: int | None = None, kind: str | None = None
) -> PortfolioProblem:
    n = int(rng.integers(MIN_HOLDINGS, MAX_HOLDINGS + 1)) if n is None else n
    kind = str(rng.choice(COVARIANCE_KINDS)) if kind is None else kind
    return PortfolioProblem(
        expected_returns=_expected_returns(rng, n),
        covariance=_COVARIANCES[kind](rng, n),
        max_weight=_max_weight(rng, n),
        risk_aversion=float(np.exp(rng.uniform(np.log(0.5), np.log(50.0)))),
        kind=kind,
    )


def validation_problems(count: int, seed: int) -> list[PortfolioProblem]:
    """``count`` problems, the same for the same seed (so versions are compared like for like)."""
    rng = np.random.default_rng(seed)
    return [random_problem(rng) for _ in range(count)]
