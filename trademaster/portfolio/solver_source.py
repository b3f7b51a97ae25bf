"""The solver as a file: what MLflow registers, what the exporter copies, what Triton imports.

A registered version of portfolio-optimizer IS this file's content at training time (an MLflow
artifact, its SHA-256 in the version's tags), so exporting version N serves version N's code
even after ``optimizer.py`` has changed in the working tree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from trademaster.portfolio import optimizer

SOLVER_SOURCE = Path(optimizer.__file__).resolve()
# The name of the solver file in MLflow artifacts and in Triton's version folder.
SOLVER_FILENAME = "portfolio_optimizer.py"
SHA256_TAG = "solver_sha256"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
