"""Helpers shared by the portfolio tests and the portfolio exporter's tests."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def equal_weights(mu: np.ndarray, sigma: np.ndarray, max_weight: float, gamma: float) -> object:
    """A wrong solver that always answers equal weights (feasible, rarely optimal)."""
    return SimpleNamespace(
        weights=np.full(mu.size, 1.0 / mu.size),
        converged=True,
        duality_gap=0.0,
        iterations=0,
        polished=False,
        covariance_repaired=False,
    )


def top_level_imports(source: Path) -> set[str]:
    """The top-level package of every import in a Python file."""
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(str(node.module).split(".")[0])
    return imported
