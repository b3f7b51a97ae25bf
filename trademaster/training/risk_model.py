"""risk-assessment-model: probability that a new position suffers a large levered loss.

The network takes raw feature values in feature-service order; signed-log scaling and
standardisation are part of the module, so exported ONNX graphs need no preprocessing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

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
        scaled = torch.sign(features) * torch.log1p(torch.abs(features))
        standardised = (scaled - self.mean) / self.std
        logit = self.wide(standardised)
        if self.deep is not None:
            logit = logit + self.deep(standardised)
        return torch.sigmoid(logit)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 25
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    validation_fraction: float = 0.15
    seed: int = 7
    # Candidate deep paths; () is the wide (logistic) model alone. The one with the best
    # inner-validation loss wins, so the deep path is kept only where the data supports it.
    architectures: tuple[tuple[int, ...], ...] = ((), (32, 16))


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
    scaled = np.sign(train_x) * np.log1p(np.abs(train_x))
    model = RiskNet(scaled.mean(axis=0), scaled.std(axis=0) + 1e-6, hidden)

    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    loss_fn = nn.BCELoss()
    x = torch.from_numpy(train_x)
    y = torch.from_numpy(train_y)[:, None]
    vx = torch.from_numpy(valid_x)
    vy = torch.from_numpy(valid_y)[:, None]
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch = float("inf"), model.state_dict(), 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            validation_loss = float(loss_fn(model(vx), vy))
        if validation_loss < best_loss:
            best_loss, best_epoch = validation_loss, epoch
            best_state = {key: value.clone() for key, value in model.state_dict().items()}
    log.info(
        "architecture %s: best inner-validation log loss %.4f at epoch %d",
        hidden or "wide",
        best_loss,
        best_epoch + 1,
    )
    model.load_state_dict(best_state)
    model.eval()
    return model, {
        "best_epoch": float(best_epoch + 1),
        "inner_validation_log_loss": best_loss,
        "deep_path": float(bool(hidden)),
    }


def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(features.astype(np.float32))).numpy()[:, 0]
