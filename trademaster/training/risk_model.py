"""risk-assessment-model: probability that a new position suffers a large levered loss.

The network takes raw feature values in feature-service order; signed-log scaling and
standardisation are part of the module, so exported ONNX graphs need no preprocessing.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from trademaster.training.torch_fit import (
    TrainingConfig,
    fit_best_epoch,
    scaling_stats,
    signed_log_standardise,
)

log = logging.getLogger(__name__)


class RiskNet(nn.Module):
    """Wide & deep: a linear (logistic) path plus an MLP for interactions, summed as logits.

    The wide path alone is logistic regression on the scaled features, so the network starts
    from that baseline and the deep path only adds what the data supports.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: tuple[int, ...] = (32, 16)):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.wide = nn.Linear(len(mean), 1)
        self.deep: nn.Module | None = None
        if hidden:
            layers: list[nn.Module] = []
            width = len(mean)
            for size in hidden:
                layers += [nn.Linear(width, size), nn.GELU()]
                width = size
            layers.append(nn.Linear(width, 1))
            self.deep = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        standardised = signed_log_standardise(features, self.mean, self.std)
        logit = self.wide(standardised)
        if self.deep is not None:
            logit = logit + self.deep(standardised)
        return torch.sigmoid(logit)


def fit_risk_model(
    features: np.ndarray, labels: np.ndarray, config: TrainingConfig
) -> tuple[RiskNet, dict[str, float]]:
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


def constant_model(features: np.ndarray, base_rate: float) -> RiskNet:
    """A RiskNet that predicts ``base_rate`` for every row."""
    model = RiskNet(np.zeros(features.shape[1]), np.ones(features.shape[1]), hidden=())
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
) -> tuple[RiskNet, dict[str, float]]:
    """Trains one architecture, keeping the epoch with the best inner-validation loss."""
    torch.manual_seed(config.seed)
    model = RiskNet(*scaling_stats(train_x), hidden)
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
    with torch.no_grad():
        return model(torch.from_numpy(features.astype(np.float32))).numpy()[:, 0]
