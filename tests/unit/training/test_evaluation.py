from __future__ import annotations

import numpy as np
import pytest

from trademaster.training.evaluation import (
    binary_metrics,
    logistic_baseline,
    prevalence_baseline,
    signed_log1p,
)

LABELS = np.array([0, 1, 0, 1, 1, 0, 0, 0])


def test_perfect_predictions() -> None:
    metrics = binary_metrics(LABELS, LABELS.astype(float))

    assert metrics["auc"] == 1.0
    assert metrics["log_loss"] < 1e-5
    assert metrics["brier"] < 1e-10


def test_inverted_predictions_have_auc_zero() -> None:
    assert binary_metrics(LABELS, 1.0 - LABELS)["auc"] == 0.0


def test_prevalence_baseline_is_the_training_rate_and_has_auc_one_half() -> None:
    train_labels = np.array([1, 0, 0, 0])

    predictions = prevalence_baseline(train_labels, len(LABELS))

    assert predictions.tolist() == [0.25] * len(LABELS)
    metrics = binary_metrics(LABELS, predictions)
    assert metrics["auc"] == 0.5
    rate = LABELS.mean()
    assert metrics["brier"] == pytest.approx(rate * 0.75**2 + (1 - rate) * 0.25**2)


def test_signed_log1p_is_odd_and_compresses() -> None:
    values = np.array([-(np.e - 1), 0.0, np.e - 1, 1e6])

    np.testing.assert_allclose(signed_log1p(values), [-1.0, 0.0, 1.0, np.log1p(1e6)])


def test_logistic_baseline_learns_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 3)) * [1.0, 100.0, 1.0]
    y = (x[:, 0] + x[:, 1] / 100 > 0).astype(float)

    predictions = logistic_baseline(x[:1_500], y[:1_500], x[1_500:])

    assert predictions.shape == (500,)
    assert ((predictions > 0) & (predictions < 1)).all()
    assert binary_metrics(y[1_500:], predictions)["auc"] > 0.95
