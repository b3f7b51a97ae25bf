"""Synthetic classification problems shared by the training tests."""

from __future__ import annotations

import numpy as np

N_TRAIN, N_HOLDOUT = 3_000, 2_000


def interaction_problem(
    seed: int = 0, n_rows: int = N_TRAIN + N_HOLDOUT
) -> tuple[np.ndarray, np.ndarray]:
    """Label = x0 * x1 > 0 (the signs agree), 5% of labels flipped, two noise features.

    No linear rule separates it; a small network does. Rows ``N_TRAIN:`` are the holdout.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, 4)).astype(np.float32)
    x[:, 2] *= 1_000  # a large-scale feature, as notional sizes are
    y = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    flip = rng.random(len(y)) < 0.05
    y[flip] = 1 - y[flip]
    return x, y
