"""Metrics for the sentiment classifier and the baselines it must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Macro-F1 (every class counts the same, whatever its frequency) and accuracy."""
    return {
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
    }


def majority_baseline(train_labels: np.ndarray, n_rows: int) -> np.ndarray:
    """Predicts the most frequent training class for every row."""
    return np.full(n_rows, int(np.bincount(train_labels).argmax()), dtype=np.int64)


def bag_of_words_baseline(
    train_texts: Sequence[str], train_labels: np.ndarray, test_texts: Sequence[str]
) -> np.ndarray:
    """TF-IDF of words and word pairs, then logistic regression (the stronger of the usual
    bag-of-words variants on these headlines)."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000),
    )
    model.fit(list(train_texts), train_labels)
    return np.asarray(model.predict(list(test_texts)), dtype=np.int64)
