"""Session fixtures: one real pipeline run, then real Redis, Triton and gateway processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.stack import (
    Gateway,
    pipeline_test_settings,
    run_pipeline_cli,
    running_gateway,
)
from trademaster.launchers.mlflow_server import MlflowServer
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.tools import MissingToolError, ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.settings import PipelineSettings
from trademaster.stack import deployed_models

_Server = TypeVar("_Server", RedisServer, TritonServer)


def _or_skip(missing: str, make: Callable[[], _Server]) -> _Server:
    """``make()``, or a skip that names the missing tool when it is not installed."""
    try:
        return make()
    except MissingToolError as exc:
        pytest.skip(f"{missing} missing: {exc}")


@pytest.fixture(scope="session")
def tools() -> ServingTools:
    """The tritonserver install of make bootstrap (skips, naming what is missing, if none)."""
    tools = ServingTools.from_project_root()
    try:
        tools.require(perf_analyzer=False)
    except MissingToolError as exc:
        pytest.skip(f"tritonserver not installed: {exc}")
    return tools


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with _or_skip("redis-server", lambda: RedisServer(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite backend store, served artifacts) for the session's
    pipeline: training, validation and export talk to it over HTTP."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="session")
def pipeline_run(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    mlflow_server: MlflowServer,
) -> tuple[PipelineSettings, str]:
    """The training DAG, run once for the whole session through the real CLI (dag.test)."""
    settings = pipeline_test_settings(
        tmp_path_factory.mktemp("pipeline"),
        redis_server.port,
        mlflow_tracking_uri=mlflow_server.url,
    )
    completed = run_pipeline_cli(settings)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"pipeline failed:\n{output[-6000:]}"
    return settings, output


@pytest.fixture(scope="session")
def pipeline_settings(pipeline_run: tuple[PipelineSettings, str]) -> PipelineSettings:
    return pipeline_run[0]


@pytest.fixture(scope="session")
def triton(
    pipeline_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    repository = pipeline_settings.model_repository
    with _or_skip(
        "tritonserver",
        lambda: TritonServer(
            repository, tmp_path_factory.mktemp("triton"), models=deployed_models(repository)
        ),
    ) as server:
        yield server


@pytest.fixture(scope="session")
def gateway(
    pipeline_settings: PipelineSettings,
    redis_server: RedisServer,
    triton: TritonServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    log_path = Path(tmp_path_factory.mktemp("gateway")) / "gateway.log"
    with running_gateway(pipeline_settings, redis_server.url, triton.grpc_url, log_path) as gw:
        yield gw
