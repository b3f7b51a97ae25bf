"""The training-set sample of a large warehouse: every k-th entity, the smallest k that fits."""

from __future__ import annotations

import math


def sample_stride(total: int, cap: int) -> int:
    """k such that keeping ids divisible by k leaves at most about ``cap`` of ``total``
    (1: keep everything). A fixed rule, so every run samples the same entities."""
    return max(1, math.ceil(total / cap))
