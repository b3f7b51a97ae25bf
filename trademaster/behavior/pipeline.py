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

from trademaster import behavior, registry
from trademaster.behavior.model import fit_behavior_model, predict_proba
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import Parameter
from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.monitoring.drift_check import calibrated_offline
from trademaster.monitoring.profile import PROFILE_ARTIFACT
from trademaster.monitoring.reference import training_reference
from trademaster.settings import PipelineSettings
from trademaster.training import fingerprint, gates
from trademaster.training.evaluation import signed_log1p
from trademaster.training.promotion import candidate_report, champion_model
from trademaster.training.sampling import sample_stride
from trademaster.training.torch_fit import TrainingConfig
from trademaster.warehouse import schema
from trademaster.warehouse.aggregates import trade_day_span
from trademaster.warehouse.read import read_table, warehouse_connection
from trademaster.warehouse.users import ARCHETYPES, archetype_at

log = logging.getLogger(__name__)

MODEL_NAME = ModelName.BEHAVIOR.value
FEATURE_SERVICE = "behavior_model_v1"
CLASS_LABELS = tuple(archetype.name for archetype in ARCHETYPES)
HOLDOUT_USER_FRACTION = 0.25
SNAPSHOT_EVERY_BUSINESS_DAYS = 15
MIN_TRADES_IN_WINDOW = 3
MACRO_F1 = gates.weighted_macro_f1(len(CLASS_LABELS))
# The promotion rule, on paired intervals over held-out users: beat the majority class by
# 0.10 macro-F1 and logistic regression outright (lower bound above 0), and trail the
# champion by at most 0.01.
GATE_RULES = (
    gates.GateRule("vs_majority_macro_f1", "macro-F1 vs the majority class", "beats", 0.10),
    gates.GateRule("vs_logistic_macro_f1", "macro-F1 vs logistic regression", "beats", 0.0),
    gates.champion_rule("macro_f1", "macro-F1", 0.01),
)


def behavior_examples(settings: PipelineSettings) -> tuple[pd.DataFrame, list[str]]:
    """Snapshots of active users every few weeks, features joined point in time by Feast."""
    store = open_feature_store(settings.feature_store_root.resolve(), settings.online_store_redis)
    users = training_users(read_table(settings, schema.users), settings.behavior_max_training_users)
    with warehouse_connection(settings) as connection:
        span = trade_day_span(connection)  # in SQL: the trades themselves are not read
    if span is None:
        raise ValueError("the warehouse holds no trades to take behaviour snapshots of")
    days = pd.bdate_range(pd.Timestamp(span[0]), pd.Timestamp(span[1]))
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
    # The label is the archetype in effect at the snapshot (drifting users change once).
    labels = archetype_at(users, frame["user_id"].to_numpy(), frame["event_timestamp"])
    frame = frame.assign(label=[CLASS_LABELS.index(name) for name in labels])
    # Feast returns rows in no fixed order; sort so the user split is reproducible.
    frame = frame.sort_values(["user_id", "event_timestamp"])
    log.info("%d active snapshots of %d users", len(frame), frame["user_id"].nunique())
    return frame.reset_index(drop=True), names


def training_users(users: pd.DataFrame, max_users: int) -> pd.DataFrame:
    """Every user, or above ``max_users`` every k-th (``user_id`` divisible by k, the smallest
    k that fits): a fixed sample, the same on every run."""
    stride = sample_stride(len(users), max_users)
    if stride == 1:
        return users
    sample = users[users["user_id"] % stride == 0]
    log.info(
        "behaviour training sample: %d of %d users (every %dth; behavior_max_training_users=%d)",
        len(sample),
        len(users),
        stride,
        max_users,
    )
    return sample


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
    config = TrainingConfig(epochs=settings.train_epochs, seed=settings.seed)
    params = {
        "feature_service": FEATURE_SERVICE,
        "features": ",".join(names),
        "classes": ",".join(CLASS_LABELS),
        "holdout_user_fraction": HOLDOUT_USER_FRACTION,
        "epochs": config.epochs,
        "seed": settings.seed,
    }
    used = frame[["user_id", "event_timestamp", "label", *names]]
    trained_on = fingerprint.training_fingerprint(
        {"snapshots": fingerprint.frame_digest(used)}, fingerprint.package_code(behavior), params
    )
    reused = fingerprint.reused_candidate(settings, MODEL_NAME, trained_on)
    if reused is not None:
        return reused
    train, holdout = split_users(frame, HOLDOUT_USER_FRACTION, settings.seed)
    train_x = train[names].to_numpy(np.float32)
    train_y = train["label"].to_numpy(np.int64)
    holdout_x = holdout[names].to_numpy(np.float32)
    holdout_y = holdout["label"].to_numpy(np.int64)

    model, fit_info = fit_behavior_model(train_x, train_y, len(CLASS_LABELS), config)
    majority = int(np.bincount(train_y, minlength=len(CLASS_LABELS)).argmax())
    predicted = {
        "holdout": predict_proba(model, holdout_x).argmax(1),
        "majority": np.full_like(holdout_y, majority),
        "logistic": logistic_predictions(train_x, train_y, holdout_x),
    }
    champion = champion_model(settings, MODEL_NAME)
    if champion is not None:
        predicted["champion"] = predict_proba(champion, holdout_x).argmax(1)
    users = holdout["user_id"].to_numpy()
    metrics = {
        **{
            f"{name}_{k}": v
            for name, values in predicted.items()
            for k, v in classification_metrics(holdout_y, values).items()
        },
        **gates.record(
            GATE_RULES,
            gates.against_references(MACRO_F1, "macro_f1", holdout_y, predicted, groups=users),
        ),
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
        params=params,
        metrics=metrics,
        tags={
            Parameter.FEATURE_SERVICE: FEATURE_SERVICE,
            Parameter.FEATURE_NAMES: ",".join(names),
            Parameter.CLASS_LABELS: ",".join(CLASS_LABELS),
            fingerprint.FINGERPRINT_TAG: trained_on,
        },
        artifacts={
            PROFILE_ARTIFACT: calibrated_offline(
                training_reference(
                    used, names, FEATURE_SERVICE, {"trades_in_window": MIN_TRADES_IN_WINDOW}
                ),
                settings,
            ).to_json()
        },
    )
    return candidate_report(version, metrics)


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    promoted, reason, _ = gates.evaluate(GATE_RULES, metrics)
    return promoted, reason
