from __future__ import annotations

import numpy as np

from trademaster.portfolio.problems import (
    COVARIANCE_KINDS,
    MAX_HOLDINGS,
    MIN_HOLDINGS,
    validation_problems,
)

SUITE = validation_problems(240, seed=7)


def test_the_suite_is_the_same_for_the_same_seed() -> None:
    again = validation_problems(240, seed=7)

    for first, second in zip(SUITE, again, strict=True):
        np.testing.assert_array_equal(first.covariance, second.covariance)
        assert first.max_weight == second.max_weight


def test_the_suite_covers_sizes_kinds_and_caps() -> None:
    sizes = [p.n for p in SUITE]

    assert min(sizes) == MIN_HOLDINGS
    assert max(sizes) == MAX_HOLDINGS
    assert {p.kind for p in SUITE} == set(COVARIANCE_KINDS)
    assert any(p.max_weight == 1.0 for p in SUITE)
    assert any(p.max_weight == 1.0 / p.n for p in SUITE)
    assert any(1.0 / p.n < p.max_weight < 2.0 / p.n for p in SUITE)
    assert all(p.n * p.max_weight >= 1.0 - 1e-12 for p in SUITE)


def test_covariances_are_symmetric_psd_and_many_are_singular() -> None:
    condition = []
    for problem in SUITE:
        eigenvalues = np.linalg.eigvalsh(problem.covariance)
        np.testing.assert_allclose(problem.covariance, problem.covariance.T)
        assert eigenvalues[0] > -1e-12 * eigenvalues[-1]
        condition.append(eigenvalues[0] / eigenvalues[-1])

    assert sum(c < 1e-8 for c in condition) > len(SUITE) // 5
