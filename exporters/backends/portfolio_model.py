"""Triton python-backend model of portfolio-optimizer (copied as `<version>/model.py`).

Runs `portfolio_optimizer.py` from the same version folder: the registered version's copy of
`trademaster/portfolio/optimizer.py`, which imports only numpy, so this runs in the serving
virtualenv (numpy 1.26, no scipy) and in the stock NGC image alike.

One request holds B portfolios (`max_batch_size` B), each padded to the request's width n:
`expected_returns` [B, n], `covariance` [B, n, n], optional `holdings` [B, 1] (how many of the
n entries of each row are real; the rest is padding; omitted: all n), `max_weight` [B, 1] and
`risk_aversion` [B, 1] -> `weights` [B, n] (zeros beyond each row's holdings) and `error`
[B, 1] (empty, or why that row was refused). An omitted `max_weight` (the input left out, or a
row's NaN) is the config's `default_max_weight`, raised to 1/h when that would be infeasible
for a row of h holdings; one that is sent is enforced as sent; likewise `risk_aversion`.

Errors: a request whose shapes do not fit together fails as a whole (INVALID_ARG). A row the
solver refuses (infeasible cap, NaN, ...) fails alone: in a request of one portfolio that is
the request's INVALID_ARG error (as a client sending one portfolio expects); in a request of
several, its `error` names the reason and its weights are zero, and the other rows are
answered. Every request gets its own response.
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
ERROR_NAME = "error"


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
    """Triton python-backend model: a batch of portfolios per request, errors per row."""

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
            weights, errors = self._solve_batch(request)
        except self.solver.PortfolioProblemError as exc:
            return self._error(str(exc), self.invalid_argument)
        except Exception as exc:
            return self._error(f"{type(exc).__name__}: {exc}", None)
        if len(errors) == 1 and errors[0]:
            return self._error(errors[0], self.invalid_argument)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor(OUTPUT_NAME, weights),
                pb_utils.Tensor(ERROR_NAME, np.array([[e.encode()] for e in errors], np.object_)),
            ]
        )

    def _solve_batch(self, request: Any) -> tuple[np.ndarray, list[str]]:
        expected_returns = self._required(request, "expected_returns")
        covariance = self._required(request, "covariance")
        if expected_returns.ndim != 2:
            raise self.solver.PortfolioProblemError(
                f"expected_returns must be [batch, n], got shape {list(expected_returns.shape)}"
            )
        rows, width = expected_returns.shape
        if covariance.shape != (rows, width, width):
            raise self.solver.PortfolioProblemError(
                f"covariance must be [batch, n, n] = [{rows}, {width}, {width}] to match "
                f"expected_returns, got shape {list(covariance.shape)}"
            )
        holdings = self._per_row(request, "holdings", rows)
        max_weights = self._per_row(request, "max_weight", rows)
        risk_aversions = self._per_row(request, "risk_aversion", rows)
        weights = np.zeros((rows, width), np.float32)
        errors = []
        for row in range(rows):
            count = width if np.isnan(holdings[row]) else int(holdings[row])
            if not 1 <= count <= width:
                raise self.solver.PortfolioProblemError(
                    f"holdings of row {row} must lie in 1..{width} (the row's width), got {count}"
                )
            try:
                weights[row, :count] = self._solve(
                    expected_returns[row, :count],
                    covariance[row, :count, :count],
                    max_weights[row],
                    risk_aversions[row],
                )
                errors.append("")
            except self.solver.PortfolioProblemError as exc:
                errors.append(str(exc))
        return weights, errors

    def _solve(
        self,
        expected_returns: np.ndarray,
        covariance: np.ndarray,
        max_weight: float,
        risk_aversion: float,
    ) -> np.ndarray:
        holdings = max(expected_returns.size, 1)
        if np.isnan(max_weight):
            max_weight = max(self.default_max_weight, 1.0 / holdings)
        solution = self.solver.solve_portfolio(
            expected_returns,
            covariance,
            max_weight,
            self.default_risk_aversion if np.isnan(risk_aversion) else risk_aversion,
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

    def _per_row(self, request: Any, name: str, rows: int) -> np.ndarray:
        """One value per row ([B, 1]); NaN for every row when the input is left out."""
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            return np.full(rows, np.nan)
        values = np.asarray(tensor.as_numpy(), dtype=np.float64)
        if values.shape != (rows, 1):
            raise self.solver.PortfolioProblemError(
                f"{name} must be [batch, 1] = [{rows}, 1], got shape {list(values.shape)}"
            )
        return values[:, 0]

    def _error(self, message: str, code: Any) -> Any:
        error = (
            pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
        )
        return pb_utils.InferenceResponse(output_tensors=[], error=error)
