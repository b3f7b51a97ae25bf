"""Same inputs, same model, same promotion decision, on any x86-64 CPU.

Training runs with a fixed thread count (intra-op parallelism changes the order of float
reductions, so results would depend on how many cores a machine has) and torch's
deterministic algorithms. What still differs between CPUs (vector kernels: AVX2 vs AVX-512)
moves results in the last digits only; the promotion gates decide on bootstrap intervals that
are orders of magnitude wider than that (``gates``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Runs the block on ``threads`` intra-op threads with deterministic algorithms."""
    previous = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        torch.use_deterministic_algorithms(was_deterministic)
