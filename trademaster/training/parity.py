"""How close an exported graph (ONNX, TorchScript) must be to the torch model it came from.

One tolerance and one error for every model and every export: the exporters check parity on
real rows before publishing (at ``settings.parity_tolerance``), and the sentiment training
checks the encoder graph it embeds with (at the default). Max abs difference, computed in
float64.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trademaster.settings import PipelineSettings

PARITY_TOLERANCE: float = PipelineSettings.model_fields["parity_tolerance"].default


class ExportParityError(RuntimeError):
    """An exported graph disagrees with the torch model it was exported from."""


def max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    """Max abs difference of two same-shaped arrays (0 for empty ones)."""
    if expected.shape != actual.shape:
        raise ValueError(f"shape mismatch: torch {expected.shape}, exported {actual.shape}")
    if not expected.size:
        return 0.0
    return float(np.abs(expected.astype(np.float64) - actual.astype(np.float64)).max())


def require_parity(
    diffs: Mapping[str, float], what: str, tolerance: float = PARITY_TOLERANCE
) -> None:
    """Raises ExportParityError naming every difference not below ``tolerance``."""
    failed = {name: diff for name, diff in diffs.items() if not diff < tolerance}
    if failed:
        listed = ", ".join(f"{name} = {diff:.3g}" for name, diff in failed.items())
        raise ExportParityError(
            f"export parity failed ({what}): {listed} (tolerance {tolerance:g})"
        )
