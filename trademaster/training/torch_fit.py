"""The training loop shared by the tabular models: mini-batches, AdamW, best epoch kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trademaster.training.determinism import torch_threads


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 25
    # Small data sets get more epochs: at least this many optimiser steps in total.
    min_steps: int = 1_500
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    validation_fraction: float = 0.15
    seed: int = 7
    # Candidate deep paths; () is the wide (linear) model alone. The one with the best
    # inner-validation loss wins, so the deep path is kept only where the data supports it.
    architectures: tuple[tuple[int, ...], ...] = ((), (32, 16))


def scaling_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the signed-log-scaled features (what the models standardise with)."""
    scaled = np.sign(features) * np.log1p(np.abs(features))
    return scaled.mean(axis=0), scaled.std(axis=0) + 1e-6


def signed_log_standardise(
    features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    return (torch.sign(features) * torch.log1p(torch.abs(features)) - mean) / std


def fit_best_epoch(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor],
    config: TrainingConfig,
) -> tuple[float, int]:
    """Trains ``model`` in place and restores the epoch with the lowest validation loss.

    Returns (best validation loss, best epoch counted from 1). Runs on one thread: for models
    this small, intra-op threads cost far more in synchronisation than they save.
    """
    with torch_threads(1):
        x, y = train
        vx, vy = valid
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        generator = torch.Generator().manual_seed(config.seed)
        best_loss, best_epoch = float("inf"), 0
        best_state = {key: value.clone() for key, value in model.state_dict().items()}
        steps_per_epoch = max(1, -(-len(x) // config.batch_size))
        epochs = max(config.epochs, -(-config.min_steps // steps_per_epoch))
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimiser.zero_grad()
                loss_fn(model(x[batch]), y[batch]).backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                validation_loss = float(loss_fn(model(vx), vy))
            if validation_loss < best_loss:
                best_loss, best_epoch = validation_loss, epoch + 1
                best_state = {key: value.clone() for key, value in model.state_dict().items()}
        model.load_state_dict(best_state)
        model.eval()
        return best_loss, best_epoch
