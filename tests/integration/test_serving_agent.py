"""The serving agent against a real `tritonserver`: it converges on the manifest, follows its
changes, heals a killed python-backend process, and tells the truth on /ready and /metrics."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import tritonclient.http as httpclient

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx
from exporters.triton_config import write_model_configs, write_model_version
from trademaster.contract.served_versions import publish_served
from trademaster.launchers.process import wait_until
from trademaster.launchers.tools import ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.serving.__main__ import AgentSettings, RunningAgent

pytestmark = pytest.mark.integration

MODEL = "agent-mlp"
SINGLE = "agent-single"  # one served version: healing cannot keep another serving meanwhile
# The story's target is 10 s (5.3-6.9 s measured on a 2-core machine running a whole .ci/run
# beside it); machines here differ by 2x, so the test allows twice that. Healing at all, with
# /ready telling the truth meanwhile, is what it checks; the time is printed.
HEAL_DEADLINE_S = 20.0


@dataclass
class Served:
    triton: TritonServer
    agent: RunningAgent
    repo: Path


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local agent
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ready(agent: RunningAgent) -> tuple[int, dict[str, Any]]:
    code, body = _get(f"{agent.url}/ready")
    return code, json.loads(body)


def _ready_on(agent: RunningAgent, versions: list[int]) -> bool:
    code, body = _ready(agent)
    return code == 200 and body["models"][MODEL]["versions"] == versions


def _metric(agent: RunningAgent, line_start: str) -> float:
    _, body = _get(f"{agent.url}/metrics")
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith(line_start)
    ]
    return sum(values)


def _infer(triton: TritonServer, version: int, model: str = MODEL) -> bool:
    client = httpclient.InferenceServerClient(triton.http_url, network_timeout=5)
    tensor = httpclient.InferInput("features", [1, 6], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 6), np.float32))
    try:
        client.infer(model, [tensor], model_version=str(version))
        return True
    except Exception:  # a failing stub answers 500 after about a second
        return False
    finally:
        client.close()


def _stub_pids(repo: Path, version: int, model: str = MODEL) -> list[int]:
    listing = subprocess.run(
        ["pgrep", "-f", f"triton_python_backend_stub {repo / model / str(version)}/"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert listing, f"no python-backend process for {model} v{version}"
    # All of them: a reload starts new processes before the old ones have exited, and the
    # newest is not the highest pid once pids wrap (pid_max is 32,768 here; a whole .ci/run
    # wraps it), so the test once killed an exiting process and the served one answered.
    return [int(pid) for pid in listing]


@pytest.fixture(scope="module")
def served(tools: ServingTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("agent")
    repo = root / "model_repository"
    torch.manual_seed(0)
    onnx = export_onnx(
        torch.nn.Linear(6, 1), torch.randn(2, 6), root / "artifacts" / "m.onnx", "features", ["y"]
    )
    spec = ModelSpec(
        MODEL,
        (TensorSpec("features", "FP32", (6,)),),
        (TensorSpec("y", "FP32", (1,)),),
        versions_served=2,
    )
    write_model_configs(repo, spec)
    for version in (1, 2, 3):
        write_model_version(repo, spec, version, onnx)
    single = ModelSpec(SINGLE, spec.inputs, spec.outputs)
    write_model_configs(repo, single)
    write_model_version(repo, single, 1, onnx)
    # The config alone would serve the newest two (2, 3): the manifest says 1 and 3.
    publish_served(repo, {MODEL: [1, 3], SINGLE: [1]})
    with TritonServer(repo, root / "triton", tools=tools) as triton:
        settings = AgentSettings(
            model_repository=repo,
            triton_grpc_address=triton.grpc_url,
            address="127.0.0.1",
            port=0,
            reconcile_interval_s=1.0,
            probe_interval_s=1.0,
        )
        agent = RunningAgent(settings)
        try:
            yield Served(triton, agent, repo)
        finally:
            agent.close()


def test_it_loads_exactly_the_manifests_versions(served: Served) -> None:
    wait_until(lambda: _ready(served.agent)[0] == 200, 120, "agent ready")
    assert served.triton.ready_versions(MODEL) == {1, 3}
    _, body = _ready(served.agent)
    assert body["models"][MODEL]["ready_versions"] == [1, 3]
    assert _metric(served.agent, "trademaster_serving_agent_converged") == 1
    assert _metric(served.agent, f'trademaster_served_model_healthy{{model_name="{MODEL}"') == 2


def test_it_follows_a_manifest_change(served: Served) -> None:
    publish_served(served.repo, {MODEL: [2, 3]})
    wait_until(lambda: served.triton.ready_versions(MODEL) == {2, 3}, 60, "versions 2 and 3 served")
    wait_until(
        lambda: (
            _ready(served.agent) == (200, _ready(served.agent)[1])
            and _ready(served.agent)[1]["models"][MODEL]["versions"] == [2, 3]
        ),
        60,
        "agent ready on versions 2 and 3",
    )
    # A version that left the manifest leaves the health series too.
    metrics = _get(f"{served.agent.url}/metrics")[1].decode()
    assert f'model_name="{MODEL}",model_version="1"' not in metrics


def _kill_and_watch(served: Served, model: str, version: int) -> tuple[float, dict[str, Any]]:
    """Kills the version's python-backend process; returns how long until /ready is 200 and
    the version answers again, and the first 503 body seen meanwhile."""
    wait_until(lambda: _ready(served.agent)[0] == 200, 60, "agent ready")
    assert _infer(served.triton, version, model)
    for pid in _stub_pids(served.repo, version, model):
        with contextlib.suppress(ProcessLookupError):  # an old one that exited meanwhile
            os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    assert not _infer(served.triton, version, model), "the killed process still answered"
    seen_unready: dict[str, Any] = {}
    while time.monotonic() - killed < HEAL_DEADLINE_S * 2:
        code, body = _ready(served.agent)
        if code == 503 and not seen_unready:
            seen_unready = body
        if seen_unready and code == 200 and _infer(served.triton, version, model):
            break
        time.sleep(0.2)
    return time.monotonic() - killed, seen_unready


def test_a_killed_backend_process_is_healed_and_reported(served: Served) -> None:
    heals_before = _metric(served.agent, "trademaster_served_model_heals_total")
    healed_after, seen_unready = _kill_and_watch(served, MODEL, 3)
    print(f"{MODEL} v3 healed {healed_after:.1f} s after its process was killed")
    assert seen_unready, "/ready never showed the outage"
    assert "3" in seen_unready["models"][MODEL]["failing_versions"]
    assert healed_after <= HEAL_DEADLINE_S, f"healed after {healed_after:.1f} s"
    assert _metric(served.agent, "trademaster_served_model_heals_total") == heals_before + 1
    # The other version kept answering throughout (healing reloads it beside the old one).
    assert _infer(served.triton, 2)


def test_a_model_with_one_version_is_healed_too(served: Served) -> None:
    healed_after, seen_unready = _kill_and_watch(served, SINGLE, 1)
    print(f"{SINGLE} v1 healed {healed_after:.1f} s after its process was killed")
    assert "1" in seen_unready["models"][SINGLE]["failing_versions"]
    assert healed_after <= HEAL_DEADLINE_S, f"healed after {healed_after:.1f} s"
    assert served.triton.ready_versions(SINGLE) == {1}


def test_a_model_triton_refuses_leaves_it_not_converged(served: Served) -> None:
    (served.repo / "broken").mkdir()
    (served.repo / "broken" / "config.pbtxt").write_text('name: "broken"\nbackend: "nothing"\n')
    (served.repo / "broken" / "1").mkdir()
    publish_served(served.repo, {"broken": [1]})
    wait_until(lambda: _ready(served.agent)[0] == 503, 30, "agent not ready")
    _, body = _ready(served.agent)
    assert "load failed" in body["models"]["broken"]["problem"]
    assert _metric(served.agent, "trademaster_serving_agent_converged") == 0
    # The served model is untouched by the other's failure.
    assert _infer(served.triton, 3)
    publish_served(served.repo, {"broken": []})
    wait_until(lambda: _ready(served.agent)[0] == 200, 30, "agent ready once it is withdrawn")
