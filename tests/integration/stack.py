"""Helpers to run the real pipeline, Triton and the gateway for integration tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import np_to_triton_dtype

from gateway.auth import hash_key
from trademaster.launchers.process import free_port, log_tail, stop_process
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.airflow_runner import settings_environment
from trademaster.settings import PipelineSettings
from trademaster.stack import deployed_models, gateway_base_environment

RISK_MODEL = "risk-assessment-model"
PREDICT_KEY = "test-predict-key-0123456789"
ADMIN_KEY = "test-admin-key-0123456789"
API_KEYS = json.dumps(
    [
        {"name": "client", "sha256": hash_key(PREDICT_KEY), "scopes": ["predict"]},
        {"name": "ops", "sha256": hash_key(ADMIN_KEY), "scopes": ["predict", "admin", "metrics"]},
    ]
)


def isolated_settings(root: Path, **overrides: Any) -> PipelineSettings:
    """Test settings whose data and model repository lie under ``root`` (seed 11 unless
    overridden), so that a test neither reads nor writes a developer's files."""
    values: dict[str, Any] = {"seed": 11, **overrides}
    return PipelineSettings(
        environment="test",
        data_dir=root / "var",
        model_repository=root / "model_repository",
        **values,
    )


def pipeline_test_settings(root: Path, redis_port: int, **overrides: Any) -> PipelineSettings:
    """The default sizes (what `make up` trains on; smaller data leave the gates too little
    evidence to promote every model) with another seed, so the tests see other data than a
    developer's `make up`. About 3 minutes for the whole DAG."""
    return isolated_settings(
        root,
        feature_store_root=root / "feature_store",
        online_store_redis=f"127.0.0.1:{redis_port}",
        **overrides,
    )


def corrupt_warehouse(url: str, *statements: str) -> None:
    """Runs ``statements`` on a test's own warehouse copy as its owner (the pipeline cannot)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def run_cli(
    settings: PipelineSettings,
    *args: str,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``trademaster ARGS`` in a child process, configured only through the environment."""
    env = {**os.environ, **settings_environment(settings), **(extra_env or {})}
    return subprocess.run(
        [str(Path(sys.executable).with_name("trademaster")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def run_pipeline_cli(settings: PipelineSettings) -> subprocess.CompletedProcess[str]:
    """``trademaster warehouse seed --if-empty``, then ``trademaster pipeline run``."""
    seeded = run_cli(settings, "warehouse", "seed", "--if-empty")
    if seeded.returncode != 0:
        return seeded
    return run_cli(settings, "pipeline", "run")


@dataclass
class Gateway:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, key: str | None = PREDICT_KEY) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.base_url, timeout=10, headers=headers)


@contextmanager
def running_gateway(
    settings: PipelineSettings,
    redis_url: str,
    triton_grpc_url: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    wait_for_ready: bool = True,
    required_models: list[str] | None = None,
) -> Iterator[Gateway]:
    """``python -m gateway`` on a free port; waits for /health (and /ready), always stops it."""
    port = free_port()
    env = {
        **gateway_base_environment(),
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_PORT": str(port),
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_FEAST_REDIS": settings.online_store_redis,
        "GATEWAY_TRITON_GRPC_URL": triton_grpc_url,
        "GATEWAY_FEATURE_STORE_ROOT": str(settings.feature_store_root),
        "GATEWAY_REQUIRED_MODELS": json.dumps(
            required_models or deployed_models(settings.model_repository)
        ),
        "GATEWAY_MODEL_REFRESH_INTERVAL_S": "0.5",
        "GATEWAY_LOG_LEVEL": "info",
        "GATEWAY_API_KEYS": API_KEYS,
        "GATEWAY_PREDICTION_LOG_URL": settings.resolved_prediction_log_url,
        **(extra_env or {}),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    gateway = Gateway(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait(gateway, "/ready" if wait_for_ready else "/health", deadline_s=90)
        yield gateway
    finally:
        stop_process(process, grace_s=10)


@contextmanager
def risk_gateway(
    settings: PipelineSettings,
    cache: RedisServer,
    triton: TritonServer,
    log_path: Path,
    **options: Any,
) -> Iterator[Gateway]:
    """A gateway that requires only the risk model, on its own cache and Triton;
    ``options`` go to :func:`running_gateway`."""
    with running_gateway(
        settings, cache.url, triton.grpc_url, log_path, required_models=[RISK_MODEL], **options
    ) as gateway:
        yield gateway


def _wait(gateway: Gateway, path: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(
                f"gateway exited with {gateway.process.returncode}:\n{log_tail(gateway.log_path)}"
            )
        try:
            response = httpx.get(gateway.base_url + path, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.25)
    raise RuntimeError(f"gateway {path} not 200 after {deadline_s} s ({last})")


def wait_for(predicate: object, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")


def metric_total(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """Sum of the series of ``name`` whose labels include ``labels``, from Prometheus text.

    Without ``default``, a metric with no such series fails the test (it was not exposed).
    """
    values = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(key) == value for key, value in labels.items()):
                values.append(float(line.rsplit(" ", 1)[1]))
    if values:
        return sum(values)
    if default is not None:
        return default
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    raise AssertionError(f"metric {name}{{{selector}}} not exposed")


TritonProtocol = Literal["grpc", "http"]


def triton_inputs(client_module: Any, inputs: Mapping[str, np.ndarray]) -> list[Any]:
    """One ``InferInput`` of ``client_module`` (tritonclient.grpc, .grpc.aio or .http) per
    array, named by its key; the Triton datatype follows the array's dtype."""
    tensors = []
    for name, array in inputs.items():
        tensor = client_module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def triton_infer(
    protocol: TritonProtocol,
    url: str,
    model: str,
    inputs: Mapping[str, np.ndarray],
    outputs: tuple[str, ...],
) -> list[np.ndarray]:
    """One request to ``model`` over gRPC or HTTP; the named outputs, in that order."""
    client_module: Any = grpcclient if protocol == "grpc" else httpclient
    client = client_module.InferenceServerClient(url)
    try:
        result = client.infer(model, triton_inputs(client_module, inputs))
        return [np.asarray(result.as_numpy(name)) for name in outputs]
    finally:
        client.close()
