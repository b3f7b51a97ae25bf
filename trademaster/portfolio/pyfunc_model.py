"""MLflow pyfunc model of portfolio-optimizer, logged as code ("models from code").

MLflow stores this file with each registered version and runs it when the version is loaded,
so it imports only mlflow, pydantic (an mlflow dependency) and numpy, never ``trademaster``:
``mlflow.pyfunc.load_model("models:/portfolio-optimizer/N")`` works wherever those are
installed. The solver is the version's ``solver`` artifact, the copy of
``trademaster/portfolio/optimizer.py`` taken at training time.

    model.predict([{"expected_returns": [...], "covariance": [[...]], "max_weight": 0.4,
                    "risk_aversion": 3.0}])  ->  [[w_1, ..., w_n]]
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import numpy as np
import pydantic
from mlflow.pyfunc import PythonModel, PythonModelContext

SOLVER_ARTIFACT = "solver"


class PortfolioRequest(pydantic.BaseModel):
    expected_returns: list[float]
    covariance: list[list[float]]
    max_weight: float
    risk_aversion: float


def import_solver(path: Path) -> ModuleType:
    """The solver file as a module under a private name (its hash: versions can coexist)."""
    name = f"_portfolio_solver_{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a solver from {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up in sys.modules while being defined.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class PortfolioOptimizerModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        self.solver = import_solver(Path(context.artifacts[SOLVER_ARTIFACT]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: list[PortfolioRequest],
        params: dict[str, Any] | None = None,
    ) -> list[list[float]]:
        return [
            self.solver.solve_portfolio(
                np.asarray(request.expected_returns, dtype=np.float64),
                np.asarray(request.covariance, dtype=np.float64),
                request.max_weight,
                request.risk_aversion,
            ).weights.tolist()
            for request in model_input
        ]


# What MLflow loads when this file is logged as the model's code.
mlflow.models.set_model(PortfolioOptimizerModel())
