"""The Triton replicas the gateway calls: balanced per call, ejected when they fail, taken
back when they answer again.

``GATEWAY_TRITON_GRPC_URL`` lists them, comma-separated: ``host:port`` is one replica;
``dns:///host:port`` is every address the name resolves to, re-resolved on each catalog
refresh (a Kubernetes headless Service such as ``triton-pods``: pods that start or stop join or
leave without a restart).

Two kinds of failure, kept apart:
- a replica that cannot be reached (connection refused or dropped) is ejected as a whole
  until ``eject_s`` has passed and its repository index answers again;
- a version that fails on a replica that answers (a crashed backend process, a version just
  unloaded) is skipped on that replica only, for ``eject_s``, while the serving agent heals it.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

DNS_PREFIX = "dns:///"

Resolver = Callable[[str, int], Awaitable[list[str]]]
Clock = Callable[[], float]


class Closeable(Protocol):
    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Closeable)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    resolve: bool  # dns:///: one replica per address the name has

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoints(value: str) -> tuple[Endpoint, ...]:
    """``host:port[,host:port|dns:///host:port...]``; ValueError names the bad item."""
    endpoints = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        resolve = item.startswith(DNS_PREFIX)
        host, _, port = item.removeprefix(DNS_PREFIX).rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port or dns:///host:port")
        endpoints.append(Endpoint(host, int(port), resolve))
    if not endpoints:
        raise ValueError("no Triton address given")
    return tuple(dict.fromkeys(endpoints))


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` has now (a headless Service: one per ready pod)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({_address(str(info[4][0]), port) for info in infos})


@dataclass
class Replica(Generic[ClientT]):
    address: str
    client: ClientT
    # The replica answered its last repository index (and is not ejected).
    reachable: bool = False
    ejected_until: float = 0.0
    # What its last repository index said: model -> ready versions.
    ready: dict[str, frozenset[int]] = field(default_factory=dict)
    # (model, version) -> until when it is skipped here.
    failing: dict[tuple[str, int], float] = field(default_factory=dict)
    in_flight: int = 0
    last_error: str = ""

    def serves(self, model: str, version: int, now: float) -> bool:
        # ``reachable`` is False until an index answers after ``ejected_until``.
        return (
            self.reachable
            and version in self.ready.get(model, ())
            and self.failing.get((model, version), 0.0) <= now
        )


class ReplicaSet(Generic[ClientT]):
    """The replicas and their health; picks one per call (fewest calls in flight, then
    round-robin)."""

    def __init__(
        self,
        endpoints: Iterable[Endpoint],
        connect: Callable[[str], ClientT],
        eject_s: float,
        resolver: Resolver = resolve_addresses,
        clock: Clock = time.monotonic,
    ) -> None:
        self._endpoints = tuple(endpoints)
        self._connect = connect
        self._eject_s = eject_s
        self._resolver = resolver
        self._clock = clock
        self._replicas: dict[str, Replica[ClientT]] = {}
        self._resolved: dict[Endpoint, list[str]] = {}
        self._turn = itertools.count()
        for endpoint in self._endpoints:
            if not endpoint.resolve:
                self._add(endpoint.address)

    @property
    def replicas(self) -> list[Replica[ClientT]]:
        return list(self._replicas.values())

    def _add(self, address: str) -> None:
        if address not in self._replicas:
            self._replicas[address] = Replica(address, self._connect(address))

    async def sync(self) -> None:
        """Re-resolves the dns:/// endpoints; a name that does not resolve keeps its last
        addresses (a DNS hiccup must not empty the set)."""
        resolving = [endpoint for endpoint in self._endpoints if endpoint.resolve]
        if not resolving:
            return
        answers = await asyncio.gather(
            *(self._resolver(endpoint.host, endpoint.port) for endpoint in resolving),
            return_exceptions=True,
        )
        for endpoint, answer in zip(resolving, answers, strict=True):
            if isinstance(answer, list):
                self._resolved[endpoint] = answer
        wanted = {endpoint.address for endpoint in self._endpoints if not endpoint.resolve} | {
            address for addresses in self._resolved.values() for address in addresses
        }
        for address in sorted(wanted - self._replicas.keys()):
            self._add(address)
        for address in sorted(self._replicas.keys() - wanted):
            await self._replicas.pop(address).client.close()

    def indexed(self, replica: Replica[ClientT], ready: dict[str, frozenset[int]]) -> None:
        """Its repository index answered: it is reachable again once its ejection ran out."""
        now = self._clock()
        replica.ready = ready
        replica.reachable = now >= replica.ejected_until
        if replica.reachable:
            replica.last_error = ""
        replica.failing = {key: until for key, until in replica.failing.items() if until > now}

    def unreachable(self, replica: Replica[ClientT], reason: str) -> None:
        replica.reachable = False
        replica.ejected_until = self._clock() + self._eject_s
        replica.last_error = reason

    def version_failed(self, replica: Replica[ClientT], model: str, version: int) -> None:
        replica.failing[(model, version)] = self._clock() + self._eject_s

    def pick(self, model: str, version: int, tried: set[str]) -> Replica[ClientT] | None:
        """The replica for the next call to ``model`` ``version``; None when every replica
        that has it was tried."""
        now = self._clock()
        candidates = [
            replica
            for replica in self._replicas.values()
            if replica.address not in tried and replica.serves(model, version, now)
        ]
        if not candidates:
            # None healthy: try those that have the version anyway (an ejection is a
            # preference, so one replica that blipped still gets its calls).
            candidates = [
                replica
                for replica in self._replicas.values()
                if replica.address not in tried and version in replica.ready.get(model, ())
            ]
        if not candidates:
            return None
        turn = next(self._turn)
        fewest = min(replica.in_flight for replica in candidates)
        least_busy = [replica for replica in candidates if replica.in_flight == fewest]
        return least_busy[turn % len(least_busy)]

    def answering(self, model: str, version: int) -> int:
        """How many replicas have ``model`` ``version`` loaded without it just failing there
        (0: it fails on every replica that has it, e.g. a crashed backend process)."""
        now = self._clock()
        return sum(
            version in replica.ready.get(model, ())
            and replica.failing.get((model, version), 0.0) <= now
            for replica in self._replicas.values()
        )

    def health(self) -> dict[str, str]:
        """Each replica as /ready reports it: "up", or why it is out."""
        return {
            replica.address: "up"
            if replica.reachable
            else f"out: {replica.last_error or 'not indexed yet'}"
            for replica in self._replicas.values()
        }

    async def close(self) -> None:
        for replica in self._replicas.values():
            await replica.client.close()
        self._replicas.clear()
