"""The trained part of sentiment-analyzer: a small head on frozen sentence embeddings.

Classes are ``CLASS_LABELS`` in that order. The sentiment score is
P(positive) - P(negative), in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trademaster.sentiment.encoder import EMBEDDING_DIM
from trademaster.training.determinism import torch_threads
from trademaster.warehouse.headlines import LABELS

CLASS_LABELS: tuple[str, ...] = LABELS
NEGATIVE, POSITIVE = CLASS_LABELS.index("negative"), CLASS_LABELS.index("positive")


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 128
    dropout: float = 0.1
    epochs: int = 15
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    seed: int = 7


class SentimentHead(nn.Module):
    """Embedding [n, 384] -> class probabilities [n, 3]."""

    def __init__(self, dim: int = EMBEDDING_DIM, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(CLASS_LABELS)),
        )

    def logits(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(embedding), dim=1)


class ScoredHead(nn.Module):
    """What is served: probabilities [n, 3] and score [n, 1] = P(positive) - P(negative)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = self.head(embedding)
        score = (
            probabilities[:, POSITIVE : POSITIVE + 1] - probabilities[:, NEGATIVE : NEGATIVE + 1]
        )
        return probabilities, score


def fit_head(
    embeddings: np.ndarray, labels: np.ndarray, config: HeadConfig
) -> tuple[SentimentHead, dict[str, float]]:
    """Mini-batch AdamW on class-balanced cross-entropy, a fixed number of epochs.

    There is no validation slice to pick an epoch on: rows of one template are near
    duplicates, so any random slice of the training templates would flatter overfitting.
    """
    torch.manual_seed(config.seed)
    head = SentimentHead(embeddings.shape[1], config.hidden, config.dropout)
    x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    counts = np.bincount(labels, minlength=len(CLASS_LABELS)).astype(np.float64)
    weights = torch.tensor(len(labels) / (len(CLASS_LABELS) * np.maximum(counts, 1.0)))
    optimiser = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    order = torch.Generator().manual_seed(config.seed)
    loss = torch.tensor(0.0)
    # A head this small runs fastest on one thread.
    with torch_threads(1):
        head.train()
        for _ in range(config.epochs):
            permutation = torch.randperm(len(x), generator=order)
            for start in range(0, len(x), config.batch_size):
                batch = permutation[start : start + config.batch_size]
                loss = nn.functional.cross_entropy(
                    head.logits(x[batch]), y[batch], weight=weights.float()
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    head.eval()
    return head, {"train_final_batch_loss": float(loss.detach())}


def predict_proba(head: nn.Module, embeddings: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return head.eval()(torch.from_numpy(embeddings.astype(np.float32))).numpy()


def sentiment_score(probabilities: np.ndarray) -> np.ndarray:
    """P(positive) - P(negative) per row, in [-1, 1]."""
    return probabilities[:, POSITIVE] - probabilities[:, NEGATIVE]
