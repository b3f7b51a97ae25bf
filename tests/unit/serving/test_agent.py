"""The serving agent's decisions against a Triton seam: what it loads, unloads, adopts and
heals, and what /ready says. (tests/integration/test_serving_agent.py runs it on a real one.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trademaster.contract.served_versions import manifest_path, publish_served
from trademaster.serving.agent import ServingAgent
from trademaster.serving.triton_control import NO_ANSWER, ModelDefinition

TABULAR = """name: "risk"
backend: "python"
max_batch_size: 64
version_policy: { latest: { num_versions: 2 } }
input [ { name: "features" data_type: TYPE_FP32 dims: [ 12 ] } ]
output [ { name: "p" data_type: TYPE_FP32 dims: [ 1 ] } ]
"""
TOKENIZER = """name: "tokenizer"
backend: "python"
max_batch_size: 32
input [ { name: "text" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
"""
ENSEMBLE = """name: "sentiment"
platform: "ensemble"
max_batch_size: 32
input [ { name: "text" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "ids" data_type: TYPE_INT64 dims: [ -1 ] } ]
ensemble_scheduling { step [ { model_name: "tokenizer" model_version: 1
  input_map { key: "text" value: "text" } output_map { key: "ids" value: "ids" } } ] }
"""


class FakeTriton:
    """Triton's model control as the agent sees it; ``broken`` versions fail their probe."""

    def __init__(self) -> None:
        self.ready: dict[str, set[int]] = {}
        self.loads: list[tuple[str, tuple[int, ...]]] = []
        self.unloads: list[str] = []
        self.broken: set[tuple[str, int]] = set()
        self.refuse: set[str] = set()
        self.reachable = True
        self.answer_lost_once: set[tuple[str, int]] = set()

    def ready_versions(self) -> dict[str, set[int]]:
        if not self.reachable:
            raise ConnectionRefusedError("connection refused")
        return {name: set(versions) for name, versions in self.ready.items() if versions}

    def load(self, name: str, config_json: str) -> None:
        if name in self.refuse:
            raise RuntimeError(f"failed to load '{name}'")
        # proto3 JSON writes int64 as strings: Triton parses them back.
        specific = json.loads(config_json)["version_policy"]["specific"]
        versions = tuple(int(v) for v in specific["versions"])
        self.loads.append((name, versions))
        self.ready[name] = set(versions)
        # A load restarts the model's backend processes.
        self.broken = {key for key in self.broken if key[0] != name}

    def unload(self, name: str) -> None:
        self.unloads.append(name)
        self.ready.pop(name, None)

    def probe(self, name: str, version: int, inputs: dict[str, np.ndarray]) -> str | None:
        if (name, version) in self.answer_lost_once:
            self.answer_lost_once.discard((name, version))
            return f"{NO_ANSWER}timed out"
        if (name, version) in self.broken:
            return f"Stub process '{name}_0_0' is not healthy."
        return None


def _repository(tmp_path: Path) -> Path:
    for name, config in (("risk", TABULAR), ("tokenizer", TOKENIZER), ("sentiment", ENSEMBLE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.pbtxt").write_text(config)
    return tmp_path


def _serving(agent: ServingAgent, manifest: dict[str, list[int]]) -> None:
    """Publishes ``manifest`` and lets the agent converge on it."""
    publish_served(agent.repository, manifest)
    agent.reconcile()


@pytest.fixture
def triton() -> FakeTriton:
    return FakeTriton()


@pytest.fixture
def agent(tmp_path: Path, triton: FakeTriton) -> ServingAgent:
    return ServingAgent(_repository(tmp_path), triton, min_heal_interval_s=0)


def test_it_loads_the_manifests_versions_steps_before_ensembles(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    publish_served(agent.repository, {"sentiment": [1], "tokenizer": [1], "risk": [3, 5]})
    assert agent.reconcile()
    assert triton.loads == [("risk", (3, 5)), ("tokenizer", (1,)), ("sentiment", (1,))]
    assert agent.status()["converged"]


def test_a_second_pass_changes_nothing(agent: ServingAgent, triton: FakeTriton) -> None:
    _serving(agent, {"risk": [3]})
    agent.reconcile()
    assert triton.loads == [("risk", (3,))]


def test_what_is_already_served_is_adopted_not_reloaded(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    triton.ready = {"risk": {3, 5}}
    publish_served(agent.repository, {"risk": [3, 5]})
    assert agent.reconcile()
    assert triton.loads == []


def test_a_manifest_change_and_a_config_change_load_again(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    _serving(agent, {"risk": [3]})
    _serving(agent, {"risk": [3, 4]})
    (agent.repository / "risk" / "config.pbtxt").write_text(TABULAR + "\n# re-exported\n")
    agent.reconcile()
    assert triton.loads == [("risk", (3,)), ("risk", (3, 4)), ("risk", (3, 4))]


def test_a_model_the_manifest_does_not_list_is_unloaded(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    triton.ready = {"risk": {3}, "old-model": {1}}
    publish_served(agent.repository, {"risk": [3]})
    assert agent.reconcile()
    assert triton.unloads == ["old-model"]


def test_without_a_manifest_what_triton_serves_is_kept_and_healed(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    """A repository from before the manifest (nothing published yet): the agent unloads
    nothing, serves on what Triton loaded at start, and still heals it."""
    triton.ready = {"risk": {3, 5}, "tokenizer": {1}}
    assert agent.reconcile()
    assert (triton.loads, triton.unloads) == ([], [])
    triton.broken = {("risk", 5)}
    agent.probe_all()
    assert triton.loads == [("risk", (3,)), ("risk", (3, 5))]
    publish_served(agent.repository, {"risk": [5]})  # the first publication takes over
    assert agent.reconcile()
    assert (triton.ready, triton.unloads) == ({"risk": {5}}, ["tokenizer"])


def test_a_refused_load_is_reported_and_retried(agent: ServingAgent, triton: FakeTriton) -> None:
    triton.refuse = {"risk"}
    publish_served(agent.repository, {"risk": [3], "tokenizer": [1]})
    assert not agent.reconcile()
    status = agent.status()
    assert not status["ready"]
    assert "failed to load 'risk'" in status["models"]["risk"]["problem"]
    assert triton.ready["tokenizer"] == {1}, "one refusal does not stop the others"
    triton.refuse = set()
    assert agent.reconcile()


def test_a_broken_manifest_keeps_what_is_served(agent: ServingAgent, triton: FakeTriton) -> None:
    _serving(agent, {"risk": [3]})
    manifest_path(agent.repository).write_text("{oops")
    assert not agent.reconcile()
    assert triton.unloads == []
    assert "not valid JSON" in agent.status()["problems"]["manifest"]


def test_an_unreachable_triton_is_not_ready_and_recovers(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    publish_served(agent.repository, {"risk": [3]})
    triton.reachable = False
    assert not agent.reconcile()
    assert "not reachable" in agent.status()["problems"]["triton"]
    triton.reachable = True
    assert agent.reconcile()


def test_ready_needs_every_version_to_answer_a_probe(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    _serving(agent, {"risk": [3, 5]})
    assert not agent.status()["ready"], "not probed yet"
    agent.probe_all()
    assert agent.status()["ready"]


def test_a_failing_version_is_healed_dropping_it_first(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    _serving(agent, {"risk": [3, 5]})
    agent.probe_all()
    triton.broken = {("risk", 5)}
    triton.loads.clear()
    assert agent.probe_all() == ["risk"]
    # Without the broken version first, then the whole set again.
    assert triton.loads == [("risk", (3,)), ("risk", (3, 5))]
    status = agent.status()
    assert not status["ready"], "the outage lasts until a probe answers"
    assert "not healthy" in status["models"]["risk"]["failing_versions"]["5"]
    agent.probe_all()
    assert agent.status()["ready"]
    heals = agent.metrics.registry.get_sample_value(
        "trademaster_served_model_heals_total", {"model_name": "risk"}
    )
    assert heals == 1


def test_a_lost_answer_is_tried_again_before_healing(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    _serving(agent, {"risk": [3]})
    triton.answer_lost_once = {("risk", 3)}
    assert agent.probe_all() == []
    assert agent.status()["ready"]


def test_a_single_version_model_is_unloaded_then_loaded(
    agent: ServingAgent, triton: FakeTriton
) -> None:
    _serving(agent, {"risk": [3]})
    triton.broken = {("risk", 3)}
    assert agent.probe_all() == ["risk"]
    assert triton.unloads == ["risk"]
    assert triton.ready["risk"] == {3}


def test_a_model_that_stays_broken_is_not_reloaded_every_pass(
    tmp_path: Path, triton: FakeTriton
) -> None:
    agent = ServingAgent(_repository(tmp_path), triton, min_heal_interval_s=3600)
    _serving(agent, {"risk": [3]})
    triton.broken = {("risk", 3)}
    assert agent.probe_all() == ["risk"]
    triton.broken = {("risk", 3)}
    assert agent.probe_all() == []
    assert not agent.status()["ready"]


def test_ensembles_are_not_probed_their_steps_are(agent: ServingAgent, triton: FakeTriton) -> None:
    _serving(agent, {"sentiment": [1], "tokenizer": [1]})
    agent.probe_all()
    assert agent.status()["ready"]
    samples = agent.metrics.registry.get_sample_value(
        "trademaster_served_model_healthy", {"model_name": "sentiment", "model_version": "1"}
    )
    assert samples is None


def test_health_series_of_a_withdrawn_version_go(agent: ServingAgent, triton: FakeTriton) -> None:
    _serving(agent, {"risk": [3, 5]})
    agent.probe_all()
    _serving(agent, {"risk": [5]})
    labels = {"model_name": "risk", "model_version": "3"}
    assert (
        agent.metrics.registry.get_sample_value("trademaster_served_model_healthy", labels) is None
    )


def test_probe_inputs_follow_the_config(tmp_path: Path) -> None:
    repository = _repository(tmp_path)
    risk = ModelDefinition.read(repository, "risk").probe_inputs()
    assert risk["features"].shape == (1, 12)
    assert risk["features"].dtype == np.float32
    text = ModelDefinition.read(repository, "tokenizer").probe_inputs()["text"]
    assert text.shape == (1, 1)
    assert text.dtype == np.object_


def test_the_override_serves_exactly_the_versions_and_keeps_the_config(tmp_path: Path) -> None:
    definition = ModelDefinition.read(_repository(tmp_path), "risk")
    override = json.loads(definition.override((3, 5)))
    assert override["version_policy"] == {"specific": {"versions": ["3", "5"]}}
    assert override["backend"] == "python"
    assert override["max_batch_size"] == 64
