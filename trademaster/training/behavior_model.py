"""behavioral-pattern-classifier: which trading archetype a user's behaviour matches.

Same structure as the risk model (signed-log scaling and standardisation inside the module,
a wide linear path plus an optional deep path) with a softmax over the archetypes.
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


class BehaviorNet(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, mean: np.ndarray, std: np.ndarray, n_classes: int, hidden: tuple[int, ...] = ()
    ):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.wide = nn.Linear(len(mean), n_classes)
        self.deep: nn.Module | None = None
        if hidden:
            layers: list[nn.Module] = []
            width = len(mean)
            for size in hidden:
                layers += [nn.Linear(width, size), nn.GELU()]
                width = size
            layers.append(nn.Linear(width, n_classes))
            self.deep = nn.Sequential(*layers)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        standardised = signed_log_standardise(features, self.mean, self.std)
        out = self.wide(standardised)
        if self.deep is not None:
            out = out + self.deep(standardised)
        return out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (batch, n_classes)."""
        return torch.softmax(self.logits(features), dim=-1)


def fit_behavior_model(
    features: np.ndarray, labels: np.ndarray, n_classes: int, config: TrainingConfig
) -> tuple[BehaviorNet, dict[str, float]]:
    """Fits each candidate architecture and keeps the best on a held-out slice of users.

    Rows must be grouped so that the last ``validation_fraction`` are other users than the
    rest (the caller shuffles users, not rows).
    """
    n_validation = max(1, int(len(features) * config.validation_fraction))
    train = (torch.from_numpy(features[:-n_validation]), torch.from_numpy(labels[:-n_validation]))
    valid = (torch.from_numpy(features[-n_validation:]), torch.from_numpy(labels[-n_validation:]))
    nll = nn.NLLLoss()

    def loss_fn(probabilities: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nll(torch.log(probabilities.clamp_min(1e-9)), target)

    fits = []
    for hidden in config.architectures:
        torch.manual_seed(config.seed)
        model = BehaviorNet(*scaling_stats(features[:-n_validation]), n_classes, hidden)
        best_loss, best_epoch = fit_best_epoch(model, loss_fn, train, valid, config)
        log.info(
            "architecture %s: best inner-validation loss %.4f at epoch %d",
            hidden or "wide",
            best_loss,
            best_epoch,
        )
        fits.append(
            (
                model,
                {
                    "best_epoch": float(best_epoch),
                    "inner_validation_log_loss": best_loss,
                    "deep_path": float(bool(hidden)),
                },
            )
        )
    return min(fits, key=lambda fit: fit[1]["inner_validation_log_loss"])


def predict_proba(model: nn.Module, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(features.astype(np.float32))).numpy()
