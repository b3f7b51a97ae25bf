"""Training and validation of behavioral-pattern-classifier.

Examples are user-behaviour snapshots (from Feast's offline store, point in time) of active
users, labelled with the archetype the generator gave the user. Users, not rows, are split:
the held-out users were never seen in training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.settings import PipelineSettings
from trademaster.training import registry
from trademaster.training.behavior_model import fit_behavior_model, predict_proba
from trademaster.training.evaluation import signed_log1p
from trademaster.training.promotion import champion_metric
from trademaster.training.torch_fit import TrainingConfig
from trademaster.warehouse import schema
from trademaster.warehouse.build import read_table
from trademaster.warehouse.users import ARCHETYPES

log = logging.getLogger(__name__)

MODEL_NAME = "behavioral-pattern-classifier"
FEATURE_SERVICE = "behavior_model_v1"
CLASS_LABELS = tuple(archetype.name for archetype in ARCHETYPES)
HOLDOUT_USER_FRACTION = 0.25
SNAPSHOT_EVERY_BUSINESS_DAYS = 15
MIN_TRADES_IN_WINDOW = 3
# macro-F1 margins of the promotion rule.
MIN_LIFT_OVER_MAJORITY = 0.10
CHAMPION_TOLERANCE = 0.01


def behavior_examples(settings: PipelineSettings) -> tuple[pd.DataFrame, list[str]]:
    """Snapshots of active users every few weeks, features joined point in time by Feast."""
    store = open_feature_store(settings.feature_store_root.resolve(), settings.online_store_redis)
    users = read_table(settings, schema.users)
    trades = read_table(settings, schema.trades)
    days = pd.bdate_range(trades["ts"].min().normalize(), trades["ts"].max().normalize())
    snapshot_times = days[SNAPSHOT_EVERY_BUSINESS_DAYS::SNAPSHOT_EVERY_BUSINESS_DAYS]
    entity_df = pd.DataFrame(
        [(user, ts) for user in users["user_id"] for ts in snapshot_times],
        columns=["user_id", "event_timestamp"],
    )
    entity_df["event_timestamp"] = entity_df["event_timestamp"].dt.tz_localize("UTC")
    service = store.get_feature_service(FEATURE_SERVICE)
    names = feature_service_columns(service)
    frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    frame = frame.dropna(subset=names)
    frame = frame[frame["trades_in_window"] >= MIN_TRADES_IN_WINDOW]
    labels = users.set_index("user_id")["archetype"]
    frame = frame.assign(label=frame["user_id"].map(labels).map(CLASS_LABELS.index))
    # Feast returns rows in no fixed order; sort so the user split is reproducible.
    frame = frame.sort_values(["user_id", "event_timestamp"])
    log.info("%d active snapshots of %d users", len(frame), frame["user_id"].nunique())
    return frame.reset_index(drop=True), names


def split_users(
    frame: pd.DataFrame, holdout_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows grouped by user in a shuffled user order, and held-out users' rows."""
    users = frame["user_id"].unique()
    order = np.random.default_rng(seed).permutation(users)
    n_holdout = max(1, int(len(order) * holdout_fraction))
    holdout_users = set(order[:n_holdout].tolist())
    rank = {user: index for index, user in enumerate(order)}
    train = frame[~frame["user_id"].isin(holdout_users)]
    train = train.assign(_rank=train["user_id"].map(rank)).sort_values(["_rank", "event_timestamp"])
    holdout = frame[frame["user_id"].isin(holdout_users)]
    return train.drop(columns="_rank").reset_index(drop=True), holdout.reset_index(drop=True)


def classification_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "macro_f1": float(
            f1_score(labels, predicted, average="macro", labels=range(len(CLASS_LABELS)))
        ),
        "accuracy": float(accuracy_score(labels, predicted)),
    }


def logistic_predictions(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray
) -> np.ndarray:
    model = make_pipeline(
        FunctionTransformer(signed_log1p), StandardScaler(), LogisticRegression(max_iter=3000)
    )
    model.fit(train_x, train_y)
    return np.asarray(model.predict(test_x))


def train_and_register(settings: PipelineSettings) -> dict[str, Any]:
    frame, names = behavior_examples(settings)
    train, holdout = split_users(frame, HOLDOUT_USER_FRACTION, settings.seed)
    train_x = train[names].to_numpy(np.float32)
    train_y = train["label"].to_numpy(np.int64)
    holdout_x = holdout[names].to_numpy(np.float32)
    holdout_y = holdout["label"].to_numpy(np.int64)

    config = TrainingConfig(epochs=settings.train_epochs, seed=settings.seed)
    model, fit_info = fit_behavior_model(train_x, train_y, len(CLASS_LABELS), config)
    majority = int(np.bincount(train_y, minlength=len(CLASS_LABELS)).argmax())

    def evaluate(candidate: Any) -> dict[str, float]:
        return classification_metrics(holdout_y, predict_proba(candidate, holdout_x).argmax(1))

    metrics = {
        **{f"holdout_{k}": v for k, v in evaluate(model).items()},
        **{
            f"majority_{k}": v
            for k, v in classification_metrics(holdout_y, np.full_like(holdout_y, majority)).items()
        },
        **{
            f"logistic_{k}": v
            for k, v in classification_metrics(
                holdout_y, logistic_predictions(train_x, train_y, holdout_x)
            ).items()
        },
        **champion_metric(settings, MODEL_NAME, evaluate),
        **fit_info,
        "train_rows": float(len(train_y)),
        "holdout_rows": float(len(holdout_y)),
        "holdout_users": float(holdout["user_id"].nunique()),
    }
    log.info(
        "held-out users macro-F1: model %.4f, logistic %.4f, majority %.4f",
        metrics["holdout_macro_f1"],
        metrics["logistic_macro_f1"],
        metrics["majority_macro_f1"],
    )
    version = registry.log_torch_model(
        settings,
        MODEL_NAME,
        model,
        example=holdout_x[:32],
        params={
            "feature_service": FEATURE_SERVICE,
            "features": ",".join(names),
            "classes": ",".join(CLASS_LABELS),
            "holdout_user_fraction": HOLDOUT_USER_FRACTION,
            "epochs": config.epochs,
            "seed": settings.seed,
        },
        metrics=metrics,
        tags={
            "feature_service": FEATURE_SERVICE,
            "feature_names": ",".join(names),
            "class_labels": ",".join(CLASS_LABELS),
        },
    )
    return {
        "model_name": MODEL_NAME,
        "version": version.version,
        "run_id": version.run_id,
        "metrics": metrics,
    }


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    """Beat the majority class by a clear margin and logistic regression outright, and do not
    trail the champion (on the same held-out users) by more than the tolerance."""
    f1 = metrics["holdout_macro_f1"]
    if f1 < metrics["majority_macro_f1"] + MIN_LIFT_OVER_MAJORITY:
        return False, (
            f"macro-F1 {f1:.4f} does not beat the majority class "
            f"({metrics['majority_macro_f1']:.4f}) by {MIN_LIFT_OVER_MAJORITY}"
        )
    if f1 <= metrics["logistic_macro_f1"]:
        return (
            False,
            f"macro-F1 {f1:.4f} does not beat logistic regression "
            f"({metrics['logistic_macro_f1']:.4f})",
        )
    champion = metrics.get("champion_macro_f1")
    if champion is not None and f1 < champion - CHAMPION_TOLERANCE:
        return False, f"macro-F1 {f1:.4f} trails the champion ({champion:.4f})"
    return True, (
        f"macro-F1 {f1:.4f} vs majority {metrics['majority_macro_f1']:.4f}, "
        f"logistic {metrics['logistic_macro_f1']:.4f}"
        + (f", champion {champion:.4f}" if champion is not None else ", no champion yet")
    )
