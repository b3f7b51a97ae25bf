"""Classification metrics and the baselines every model must beat."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    """``values`` with keys ``<prefix>_<key>`` (e.g. a baseline's or the champion's metrics)."""
    return {f"{prefix}_{key}": value for key, value in values.items()}


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return {
        "auc": float(roc_auc_score(labels, clipped)),
        "log_loss": float(log_loss(labels, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, clipped)),
    }


def row_log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each row's log loss (their mean is ``binary_metrics``' log loss)."""
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return np.asarray(-(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


def prevalence_baseline(train_labels: np.ndarray, n_rows: int) -> np.ndarray:
    """Predicts the training base rate for everyone."""
    return np.full(n_rows, float(np.mean(train_labels)))


def logistic_baseline(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Logistic regression on signed-log-scaled, standardised features."""
    model = make_pipeline(
        FunctionTransformer(signed_log1p), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    model.fit(train_x, train_y)
    return np.asarray(model.predict_proba(test_x)[:, 1])


def signed_log1p(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))
