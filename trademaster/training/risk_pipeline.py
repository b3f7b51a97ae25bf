"""Training and validation of risk-assessment-model, as run by the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from trademaster.features.store import open_feature_store
from trademaster.settings import PipelineSettings
from trademaster.training import registry
from trademaster.training.datasets import RISK_FEATURE_SERVICE, risk_examples, time_split
from trademaster.training.evaluation import (
    binary_metrics,
    logistic_baseline,
    prevalence_baseline,
)
from trademaster.training.promotion import champion_metric
from trademaster.training.risk_model import TrainingConfig, fit_risk_model, predict

log = logging.getLogger(__name__)

MODEL_NAME = "risk-assessment-model"
HOLDOUT_FRACTION = 0.25
# A challenger may trail the champion's held-out AUC by at most this much.
CHAMPION_TOLERANCE = 0.01


def train_and_register(settings: PipelineSettings, shuffle_labels: bool = False) -> dict[str, Any]:
    """Trains on a time split, evaluates against baselines and registers a ``challenger``.

    ``shuffle_labels`` trains a deliberately broken model (used to prove validation rejects it).
    """
    store = open_feature_store(settings.feature_store_root.resolve(), settings.online_store_redis)
    frame, feature_names = risk_examples(settings, store)
    split = time_split(frame, feature_names, HOLDOUT_FRACTION, settings.risk_horizon_days)
    train_x, train_y = split.arrays("train")
    holdout_x, holdout_y = split.arrays("holdout")
    if shuffle_labels:
        train_y = np.random.default_rng(settings.seed).permutation(train_y)

    config = TrainingConfig(epochs=settings.train_epochs, seed=settings.seed)
    model, fit_info = fit_risk_model(train_x, train_y, config)
    champion = champion_metric(
        settings,
        MODEL_NAME,
        lambda previous: binary_metrics(holdout_y, predict(previous, holdout_x)),
    )
    metrics = {
        **champion,
        **{
            f"holdout_{k}": v
            for k, v in binary_metrics(holdout_y, predict(model, holdout_x)).items()
        },
        **{
            f"prevalence_{k}": v
            for k, v in binary_metrics(
                holdout_y, prevalence_baseline(train_y, len(holdout_y))
            ).items()
        },
        **{
            f"logistic_{k}": v
            for k, v in binary_metrics(
                holdout_y, logistic_baseline(train_x, train_y, holdout_x)
            ).items()
        },
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
        params={
            "feature_service": RISK_FEATURE_SERVICE,
            "features": ",".join(feature_names),
            "horizon_days": settings.risk_horizon_days,
            "loss_threshold": settings.risk_loss_threshold,
            "epochs": config.epochs,
            "seed": settings.seed,
            "shuffled_labels": shuffle_labels,
            "holdout_start": str(split.holdout["event_timestamp"].min()),
        },
        metrics=metrics,
        tags={"feature_service": RISK_FEATURE_SERVICE, "feature_names": ",".join(feature_names)},
    )
    return {
        "model_name": MODEL_NAME,
        "version": version.version,
        "run_id": version.run_id,
        "metrics": metrics,
    }


def promotion_decision(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, min_lift: float
) -> tuple[bool, str]:
    """Pure rule: beat the prevalence baseline by ``min_lift`` AUC and on log loss, and stay
    within tolerance of the logistic baseline and of the current champion (``champion`` holds
    the champion's metrics on the candidate's holdout)."""
    auc = candidate["holdout_auc"]
    if auc < candidate["prevalence_auc"] + min_lift:
        return False, (
            f"AUC {auc:.4f} does not beat the prevalence baseline "
            f"({candidate['prevalence_auc']:.4f}) by {min_lift}"
        )
    if candidate["holdout_log_loss"] >= candidate["prevalence_log_loss"]:
        return False, (
            f"log loss {candidate['holdout_log_loss']:.4f} is not below the prevalence "
            f"baseline's {candidate['prevalence_log_loss']:.4f} (badly calibrated)"
        )
    if auc < candidate["logistic_auc"] - CHAMPION_TOLERANCE:
        return False, f"AUC {auc:.4f} trails logistic regression ({candidate['logistic_auc']:.4f})"
    if champion is not None and auc < champion["holdout_auc"] - CHAMPION_TOLERANCE:
        return False, f"AUC {auc:.4f} trails the champion ({champion['holdout_auc']:.4f})"
    return True, (
        f"AUC {auc:.4f} vs prevalence {candidate['prevalence_auc']:.4f}, "
        f"logistic {candidate['logistic_auc']:.4f}"
        + (f", champion {champion['holdout_auc']:.4f}" if champion else ", no champion yet")
    )


def decide(metrics: Mapping[str, float], settings: PipelineSettings) -> tuple[bool, str]:
    champion = {"holdout_auc": metrics["champion_auc"]} if "champion_auc" in metrics else None
    return promotion_decision(metrics, champion, settings.min_auc_lift)
