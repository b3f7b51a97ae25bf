"""Triton python-backend model of portfolio-optimizer (copied as `<version>/model.py`).

Runs `portfolio_optimizer.py` from the same version folder: the registered version's copy of
`trademaster/portfolio/optimizer.py`, which imports only numpy, so this runs in the serving
virtualenv (numpy 1.26, no scipy) and in the stock NGC image alike.

One request is one portfolio (`max_batch_size: 0`): `expected_returns` [n], `covariance`
[n, n], optional `max_weight` [1] and `risk_aversion` [1] -> `weights` [n]. An omitted
`max_weight` is the config's `default_max_weight`, raised to 1/n when that would be infeasible
for so few holdings; one that is sent is enforced as sent. Every request gets its own
response: a problem the solver refuses (infeasible cap, mismatched shapes, NaN) comes back as
that request's INVALID_ARG error and the others are answered normally.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

SOLVER_FILENAME = "portfolio_optimizer.py"
OUTPUT_NAME = "weights"


def _log(level: str, message: str) -> None:
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        getattr(logger, f"log_{level}")(message)
    else:
        print(message, flush=True)


def _import_solver(path: Path) -> ModuleType:
    """The solver file as a module under a private name (so two versions can coexist)."""
    name = f"_portfolio_solver_{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise pb_utils.TritonModelException(f"cannot import the solver from {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up in sys.modules while being defined.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class TritonPythonModel:
    """Triton python-backend model: one portfolio per request, errors per request."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {
            key: value["string_value"] for key, value in config.get("parameters", {}).items()
        }
        solver_path = Path(args["model_repository"]) / args["model_version"] / SOLVER_FILENAME
        self.solver = _import_solver(solver_path)
        self.model_name = config["name"]
        self.default_max_weight = float(parameters["default_max_weight"])
        self.default_risk_aversion = float(parameters["default_risk_aversion"])
        self.tolerance = float(parameters.get("tolerance", self.solver.DEFAULT_TOLERANCE))
        self.max_iterations = int(
            parameters.get("max_iterations", self.solver.DEFAULT_MAX_ITERATIONS)
        )
        # INVALID_ARG makes a refused problem a 400 over HTTP; older stubs have no codes.
        self.invalid_argument = getattr(pb_utils.TritonError, "INVALID_ARG", None)
        digest = hashlib.sha256(solver_path.read_bytes()).hexdigest()
        _log(
            "info",
            f"{self.model_name}: solver {solver_path} (sha256 {digest[:12]}) "
            f"(python {sys.prefix}, numpy {np.__version__})",
        )

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        return [self._respond(request) for request in requests]

    def _respond(self, request: Any) -> Any:
        try:
            weights = self._solve(request)
        except self.solver.PortfolioProblemError as exc:
            return self._error(str(exc), self.invalid_argument)
        except Exception as exc:
            return self._error(f"{type(exc).__name__}: {exc}", None)
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(OUTPUT_NAME, weights)])

    def _solve(self, request: Any) -> np.ndarray:
        expected_returns = self._required(request, "expected_returns")
        covariance = self._required(request, "covariance")
        holdings = max(expected_returns.size, 1)
        max_weight = self._scalar(request, "max_weight")
        if max_weight is None:
            max_weight = max(self.default_max_weight, 1.0 / holdings)
        risk_aversion = self._scalar(request, "risk_aversion")
        solution = self.solver.solve_portfolio(
            expected_returns,
            covariance,
            max_weight,
            self.default_risk_aversion if risk_aversion is None else risk_aversion,
            tolerance=self.tolerance,
            max_iterations=self.max_iterations,
        )
        if not solution.converged:
            _log(
                "warn",
                f"{self.model_name}: {holdings} holdings, not converged after "
                f"{solution.iterations} iterations (duality gap {solution.duality_gap:.3g}); "
                "returning the best feasible weights",
            )
        return np.ascontiguousarray(solution.weights, dtype=np.float32)

    def _required(self, request: Any, name: str) -> np.ndarray:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise self.solver.PortfolioProblemError(f"missing input {name!r}")
        return np.asarray(tensor.as_numpy(), dtype=np.float64)

    def _scalar(self, request: Any, name: str) -> float | None:
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            return None
        values = np.asarray(tensor.as_numpy(), dtype=np.float64).reshape(-1)
        if values.size != 1:
            raise self.solver.PortfolioProblemError(
                f"{name} must hold exactly one value, got {values.size}"
            )
        return float(values[0])

    def _error(self, message: str, code: Any) -> Any:
        error = (
            pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
        )
        return pb_utils.InferenceResponse(output_tensors=[], error=error)
