"""risk-assessment-model: probability that a new position suffers a large levered loss.

The network is the shared wide-and-deep one (``trademaster.training.tabular_network``) with
one sigmoid output.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from trademaster.training.tabular_network import WideAndDeep, predict_outputs
from trademaster.training.torch_fit import TrainingConfig, fit_best_epoch, scaling_stats

log = logging.getLogger(__name__)


def fit_risk_model(
    features: np.ndarray, labels: np.ndarray, config: TrainingConfig
) -> tuple[WideAndDeep, dict[str, float]]:
    """Fits every candidate architecture and keeps the best on the inner validation slice.

    Rows must be in time order; the inner validation slice is the most recent one.
    """
    n_validation = max(1, int(len(features) * config.validation_fraction))
    train_x, valid_x = features[:-n_validation], features[-n_validation:]
    train_y, valid_y = labels[:-n_validation], labels[-n_validation:]
    fits = [
        _fit_one(train_x, train_y, valid_x, valid_y, hidden, config)
        for hidden in config.architectures
    ]
    model, info = min(fits, key=lambda fit: fit[1]["inner_validation_log_loss"])
    base_rate = float(np.clip(train_y.mean(), 1e-4, 1 - 1e-4))
    constant_loss = float(
        nn.functional.binary_cross_entropy(
            torch.full((len(valid_y),), base_rate), torch.from_numpy(valid_y)
        )
    )
    if info["inner_validation_log_loss"] >= constant_loss:
        # Nothing learned generalises even within the training window: predict the base rate
        # rather than a structured function fitted to noise (validation then rejects it).
        log.warning("no architecture beats the base rate on inner validation; constant model")
        return constant_model(train_x, base_rate), {
            "best_epoch": 0.0,
            "inner_validation_log_loss": constant_loss,
            "deep_path": 0.0,
        }
    log.info("selected architecture: %s", "wide_deep" if model.deep is not None else "wide")
    return model, info


def constant_model(features: np.ndarray, base_rate: float) -> WideAndDeep:
    """A network that predicts ``base_rate`` for every row."""
    model = WideAndDeep(np.zeros(features.shape[1]), np.ones(features.shape[1]))
    with torch.no_grad():
        model.wide.weight.zero_()
        model.wide.bias.fill_(float(np.log(base_rate / (1 - base_rate))))
    return model.eval()


def _fit_one(
    train_x: np.ndarray,
    train_y: np.ndarray,
    valid_x: np.ndarray,
    valid_y: np.ndarray,
    hidden: tuple[int, ...],
    config: TrainingConfig,
) -> tuple[WideAndDeep, dict[str, float]]:
    """Trains one architecture, keeping the epoch with the best inner-validation loss."""
    torch.manual_seed(config.seed)
    model = WideAndDeep(*scaling_stats(train_x), hidden=hidden)
    best_loss, best_epoch = fit_best_epoch(
        model,
        nn.BCELoss(),
        (torch.from_numpy(train_x), torch.from_numpy(train_y)[:, None]),
        (torch.from_numpy(valid_x), torch.from_numpy(valid_y)[:, None]),
        config,
    )
    log.info(
        "architecture %s: best inner-validation log loss %.4f at epoch %d",
        hidden or "wide",
        best_loss,
        best_epoch,
    )
    return model, {
        "best_epoch": float(best_epoch),
        "inner_validation_log_loss": best_loss,
        "deep_path": float(bool(hidden)),
    }


def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """P(large loss) per row."""
    return predict_outputs(model, features)[:, 0]
