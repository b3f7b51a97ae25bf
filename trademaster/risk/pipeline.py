"""Training and validation of risk-assessment-model, as run by the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from trademaster import registry, risk
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import Parameter
from trademaster.features.store import open_feature_store
from trademaster.monitoring.drift_check import calibrated_offline
from trademaster.monitoring.profile import PROFILE_ARTIFACT
from trademaster.monitoring.reference import training_reference
from trademaster.risk.dataset import RISK_FEATURE_SERVICE, risk_examples, time_split
from trademaster.risk.model import TrainingConfig, fit_risk_model, predict
from trademaster.settings import PipelineSettings
from trademaster.training import fingerprint, gates
from trademaster.training.evaluation import (
    binary_metrics,
    logistic_baseline,
    prevalence_baseline,
    row_log_loss,
)
from trademaster.training.promotion import candidate_report, champion_model

log = logging.getLogger(__name__)

MODEL_NAME = ModelName.RISK.value
HOLDOUT_FRACTION = 0.25
# AUC a challenger may trail the champion / logistic regression by (on the interval).
CHAMPION_TOLERANCE = 0.01
LOGISTIC_TOLERANCE = 0.01
# Positions are opened by users who trade: drift is checked on those users' snapshots.
ACTIVE_USERS = {"trades_in_window": 1.0}


def train_and_register(settings: PipelineSettings, shuffle_labels: bool = False) -> dict[str, Any]:
    """Trains on a time split, evaluates against baselines and registers a ``challenger``.

    ``shuffle_labels`` trains a deliberately broken model (used to prove validation rejects it).
    """
    store = open_feature_store(settings.feature_store_root.resolve(), settings.online_store_redis)
    frame, feature_names = risk_examples(settings, store)
    split = time_split(frame, feature_names, HOLDOUT_FRACTION, settings.risk_horizon_days)
    config = TrainingConfig(epochs=settings.train_epochs, seed=settings.seed)
    params = {
        "feature_service": RISK_FEATURE_SERVICE,
        "features": ",".join(feature_names),
        "horizon_days": settings.risk_horizon_days,
        "loss_threshold": settings.risk_loss_threshold,
        "epochs": config.epochs,
        "seed": settings.seed,
        "shuffled_labels": shuffle_labels,
        "holdout_start": str(split.holdout["event_timestamp"].min()),
    }
    used = frame[["event_timestamp", "user_id", "symbol", "label", *feature_names]]
    trained_on = fingerprint.training_fingerprint(
        {"examples": fingerprint.frame_digest(used)}, fingerprint.package_code(risk), params
    )
    reused = fingerprint.reused_candidate(settings, MODEL_NAME, trained_on)
    if reused is not None:
        return reused
    train_x, train_y = split.arrays("train")
    holdout_x, holdout_y = split.arrays("holdout")
    if shuffle_labels:
        train_y = np.random.default_rng(settings.seed).permutation(train_y)

    model, fit_info = fit_risk_model(train_x, train_y, config)
    predictions = {
        "holdout": predict(model, holdout_x),
        "prevalence": prevalence_baseline(train_y, len(holdout_y)),
        "logistic": logistic_baseline(train_x, train_y, holdout_x),
    }
    champion = champion_model(settings, MODEL_NAME)
    if champion is not None:
        predictions["champion"] = predict(champion, holdout_x)
    metrics = {
        **{
            f"{name}_{k}": v
            for name, values in predictions.items()
            for k, v in binary_metrics(holdout_y, values).items()
        },
        **gates.record(
            gate_rules(settings),
            gate_intervals(holdout_y, predictions, split.holdout["user_id"].to_numpy()),
        ),
        **fit_info,
        "train_rows": float(len(train_y)),
        "holdout_rows": float(len(holdout_y)),
        "holdout_positive_rate": float(holdout_y.mean()),
    }
    log.info(
        "holdout AUC: model %.4f, logistic %.4f, prevalence %.4f",
        metrics["holdout_auc"],
        metrics["logistic_auc"],
        metrics["prevalence_auc"],
    )
    version = registry.log_torch_model(
        settings,
        MODEL_NAME,
        model,
        example=holdout_x[:64],
        params=params,
        metrics=metrics,
        tags={
            Parameter.FEATURE_SERVICE: RISK_FEATURE_SERVICE,
            Parameter.FEATURE_NAMES: ",".join(feature_names),
            fingerprint.FINGERPRINT_TAG: trained_on,
        },
        artifacts={
            PROFILE_ARTIFACT: calibrated_offline(
                training_reference(used, feature_names, RISK_FEATURE_SERVICE, ACTIVE_USERS),
                settings,
            ).to_json()
        },
    )
    return candidate_report(version, metrics)


def gate_rules(settings: PipelineSettings) -> tuple[gates.GateRule, ...]:
    """The risk model's promotion rule: beat the prevalence baseline by ``min_auc_lift`` AUC
    and on log loss (calibration), and trail neither logistic regression nor the champion by
    more than their tolerances in AUC; all on paired intervals over held-out users."""
    return (
        gates.GateRule(
            "vs_prevalence_auc", "AUC vs the prevalence baseline", "beats", settings.min_auc_lift
        ),
        gates.GateRule(
            "vs_prevalence_log_loss", "log loss vs the prevalence baseline", "beats", 0.0
        ),
        gates.GateRule(
            "vs_logistic_auc", "AUC vs logistic regression", "not_worse", LOGISTIC_TOLERANCE
        ),
        gates.champion_rule("auc", "AUC", CHAMPION_TOLERANCE),
    )


def gate_intervals(
    labels: np.ndarray, predictions: Mapping[str, np.ndarray], users: np.ndarray
) -> dict[str, gates.Interval]:
    """Paired differences of the candidate (``holdout``) with each reference, resampling
    held-out users (a user's positions are not independent)."""
    aucs = gates.against_references(gates.weighted_auc, "auc", labels, predictions, groups=users)
    log_loss = gates.paired_difference(
        gates.weighted_mean,
        labels,
        row_log_loss(labels, predictions["holdout"]),
        row_log_loss(labels, predictions["prevalence"]),
        higher_is_better=False,
        groups=users,
    )
    return {**aucs, "vs_prevalence_log_loss": log_loss}


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    promoted, reason, _ = gates.evaluate(gate_rules(settings), metrics)
    return promoted, reason
