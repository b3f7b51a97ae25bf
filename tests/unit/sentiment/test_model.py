from __future__ import annotations

import numpy as np
import torch

from trademaster.sentiment.model import (
    CLASS_LABELS,
    HeadConfig,
    ScoredHead,
    SentimentHead,
    fit_head,
    predict_proba,
    sentiment_score,
)

DIM = 16


def _clusters(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian clusters on the unit sphere, one per class, like embeddings; the
    centres are the same for every seed."""
    centres = np.random.default_rng(99).normal(size=(len(CLASS_LABELS), DIM))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_LABELS), size=n)
    x = centres[labels] + 0.3 * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels.astype(np.int64)


def test_class_order_is_negative_neutral_positive() -> None:
    assert CLASS_LABELS == ("negative", "neutral", "positive")


def test_score_is_p_positive_minus_p_negative_within_minus_one_and_one() -> None:
    torch.manual_seed(0)
    head = SentimentHead(DIM).eval()
    x = torch.randn(200, DIM) * 5

    with torch.no_grad():
        probabilities, score = ScoredHead(head)(x)

    p = probabilities.numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(score.numpy()[:, 0], p[:, 2] - p[:, 0], atol=1e-7)
    np.testing.assert_allclose(sentiment_score(p), p[:, 2] - p[:, 0])
    assert score.shape == (200, 1)
    assert (score.abs() <= 1).all()
    assert sentiment_score(np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])).tolist() == [
        -1.0,
        1.0,
        0.0,
    ]


def test_fit_head_separates_classes_it_can_separate() -> None:
    train_x, train_y = _clusters(600, seed=1)
    test_x, test_y = _clusters(300, seed=2)

    head, info = fit_head(train_x, train_y, HeadConfig(hidden=16, epochs=60, batch_size=64))

    accuracy = (predict_proba(head, test_x).argmax(axis=1) == test_y).mean()
    assert accuracy > 0.95
    assert info["train_final_batch_loss"] < 0.5
    assert not head.training


def test_fit_head_is_deterministic_for_a_seed() -> None:
    x, y = _clusters(300)

    first, _ = fit_head(x, y, HeadConfig(hidden=8, epochs=2, seed=3))
    again, _ = fit_head(x, y, HeadConfig(hidden=8, epochs=2, seed=3))

    np.testing.assert_array_equal(predict_proba(first, x), predict_proba(again, x))
