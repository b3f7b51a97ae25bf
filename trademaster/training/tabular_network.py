"""The one network of the tabular models (risk, behaviour): wide and deep, scaling inside.

Raw feature values in, in feature-service order; signed-log scaling and standardisation are
part of the module, so exported ONNX graphs need no preprocessing. A linear (wide) path plus
an optional MLP (deep) path for interactions, summed as logits: the wide path alone is
logistic (or multinomial) regression on the scaled features, so the network starts from
that baseline and the deep path only adds what the data supports.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from trademaster.training.torch_fit import signed_log_standardise

Activation = Literal["sigmoid", "softmax"]


class WideAndDeep(nn.Module):
    """``sigmoid``: one output, P(positive), shape (batch, 1); ``softmax``: class
    probabilities, shape (batch, n_outputs)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        n_outputs: int = 1,
        hidden: tuple[int, ...] = (),
        activation: Activation = "sigmoid",
    ):
        super().__init__()
        if activation == "sigmoid" and n_outputs != 1:
            raise ValueError(f"a sigmoid output has one unit, got n_outputs={n_outputs}")
        self.activation = activation
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.wide = nn.Linear(len(mean), n_outputs)
        self.deep: nn.Module | None = None
        if hidden:
            layers: list[nn.Module] = []
            width = len(mean)
            for size in hidden:
                layers += [nn.Linear(width, size), nn.GELU()]
                width = size
            layers.append(nn.Linear(width, n_outputs))
            self.deep = nn.Sequential(*layers)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        standardised = signed_log_standardise(features, self.mean, self.std)
        out = self.wide(standardised)
        if self.deep is not None:
            out = out + self.deep(standardised)
        return out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.logits(features)
        if self.activation == "softmax":
            return torch.softmax(logits, dim=-1)
        return torch.sigmoid(logits)


def predict_outputs(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """The model's outputs for float features, as numpy, shape (rows, n_outputs)."""
    with torch.no_grad():
        return model(torch.from_numpy(features.astype(np.float32))).numpy()
