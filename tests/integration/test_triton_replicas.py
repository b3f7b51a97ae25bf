"""The gateway's Triton client over real `tritonserver` replicas, each converged by its own
serving agent, under load: one replica is killed, a version is promoted and retired, a replica
is added; not one call fails, and every answer's version is one the rollout allows.

The replicas are found the way Kubernetes' headless Service finds pods (``dns:///``); the
resolver is the seam: it answers with the addresses of the tritonservers started here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import tritonclient.http as httpclient

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx
from exporters.triton_config import write_model_configs, write_model_version
from gateway.catalog import ModelCatalog
from gateway.errors import GatewayError
from gateway.triton import TritonGateway
from gateway.triton_replicas import ReplicaSet, parse_endpoints
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.contract.served_versions import publish_served
from trademaster.launchers.process import wait_until
from trademaster.launchers.tools import ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.serving.__main__ import AgentSettings, RunningAgent

pytestmark = pytest.mark.integration

MODEL = "replica-mlp"
URL = "dns:///triton-pods:8001"
CONCURRENCY = 8


@dataclass
class Pod:
    triton: TritonServer
    agent: RunningAgent


@dataclass
class Fleet:
    repo: Path
    root: Path
    tools: ServingTools
    stack: ExitStack
    pods: list[Pod] = field(default_factory=list)
    # What "DNS" answers: the pods started so far (a killed one stays until it is removed).
    addresses: list[str] = field(default_factory=list)

    def start_pod(self) -> Pod:
        n = len(self.pods)
        triton = self.stack.enter_context(
            TritonServer(self.repo, self.root / f"triton-{n}", tools=self.tools)
        )
        agent = RunningAgent(
            AgentSettings(
                model_repository=self.repo,
                triton_grpc_address=triton.grpc_url,
                address="127.0.0.1",
                port=0,
                reconcile_interval_s=0.5,
                probe_interval_s=1.0,
            )
        )
        self.stack.callback(agent.close)
        pod = Pod(triton, agent)
        wait_until(lambda: _agent_ready(agent), 120, f"replica {n} converged")
        self.pods.append(pod)
        self.addresses.append(triton.grpc_url)
        return pod


def _agent_ready(agent: RunningAgent) -> bool:
    try:
        with urllib.request.urlopen(f"{agent.url}/ready", timeout=5) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _inferences(triton: TritonServer) -> int:
    client = httpclient.InferenceServerClient(triton.http_url)
    try:
        stats: dict[str, Any] = client.get_inference_statistics(MODEL)
        return sum(int(model["inference_count"]) for model in stats["model_stats"])
    finally:
        client.close()


@pytest.fixture
def fleet(tools: ServingTools, tmp_path: Path) -> Iterator[Fleet]:
    repo = tmp_path / "model_repository"
    torch.manual_seed(0)
    onnx = export_onnx(
        torch.nn.Linear(6, 1), torch.randn(2, 6), tmp_path / "m.onnx", "features", ["y"]
    )
    spec = ModelSpec(
        MODEL,
        (TensorSpec("features", "FP32", (6,)),),
        (TensorSpec("y", "FP32", (1,)),),
        versions_served=2,
        parameters={
            Parameter.TASK: TaskKind.BINARY_CLASSIFICATION,
            Parameter.FEATURE_SERVICE: "replica_mlp_v1",
            Parameter.FEATURE_NAMES: "a,b,c,d,e,f",
            Parameter.FEATURE_REFERENCE: "0,0,0,0,0,0",
            Parameter.FEATURE_MIN: "-1,-1,-1,-1,-1,-1",
            Parameter.FEATURE_MAX: "1,1,1,1,1,1",
        },
    )
    write_model_configs(repo, spec)
    for version in (1, 2):
        write_model_version(repo, spec, version, onnx)
    publish_served(repo, {MODEL: [1]})
    with ExitStack() as stack:
        yield Fleet(repo, tmp_path, tools, stack)


@dataclass
class Load:
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time, version)
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _client(triton: TritonGateway, catalog: ModelCatalog, load: Load) -> None:
    features = {"features": np.ones((1, 6), np.float32)}
    while not load.stop.is_set():
        try:
            model = catalog.resolve(MODEL)
            await triton.infer(model, features)
            load.answers.append((time.monotonic(), model.version))
        except GatewayError as exc:
            load.failures.append(f"{time.monotonic():.2f} {exc.code}: {exc}")
        await asyncio.sleep(0.005)


async def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.2)


def test_load_over_replicas_survives_a_kill_a_promotion_and_a_new_replica(fleet: Fleet) -> None:
    for _ in range(3):
        fleet.start_pod()

    async def resolve(host: str, port: int) -> list[str]:
        return list(fleet.addresses)

    async def scenario() -> tuple[Load, float, TritonGateway]:
        replicas: Any = ReplicaSet(
            parse_endpoints(URL), TritonGateway._connect, 2.0, resolver=resolve
        )
        triton = TritonGateway(URL, 2.0, replicas=replicas)
        catalog = ModelCatalog(triton, 0.5, [MODEL])
        await catalog.start()
        load = Load()
        clients = [asyncio.create_task(_client(triton, catalog, load)) for _ in range(CONCURRENCY)]
        try:
            await asyncio.sleep(2)
            # 1. A replica dies under load.
            killed = fleet.pods[0]
            os.kill(killed.triton.pid, signal.SIGKILL)
            await asyncio.sleep(3)
            assert triton.replica_health()[killed.triton.grpc_url].startswith("out: ")
            # 2. Promotion: every live replica loads version 2 beside 1; the default moves
            # to 2 once all of them have it.
            publish_served(fleet.repo, {MODEL: [1, 2]})
            await _until(lambda: catalog.resolve(MODEL).version == 2, 60, "version 2 the default")
            # 3. Version 1 retires.
            publish_served(fleet.repo, {MODEL: [2]})
            live = fleet.pods[1:]
            await _until(
                lambda: all(pod.triton.ready_versions(MODEL) == {2} for pod in live),
                60,
                "version 1 unloaded everywhere",
            )
            retired = time.monotonic()
            # 4. A replica is added (scale-out): it converges by itself and gets calls.
            added = await asyncio.to_thread(fleet.start_pod)
            await _until(lambda: _inferences(added.triton) > 0, 30, "calls on the new replica")
            await asyncio.sleep(2)
        finally:
            load.stop.set()
            await asyncio.gather(*clients)
            await catalog.stop()
        return load, retired, triton

    load, retired, triton = asyncio.run(scenario())
    versions = Counter(version for _, version in load.answers)
    print(f"answers by version {dict(versions)}; replicas {triton.replica_health()}")
    for pod in fleet.pods:
        print(f"  {pod.triton.grpc_url}: {_inferences_or_dead(pod.triton)} inferences")

    assert load.failures == [], f"{len(load.failures)} failed calls: {load.failures[:5]}"
    assert len(load.answers) > 200
    assert set(versions) <= {1, 2}
    assert versions[2] > 0
    # Once version 1 was unloaded, nothing answered with it.
    assert {version for at, version in load.answers if at > retired} == {2}
    # Every live replica ends on the same versions, and each took calls.
    live = fleet.pods[1:]
    assert all(pod.triton.ready_versions(MODEL) == {2} for pod in live)
    assert all(_inferences(pod.triton) > 0 for pod in live)
    health = triton.replica_health()
    assert health[fleet.pods[0].triton.grpc_url].startswith("out: ")
    assert all(health[pod.triton.grpc_url] == "up" for pod in live)


def _inferences_or_dead(triton: TritonServer) -> str:
    try:
        return str(_inferences(triton))
    except Exception:  # the killed replica
        return "dead"
