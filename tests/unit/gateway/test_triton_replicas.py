"""Per-call balancing, ejection and failover across Triton replicas (clients behind a seam:
the real three-tritonserver case is tests/integration/test_triton_replicas.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from tritonclient.utils import InferenceServerException

from gateway.catalog import ModelCatalog
from gateway.errors import InferenceFailed, InvalidRequest
from gateway.triton import TritonGateway
from gateway.triton_replicas import Endpoint, ReplicaSet, parse_endpoints
from tests.unit.gateway.test_triton import CONFIG

MODEL = "risk-assessment-model"
UNAVAILABLE = "StatusCode.UNAVAILABLE"


class Result:
    def __init__(self, address: str) -> None:
        self.address = address

    def as_numpy(self, name: str) -> np.ndarray:
        return np.array([[0.5]], np.float32)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Replica:
    """One Triton replica: its ready versions and how its next calls fail."""

    def __init__(self, address: str, versions: set[int]) -> None:
        self.address = address
        self.versions = versions
        self.down = False
        self.fails: dict[int, InferenceServerException] = {}  # version -> its error
        self.calls: list[int] = []
        self.closed = False

    async def get_model_repository_index(self, **_: Any) -> dict[str, Any]:
        if self.down:
            raise InferenceServerException("failed to connect to all addresses", UNAVAILABLE)
        return {
            "models": [
                {"name": MODEL, "version": str(version), "state": "READY"}
                for version in sorted(self.versions)
            ]
        }

    async def get_model_config(self, name: str, **_: Any) -> dict[str, Any]:
        return {"config": CONFIG}

    async def infer(self, name: str, inputs: Any, model_version: str, **_: Any) -> Result:
        version = int(model_version)
        if self.down:
            raise InferenceServerException("Socket closed", UNAVAILABLE)
        self.calls.append(version)
        if version in self.fails:
            raise self.fails[version]
        if version not in self.versions:
            raise InferenceServerException(
                f"Request for unknown model: '{name}' version {version} is not found",
                "StatusCode.NOT_FOUND",
            )
        await asyncio.sleep(0)
        return Result(self.address)

    async def close(self) -> None:
        self.closed = True


class Cluster:
    def __init__(
        self, *versions: set[int], url: str = "", eject_s: float = 5.0, subnet: str = "10.0.0"
    ) -> None:
        self.clock = Clock()
        self.subnet = subnet
        self.replicas = {
            f"{subnet}.{i + 1}:8001": Replica(f"{subnet}.{i + 1}:8001", v)
            for i, v in enumerate(versions)
        }
        self.dns: list[str] | Exception = list(self.replicas)
        url = url or ",".join(self.replicas)
        replica_set: Any = ReplicaSet(
            parse_endpoints(url), self._connect, eject_s, self._resolve, self.clock
        )
        self.triton = TritonGateway(url, 1.0, replicas=replica_set)

    def _connect(self, address: str) -> Replica:
        return self.replicas[address]

    async def _resolve(self, host: str, port: int) -> list[str]:
        if isinstance(self.dns, Exception):
            raise self.dns
        return list(self.dns)

    def replica(self, n: int) -> Replica:
        return self.replicas[f"{self.subnet}.{n}:8001"]

    def calls(self) -> Counter[int]:
        return Counter({n + 1: len(r.calls) for n, r in enumerate(self.replicas.values())})


def _served(cluster: Cluster) -> Any:
    entries = asyncio.run(cluster.triton.repository())
    return entries[0]


def _infer(cluster: Cluster, version: int | None = None, times: int = 1) -> list[Any]:
    entry = _served(cluster)
    model = entry.by_version[version] if version else entry.served

    async def calls() -> list[Any]:
        return [
            await cluster.triton.infer(model, {"features": np.ones((1, 3), np.float32)})
            for _ in range(times)
        ]

    return asyncio.run(calls())


# --- addresses -------------------------------------------------------------------------------


def test_addresses_are_host_port_lists_and_dns_names() -> None:
    assert parse_endpoints(" triton-0:8001, dns:///triton-pods.ns.svc:8001,[::1]:9001 ") == (
        Endpoint("triton-0", 8001, False),
        Endpoint("triton-pods.ns.svc", 8001, True),
        Endpoint("::1", 9001, False),
    )
    assert parse_endpoints("a:1,a:1") == (Endpoint("a", 1, False),)


@pytest.mark.parametrize("bad", ["", " , ", "triton", "triton:", "triton:http", ":8001", "a:0"])
def test_a_bad_address_list_is_refused_with_the_item(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not host:port|no Triton address"):
        parse_endpoints(bad)


def test_the_settings_refuse_a_bad_address_at_start() -> None:
    from pydantic import ValidationError

    from gateway.settings import GatewaySettings

    with pytest.raises(ValidationError, match="'triton-1' is not host:port"):
        GatewaySettings(triton_grpc_url="triton-0:8001,triton-1")


# --- balancing and failover ------------------------------------------------------------------


def test_calls_are_spread_over_every_replica() -> None:
    cluster = Cluster({1}, {1}, {1})
    _infer(cluster, times=30)
    assert cluster.calls() == Counter({1: 10, 2: 10, 3: 10})


def test_an_unreachable_replica_is_ejected_and_taken_back_when_it_answers() -> None:
    cluster = Cluster({1}, {1}, {1})
    cluster.replica(2).down = True
    # Not one call fails: the one that met replica 2 went on to the next.
    assert len(_infer(cluster, times=12)) == 12
    served_by_2 = len(cluster.replica(2).calls)
    assert served_by_2 == 0
    assert cluster.triton.replica_health()["10.0.0.2:8001"].startswith("out: ")
    failures_before = cluster.calls()

    cluster.replica(2).down = False
    _infer(cluster, times=6)  # indexed again, but still ejected: eject_s has not passed
    assert len(cluster.replica(2).calls) == 0
    cluster.clock.now += 6
    _infer(cluster, times=6)
    assert len(cluster.replica(2).calls) == 2
    assert cluster.triton.replica_health()["10.0.0.2:8001"] == "up"
    assert sum(cluster.calls().values()) > sum(failures_before.values())


def test_a_version_failing_on_one_replica_is_skipped_there_only() -> None:
    cluster = Cluster({1, 2}, {1, 2}, {1, 2})
    crashed = InferenceServerException("Stub process is not healthy.", "StatusCode.INTERNAL")
    cluster.replica(1).fails[2] = crashed
    assert len(_infer(cluster, version=2, times=9)) == 9
    assert cluster.replica(1).calls == [2]  # tried once, then skipped
    # Version 1 on the same replica still takes its share.
    _infer(cluster, version=1, times=3)
    assert cluster.replica(1).calls.count(1) == 1
    # Healed (the agent reloaded it): back after eject_s.
    del cluster.replica(1).fails[2]
    cluster.clock.now += 6
    _infer(cluster, version=2, times=3)
    assert cluster.replica(1).calls.count(2) == 2


def test_a_version_failing_everywhere_is_an_inference_failure_naming_the_replicas() -> None:
    cluster = Cluster({1}, {1})
    for n in (1, 2):
        cluster.replica(n).fails[1] = InferenceServerException("boom", "StatusCode.INTERNAL")
    with pytest.raises(InferenceFailed, match=r"2 replica\(s\) tried\): 10\.0\.0\.\d:8001: boom"):
        _infer(cluster)


def test_a_version_failing_on_every_replica_makes_the_model_unready() -> None:
    cluster = Cluster({1}, {1})
    catalog = ModelCatalog(cluster.triton, 60.0, [MODEL])
    asyncio.run(catalog.refresh())
    assert catalog.required_ready() == {MODEL: True}
    for n in (1, 2):
        cluster.replica(n).fails[1] = InferenceServerException("Stub", "StatusCode.INTERNAL")
    with pytest.raises(InferenceFailed):
        _infer(cluster)
    assert catalog.required_ready() == {MODEL: False}
    cluster.clock.now += 6
    assert catalog.required_ready() == {MODEL: True}


def test_an_invalid_request_is_not_retried() -> None:
    cluster = Cluster({1}, {1})
    cluster.replica(1).fails[1] = InferenceServerException(
        "infeasible portfolio", "StatusCode.INVALID_ARGUMENT"
    )
    cluster.replica(2).fails[1] = cluster.replica(1).fails[1]
    with pytest.raises(InvalidRequest, match="infeasible portfolio"):
        _infer(cluster)
    assert sum(cluster.calls().values()) == 1


def test_a_timeout_is_not_retried_on_another_replica() -> None:
    cluster = Cluster({1}, {1})
    for n in (1, 2):
        cluster.replica(n).fails[1] = InferenceServerException(
            "Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"
        )
    with pytest.raises(InferenceFailed, match=r"1 replica\(s\) tried"):
        _infer(cluster)


def test_one_replica_that_blipped_still_gets_its_calls() -> None:
    cluster = Cluster({1})
    cluster.replica(1).fails[1] = InferenceServerException("Socket closed", UNAVAILABLE)
    with pytest.raises(InferenceFailed):
        _infer(cluster)
    del cluster.replica(1).fails[1]
    # Ejected, but the only one that has the version: tried rather than failing outright.
    assert len(_infer(cluster)) == 1


def test_no_replica_answering_the_index_is_an_unreachable_triton() -> None:
    cluster = Cluster({1}, {1})
    for n in (1, 2):
        cluster.replica(n).down = True
    with pytest.raises(InferenceServerException, match="failed to connect"):
        asyncio.run(cluster.triton.repository())


# --- versions during a rollout ---------------------------------------------------------------


def test_the_default_is_the_newest_version_on_every_replica() -> None:
    # A promotion half-way: replica 1 loaded version 2, the others not yet.
    cluster = Cluster({1, 2}, {1}, {1})
    entry = _served(cluster)
    assert entry.versions == (1, 2)
    assert entry.served.version == 1
    cluster.replica(2).versions.add(2)
    cluster.replica(3).versions.add(2)
    assert _served(cluster).served.version == 2


def test_with_no_common_version_the_newest_is_called_only_where_it_is_loaded() -> None:
    cluster = Cluster({2}, {1}, {1})
    assert _served(cluster).served.version == 2
    _infer(cluster, times=6)
    assert cluster.calls() == Counter({1: 6, 2: 0, 3: 0})


def test_a_version_just_unloaded_goes_to_a_replica_that_still_has_it() -> None:
    cluster = Cluster({1}, {1})
    entry = _served(cluster)
    cluster.replica(1).versions = {2}  # unloaded after the last index was read

    async def call() -> Any:
        return await cluster.triton.infer(entry.served, {"features": np.ones((1, 3), np.float32)})

    for _ in range(4):
        asyncio.run(call())
    assert cluster.replica(1).calls == [1]
    assert cluster.replica(2).calls == [1, 1, 1, 1]  # the first after the failed try


# --- replicas found through DNS --------------------------------------------------------------


def test_a_dns_name_follows_the_pods_it_resolves_to() -> None:
    # Addresses of this test only: the up gauge is the process's, shared with other tests.
    cluster = Cluster({1}, {1}, {1}, url="dns:///triton-pods:8001", subnet="10.9.0")
    cluster.dns = ["10.9.0.1:8001", "10.9.0.2:8001"]
    _infer(cluster, times=4)
    assert cluster.calls() == Counter({1: 2, 2: 2, 3: 0})

    cluster.dns = list(cluster.replicas)  # scaled out
    _infer(cluster, times=3)
    assert cluster.calls()[3] == 1

    cluster.dns = OSError("Temporary failure in name resolution")
    _infer(cluster, times=3)  # the last addresses are kept
    assert set(cluster.triton.replica_health()) == set(cluster.replicas)

    assert _up_series("10.9.0.") == dict.fromkeys(cluster.replicas, 1.0)

    cluster.dns = ["10.9.0.2:8001"]  # scaled in
    _infer(cluster, times=2)
    assert set(cluster.triton.replica_health()) == {"10.9.0.2:8001"}
    assert cluster.replica(1).closed
    assert cluster.replica(3).closed
    assert _up_series("10.9.0.") == {"10.9.0.2:8001": 1.0}  # the gone pods' series go


def _up_series(subnet: str) -> dict[str, float]:
    return {
        sample.labels["replica"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "ml_triton_replica_up"
        for sample in metric.samples
        if sample.labels["replica"].startswith(subnet)
    }
