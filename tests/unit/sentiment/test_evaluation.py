from __future__ import annotations

import numpy as np
import pytest

from trademaster.sentiment.evaluation import (
    bag_of_words_baseline,
    classification_metrics,
    majority_baseline,
)


def test_macro_f1_weighs_every_class_the_same() -> None:
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2])

    always_zero = classification_metrics(labels, np.zeros(10, dtype=np.int64))

    assert always_zero["accuracy"] == pytest.approx(0.8)
    # F1 of class 0 is 2*0.8/1.8; the two other classes score 0.
    assert always_zero["macro_f1"] == pytest.approx((2 * 0.8 / 1.8) / 3)
    assert classification_metrics(labels, labels) == {"macro_f1": 1.0, "accuracy": 1.0}


def test_majority_baseline_predicts_the_most_frequent_training_class() -> None:
    predicted = majority_baseline(np.array([2, 1, 2, 0, 2]), 4)

    assert predicted.tolist() == [2, 2, 2, 2]


def test_bag_of_words_learns_words_but_not_unseen_ones() -> None:
    train = ["shares jump", "profit jumps", "shares fall", "profit falls", "jump", "fall"] * 5
    labels = np.array([2, 2, 0, 0, 2, 0] * 5)

    predicted = bag_of_words_baseline(train, labels, ["sales jump", "sales fall", "sales soar"])

    assert predicted[:2].tolist() == [2, 0]
    assert predicted.dtype == np.int64
