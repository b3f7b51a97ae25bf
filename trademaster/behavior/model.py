"""behavioral-pattern-classifier: which trading archetype a user's behaviour matches.

The shared wide-and-deep network (``trademaster.training.tabular_network``), as for the risk
model, with a softmax over the archetypes.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from trademaster.training.tabular_network import WideAndDeep, predict_outputs
from trademaster.training.torch_fit import TrainingConfig, fit_best_epoch, scaling_stats

log = logging.getLogger(__name__)


def fit_behavior_model(
    features: np.ndarray, labels: np.ndarray, n_classes: int, config: TrainingConfig
) -> tuple[WideAndDeep, dict[str, float]]:
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
        model = WideAndDeep(
            *scaling_stats(features[:-n_validation]), n_classes, hidden, activation="softmax"
        )
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
    """Class probabilities per row."""
    return predict_outputs(model, features)
