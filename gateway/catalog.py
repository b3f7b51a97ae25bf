"""The gateway's view of which model versions Triton serves, refreshed in the background.

The cache key holds the version, so the catalog decides which cached answers are valid; it
re-reads Triton every ``refresh_interval_s`` and whenever an inference reveals a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tritonclient.utils import InferenceServerException

from gateway import metrics
from gateway.errors import InferenceFailed, ModelNotFound, ModelNotReady
from gateway.triton import RepositoryEntry, ServedModel, TritonGateway
from trademaster.contract.deployment_status import read_statuses
from trademaster.contract.parameters import TaskKind

log = logging.getLogger(__name__)

# Steps of an ensemble are served through the ensemble, never called by clients.
HIDDEN_TASKS = frozenset({TaskKind.ENSEMBLE_STEP})


def _hidden(entry: RepositoryEntry) -> bool:
    return entry.served is not None and entry.served.task in HIDDEN_TASKS


class ModelCatalog:
    def __init__(
        self,
        triton: TritonGateway,
        refresh_interval_s: float,
        required: Sequence[str],
        deployment_status: Path | None = None,
    ) -> None:
        self._triton = triton
        self._interval = refresh_interval_s
        self._required = tuple(required)
        self._status_path = deployment_status
        self._not_deployed: dict[str, str] = {}
        self._entries: dict[str, RepositoryEntry] = {}
        self._problems: dict[str, str] = {}  # as last logged, so each is logged once
        self._reachable = False
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    def on_refresh(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Also run ``listener`` on every periodic refresh (e.g. reload rollouts)."""
        self._listeners.append(listener)

    @property
    def reachable(self) -> bool:
        return self._reachable

    def entries(self) -> list[RepositoryEntry]:
        visible = (entry for entry in self._entries.values() if not _hidden(entry))
        return sorted(visible, key=lambda entry: entry.name)

    def required_ready(self) -> dict[str, bool]:
        """Each required model: ready when some replica serves its default version and that
        version has not just failed on every replica that has it."""
        return {
            name: bool(
                self._reachable
                and (entry := self._entries.get(name))
                and entry.served
                and self._triton.answering(entry.served) > 0
            )
            for name in self._required
        }

    def replicas(self) -> dict[str, str]:
        return self._triton.replica_health()

    def not_deployed(self) -> dict[str, str]:
        """Catalog models the exporter never deployed (no champion), with the reason; a
        model Triton has is never listed here."""
        return {
            name: reason
            for name, reason in sorted(self._not_deployed.items())
            if name not in self._entries
        }

    def _read_deployment_status(self) -> None:
        if self._status_path is None:
            return
        try:
            statuses = read_statuses(self._status_path)
        except (OSError, ValueError) as exc:  # keep the last good view
            log.warning("cannot read %s: %s", self._status_path, exc)
            return
        self._not_deployed = {
            name: status.reason for name, status in statuses.items() if not status.deployed
        }

    async def refresh(self) -> None:
        self._read_deployment_status()
        try:
            entries = await self._triton.repository()
        except (InferenceServerException, OSError) as exc:
            if self._reachable:
                log.warning("Triton unreachable: %s", exc)
            self._reachable = False
            for name in self._entries:
                metrics.MODEL_READY.labels(name).set(0)
            return
        self._reachable = True
        self._entries = {entry.name: entry for entry in entries}
        for entry in entries:
            metrics.MODEL_READY.labels(entry.name).set(1 if entry.served else 0)
        self._log_problems()

    def _log_problems(self) -> None:
        problems = {entry.name: entry.problem for entry in self._entries.values() if entry.problem}
        for name, problem in sorted(problems.items()):
            if self._problems.get(name) != problem:
                log.error("model %s is not served: %s", name, problem)
        for name in sorted(self._problems.keys() - problems.keys()):
            log.info("model %s: its config is served again", name)
        self._problems = problems

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name="model-catalog-refresh")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
                for listener in self._listeners:
                    await listener()
            except Exception:  # a refresh must never kill the loop
                log.exception("model catalog refresh failed")

    def knows(self, name: str) -> bool:
        entry = self._entries.get(name)
        return (entry is not None and not _hidden(entry)) or name in self._not_deployed

    def entry(self, name: str) -> RepositoryEntry:
        """The model's repository entry with a ready version; 404 / 503 otherwise."""
        self.resolve(name)
        return self._entries[name]

    def resolve(self, name: str) -> ServedModel:
        """The served version of ``name``; 404 if Triton does not know it, 503 if not loaded."""
        if not self._reachable:
            raise InferenceFailed("Triton is unreachable; try again shortly", model_name=name)
        entry = self._entries.get(name)
        if entry is None and name in self._not_deployed:
            raise ModelNotReady(
                f"model '{name}' is not deployed: {self._not_deployed[name]}", model_name=name
            )
        if entry is None or _hidden(entry):
            names = [entry.name for entry in self.entries()] + list(self.not_deployed())
            known = ", ".join(sorted(names)) or "none"
            raise ModelNotFound(f"unknown model '{name}' (known models: {known})")
        if entry.served is None and entry.problem is not None:
            raise ModelNotReady(
                f"model '{name}' cannot be served: {entry.problem}", model_name=name
            )
        if entry.served is None:
            raise ModelNotReady(
                f"model '{name}' is not loaded in Triton (state {entry.state})", model_name=name
            )
        return entry.served
