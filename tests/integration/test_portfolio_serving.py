"""portfolio-optimizer end to end: validated and registered in MLflow, promoted, exported into a
temporary repository and served by a real `tritonserver`, compared with scipy over gRPC and
HTTP, one portfolio per request and many of different sizes in one (padded) request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from exporters.registered import export_champion
from tests.integration.stack import TritonProtocol, triton_infer, triton_inputs
from trademaster.launchers.tools import ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.portfolio.optimizer import solve_portfolio
from trademaster.portfolio.pipeline import MODEL_NAME, train_and_register
from trademaster.portfolio.problems import PortfolioProblem, validation_problems
from trademaster.portfolio.reference import objective_scale, solve_with_scipy, utility
from trademaster.portfolio.solver_source import SOLVER_SOURCE, file_sha256
from trademaster.portfolio.validation import bound_violation, sum_violation
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import validate_candidate

pytestmark = pytest.mark.integration

DEFINITION = catalog_definition(MODEL_NAME)
# Weights come back as float32: utilities agree to float32 rounding, not to 1e-8.
SERVED_TOLERANCE = 1e-6

Inputs = dict[str, np.ndarray]


@dataclass
class Served:
    server: TritonServer
    settings: PipelineSettings
    version: int


@pytest.fixture(scope="module")
def served(tools: ServingTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("portfolio")
    settings = PipelineSettings(
        environment="test", data_dir=root / "var", model_repository=root / "model_repository"
    )
    candidate = train_and_register(settings)
    decision = validate_candidate(settings, DEFINITION.name, DEFINITION.training.decide, candidate)
    assert decision["promoted"], decision["reason"]
    export_champion(settings, DEFINITION.name, DEFINITION.exporter.export_version)
    with TritonServer(settings.model_repository, root / "work", [MODEL_NAME], tools=tools) as s:
        yield Served(s, settings, int(candidate["version"]))


def _as_served(problem: PortfolioProblem) -> PortfolioProblem:
    """The problem as the server sees it: every input rounded to float32."""
    return PortfolioProblem(
        problem.expected_returns.astype(np.float32).astype(np.float64),
        problem.covariance.astype(np.float32).astype(np.float64),
        float(np.float32(problem.max_weight)),
        float(np.float32(problem.risk_aversion)),
        problem.kind,
    )


def _inputs(problem: PortfolioProblem) -> Inputs:
    """One portfolio: a batch of one row."""
    return {
        "expected_returns": problem.expected_returns.astype(np.float32)[None],
        "covariance": problem.covariance.astype(np.float32)[None],
        "max_weight": np.array([[problem.max_weight]], dtype=np.float32),
        "risk_aversion": np.array([[problem.risk_aversion]], dtype=np.float32),
    }


def _batch(problems: list[PortfolioProblem]) -> Inputs:
    """Several portfolios in one request, padded with zeros to the widest."""
    width = max(problem.n for problem in problems)
    inputs = {
        "expected_returns": np.zeros((len(problems), width), np.float32),
        "covariance": np.zeros((len(problems), width, width), np.float32),
        "holdings": np.array([[problem.n] for problem in problems], np.int32),
        "max_weight": np.array([[problem.max_weight] for problem in problems], np.float32),
        "risk_aversion": np.array([[problem.risk_aversion] for problem in problems], np.float32),
    }
    for row, problem in enumerate(problems):
        inputs["expected_returns"][row, : problem.n] = problem.expected_returns
        inputs["covariance"][row, : problem.n, : problem.n] = problem.covariance
    return inputs


def _solve(protocol: TritonProtocol, url: str, inputs: Inputs) -> np.ndarray:
    (weights,) = triton_infer(protocol, url, MODEL_NAME, inputs, ("weights",))
    assert weights.shape[0] == 1
    return np.asarray(weights[0])


async def _grpc_gather(url: str, requests: list[Inputs]) -> list[np.ndarray | Exception]:
    """Send every request at once; each result is the weights or that request's error."""
    async with grpcaio.InferenceServerClient(url) as client:

        async def one(inputs: Inputs) -> np.ndarray:
            result = await client.infer(MODEL_NAME, triton_inputs(grpcaio, inputs))
            return np.asarray(result.as_numpy("weights"))[0]

        return list(await asyncio.gather(*(one(r) for r in requests), return_exceptions=True))


def _assert_optimal(problem: PortfolioProblem, weights: np.ndarray) -> None:
    seen = _as_served(problem)
    reference = solve_with_scipy(seen)
    ours, theirs = utility(seen, weights.astype(np.float64)), utility(seen, reference.weights)

    assert weights.dtype == np.float32
    assert weights.shape == (problem.n,)
    assert abs(ours - theirs) / max(abs(theirs), objective_scale(seen)) < SERVED_TOLERANCE
    assert sum_violation(weights) < 1e-6
    assert bound_violation(weights, seen.max_weight) < 1e-6


def test_grpc_answers_match_scipy_on_20_random_problems(served: Served) -> None:
    for problem in validation_problems(20, seed=2024):
        _assert_optimal(problem, _solve("grpc", served.server.grpc_url, _inputs(problem)))


def test_http_answers_match_scipy_on_20_random_problems(served: Served) -> None:
    for problem in validation_problems(20, seed=2025):
        _assert_optimal(problem, _solve("http", served.server.http_url, _inputs(problem)))


def test_refused_requests_fail_alone_while_concurrent_good_ones_succeed(served: Served) -> None:
    goods = validation_problems(8, seed=7)
    infeasible = {**_inputs(goods[0]), "max_weight": np.array([[0.5 / goods[0].n]], np.float32)}
    mismatched = {
        **_inputs(goods[1]),
        "covariance": np.eye(goods[1].n + 1, dtype=np.float32)[None],
    }
    with_nan = _inputs(goods[2])
    with_nan["expected_returns"][0, 0] = np.nan
    requests = [_inputs(p) for p in goods[:4]] + [infeasible, mismatched, with_nan]
    requests += [_inputs(p) for p in goods[4:]]

    results = asyncio.run(_grpc_gather(served.server.grpc_url, requests))

    refused = results[4:7]
    for error, expected in zip(refused, ["infeasible", "must be", "NaN"], strict=True):
        assert isinstance(error, InferenceServerException)
        assert error.status() == "StatusCode.INVALID_ARGUMENT"
        assert expected in str(error)
    for problem, weights in zip(goods[:4] + goods[4:], results[:4] + results[7:], strict=True):
        assert isinstance(weights, np.ndarray), weights
        _assert_optimal(problem, weights)


def test_many_portfolios_of_different_sizes_in_one_request_are_each_solved(
    served: Served,
) -> None:
    problems = validation_problems(12, seed=31)
    assert len({problem.n for problem in problems}) > 1  # padding is exercised
    refused = problems[3]
    inputs = _batch(problems)
    inputs["max_weight"][3, 0] = 0.5 / refused.n  # infeasible: this row alone fails
    inputs["risk_aversion"][5, 0] = np.nan  # the config default for this row

    weights, errors = triton_infer(
        "grpc", served.server.grpc_url, MODEL_NAME, inputs, ("weights", "error")
    )

    assert weights.shape == inputs["expected_returns"].shape
    assert [bool(e) for e in errors.reshape(-1)] == [row == 3 for row in range(12)]
    assert b"infeasible" in errors.reshape(-1)[3]
    for row, problem in enumerate(problems):
        if row == 3:
            continue
        np.testing.assert_array_equal(weights[row, problem.n :], 0.0)  # padding stays 0
        if row == 5:
            seen = _as_served(problem)
            expected = solve_portfolio(
                seen.expected_returns, seen.covariance, seen.max_weight, 3.0
            ).weights
            np.testing.assert_allclose(weights[row, : problem.n], expected, atol=1e-6)
            continue
        _assert_optimal(problem, weights[row, : problem.n])


def test_a_batch_whose_shapes_do_not_fit_fails_as_a_whole(served: Served) -> None:
    inputs = _batch(validation_problems(3, seed=41))
    inputs["covariance"] = inputs["covariance"][:, :-1, :-1]

    with pytest.raises(InferenceServerException, match=r"covariance must be \[batch, n, n\]"):
        triton_infer("grpc", served.server.grpc_url, MODEL_NAME, inputs, ("weights",))


def test_a_refused_problem_is_a_400_over_http(served: Served) -> None:
    problem = validation_problems(1, seed=3)[0]
    infeasible = {**_inputs(problem), "max_weight": np.array([[0.5 / problem.n]], np.float32)}

    with pytest.raises(InferenceServerException, match="infeasible") as info:
        _solve("http", served.server.http_url, infeasible)

    assert info.value.status() == "400"


@pytest.mark.parametrize(("n", "cap"), [(10, 0.35), (2, 0.5)])
def test_omitted_options_take_the_config_defaults(served: Served, n: int, cap: float) -> None:
    # default_max_weight 0.35, raised to 1/n for two holdings; default_risk_aversion 3.
    chosen = next(p for p in validation_problems(40, seed=11) if p.n >= n)
    mu = chosen.expected_returns[:n].astype(np.float32)
    sigma = chosen.covariance[:n, :n].astype(np.float32)
    inputs = {"expected_returns": mu[None], "covariance": sigma[None]}

    weights = _solve("grpc", served.server.grpc_url, inputs)

    expected = solve_portfolio(mu, sigma, cap, 3.0).weights
    np.testing.assert_allclose(weights, expected, atol=1e-6)


def test_the_stub_serves_the_registered_solver_with_numpy_1(
    served: Served, tools: ServingTools
) -> None:
    log = served.server.log_path.read_text()
    folder = served.settings.model_repository / MODEL_NAME / str(served.version)

    assert f"sha256 {file_sha256(SOLVER_SOURCE)[:12]}" in log
    assert f"{folder}/portfolio_optimizer.py" in log
    assert f"(python {tools.serving_venv_bin.parent}, numpy 1." in log


def test_the_gpu_config_loads_and_serves_on_cpu(
    served: Served, tools: ServingTools, tmp_path: Path
) -> None:
    problem = validation_problems(1, seed=5)[0]

    with TritonServer(
        served.settings.model_repository,
        tmp_path,
        [MODEL_NAME],
        model_config_name="gpu",
        tools=tools,
    ) as gpu_node:
        client = grpcclient.InferenceServerClient(gpu_node.grpc_url)
        try:
            config = client.get_model_config(MODEL_NAME).config
        finally:
            client.close()
        weights = _solve("grpc", gpu_node.grpc_url, _inputs(problem))

    assert [group.count for group in config.instance_group] == [4]
    _assert_optimal(problem, weights)
