"""Converge one Triton on the manifest, and heal what stops answering.

Each ``reconcile``: read the manifest and every listed model's config; load a model whose
ready versions differ from the manifest's or whose config changed since it was loaded (steps
before the ensembles that call them); unload every ready model the manifest does not list.
Each ``probe_all``: one real inference per served version (ensembles excepted: their steps
are probed); a version whose probe Triton answers with a failure (or that gets no answer
twice running) is healed by loading its model again, which restarts its backend processes.

``status()`` is what ``/ready`` answers and what the metrics say. The loop that calls these
and the HTTP endpoints are in ``trademaster.serving.__main__``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from trademaster.contract.served_versions import manifest_path, read_manifest
from trademaster.serving.triton_control import (
    NO_ANSWER,
    ModelConfigError,
    ModelDefinition,
    TritonControl,
)

log = logging.getLogger(__name__)


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.converged = Gauge(
            "trademaster_serving_agent_converged",
            "1 when this Triton serves exactly the manifest's versions, else 0",
            registry=self.registry,
        )
        self.healthy = Gauge(
            "trademaster_served_model_healthy",
            "1 when the version's last probe inference answered, else 0",
            ["model_name", "model_version"],
            registry=self.registry,
        )
        self.heals = Counter(
            "trademaster_served_model_heals",
            "Reloads of a model after its probe inference failed",
            ["model_name"],
            registry=self.registry,
        )
        self.load_failures = Counter(
            "trademaster_serving_agent_load_failures",
            "Loads or unloads Triton refused or that could not be sent",
            ["model_name"],
            registry=self.registry,
        )
        self.last_reconcile = Gauge(
            "trademaster_serving_agent_last_reconcile_timestamp_seconds",
            "When the agent last compared Triton with the manifest",
            registry=self.registry,
        )


@dataclass
class _Served:
    definition: ModelDefinition
    versions: tuple[int, ...]


class ServingAgent:
    def __init__(
        self,
        repository: Path,
        control: TritonControl,
        heal_after_failed_passes: int = 1,
        min_heal_interval_s: float = 10.0,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.repository = repository
        self.control = control
        self.heal_after_failed_passes = heal_after_failed_passes
        self.min_heal_interval_s = min_heal_interval_s
        self._last_heal: dict[str, float] = {}
        self.metrics = metrics or AgentMetrics()
        self._lock = threading.Lock()
        self._desired: dict[str, tuple[int, ...]] = {}
        self._ready: dict[str, set[int]] = {}
        # What was loaded, per model (config digest + versions): a change loads again.
        self._applied: dict[str, _Served] = {}
        self._problems: dict[str, str] = {}
        # Consecutive failed probe passes, and the last probe's error (None: it answered); a
        # version not in ``_last_probe`` was not probed yet, and ready needs every one probed.
        self._failures: dict[tuple[str, int], int] = {}
        self._last_probe: dict[tuple[str, int], str | None] = {}
        self._reachable = False
        self._reconciled_once = False

    # --- convergence -------------------------------------------------------------------
    def reconcile(self) -> bool:
        """One pass; returns whether Triton now serves exactly the manifest."""
        problems: dict[str, str] = {}
        try:
            desired = read_manifest(self.repository)
        except ValueError as exc:
            # Keep serving what is loaded: a broken manifest must not unload everything.
            log.error("%s", exc)
            return self._record(self._desired, {"manifest": str(exc)}, reachable=self._reachable)
        try:
            ready = self.control.ready_versions()
        except Exception as exc:  # Triton down or starting: retried next pass
            return self._record(desired, {"triton": f"not reachable: {exc}"}, reachable=False)
        if not manifest_path(self.repository).is_file():
            # Nothing published yet (a repository from before the manifest): keep and heal
            # what Triton serves, unload nothing.
            desired = {name: tuple(sorted(versions)) for name, versions in ready.items()}
        definitions: dict[str, ModelDefinition] = {}
        for name in desired:
            try:
                definitions[name] = ModelDefinition.read(self.repository, name)
            except ModelConfigError as exc:
                problems[name] = str(exc)
        # Steps first: an ensemble's load needs them ready.
        changed = False
        for name in sorted(definitions, key=lambda n: (definitions[n].is_ensemble, n)):
            definition, versions = definitions[name], desired[name]
            applied = self._applied.get(name)
            serving_them = ready.get(name, set()) == set(versions)
            if applied is None and serving_them:
                # Loaded before this agent started (its Triton's --load-model, an earlier
                # agent): adopted as it is, not loaded a second time.
                self._applied[name] = _Served(definition, versions)
                continue
            current = (
                applied is not None
                and applied.definition.digest == definition.digest
                and applied.versions == versions
            )
            if current and serving_them:
                continue
            changed = True
            if error := self._load(name, definition, versions, "converging"):
                problems[name] = error
        for name in sorted(set(ready) - set(desired)):
            changed = True
            try:
                log.info("unloading %s (not in the manifest)", name)
                self.control.unload(name)
                self._applied.pop(name, None)
            except Exception as exc:  # retried next pass
                self.metrics.load_failures.labels(name).inc()
                problems[name] = f"unload failed: {exc}"
        if changed:  # what Triton serves now, after the loads and unloads
            try:
                ready = self.control.ready_versions()
            except Exception as exc:
                return self._record(desired, {"triton": f"not reachable: {exc}"}, reachable=False)
        for name, versions in desired.items():
            if name not in problems and ready.get(name, set()) != set(versions):
                problems[name] = (
                    f"ready versions {sorted(ready.get(name, ()))}, manifest {list(versions)}"
                )
        with self._lock:
            self._ready = ready
        return self._record(desired, problems, reachable=True)

    def _load(
        self, name: str, definition: ModelDefinition, versions: tuple[int, ...], why: str
    ) -> str | None:
        log.info("loading %s versions %s (%s)", name, list(versions), why)
        try:
            self.control.load(name, definition.override(versions))
        except Exception as exc:  # Triton's refusal is reported, then retried
            self.metrics.load_failures.labels(name).inc()
            self._applied.pop(name, None)
            log.error("loading %s failed: %s", name, exc)
            return f"load failed: {exc}"
        # Probe failures stay until a probe answers: the outage lasts until then.
        self._applied[name] = _Served(definition, versions)
        return None

    def _record(
        self, desired: dict[str, tuple[int, ...]], problems: dict[str, str], reachable: bool
    ) -> bool:
        with self._lock:
            self._desired = dict(desired)
            self._problems = problems
            self._reachable = reachable
            self._reconciled_once = True
        converged = reachable and not problems
        self.metrics.converged.set(1 if converged else 0)
        self.metrics.last_reconcile.set_to_current_time()
        self._forget_gone_versions()
        return converged

    def _forget_gone_versions(self) -> None:
        with self._lock:
            wanted = {(n, v) for n, versions in self._desired.items() for v in versions}
            for key in set(self._failures) - wanted:
                self._failures.pop(key)
            for key in set(self._last_probe) - wanted:
                self._last_probe.pop(key)
        for metric in self.metrics.healthy.collect():
            for sample in metric.samples:
                key = (sample.labels["model_name"], int(sample.labels["model_version"]))
                if key not in wanted:
                    self.metrics.healthy.remove(*sample.labels.values())

    # --- healing -----------------------------------------------------------------------
    def probe_all(self) -> list[str]:
        """Probes every served version; returns the models healed in this pass."""
        healed = []
        with self._lock:
            targets = [
                (name, self._applied[name])
                for name in self._desired
                if name in self._applied and not self._applied[name].definition.is_ensemble
            ]
        for name, served in targets:
            try:
                inputs = served.definition.probe_inputs()
            except ModelConfigError as exc:
                with self._lock:
                    self._problems[name] = str(exc)
                continue
            broken = []
            for version in served.versions:
                error = self.control.probe(name, version, inputs)
                if error is not None and error.startswith(NO_ANSWER):
                    # Once more at once: one lost answer is not a crash.
                    error = self.control.probe(name, version, inputs)
                self._set_health(name, version, error)
                if error is not None:
                    broken.append(version)
            if broken and self._due_for_healing(name, broken):
                log.warning("%s versions %s fail their probe: reloading", name, broken)
                self.metrics.heals.labels(name).inc()
                self._last_heal[name] = time.monotonic()
                if self._heal(name, served, broken) is None:
                    healed.append(name)
        return healed

    def _heal(self, name: str, served: _Served, broken: list[int]) -> str | None:
        """Drops the broken versions first, then loads the full set again. (Loading the same
        set at once can leave a version whose backend process died in place: its old
        instance never finishes unloading, and requests keep reaching it.)"""
        remaining = tuple(v for v in served.versions if v not in broken)
        try:
            if remaining:
                self.control.load(name, served.definition.override(remaining))
            else:
                self.control.unload(name)
        except Exception as exc:  # reported; the full load below is tried all the same
            log.error("dropping %s versions %s failed: %s", name, broken, exc)
        return self._load(name, served.definition, served.versions, "healing")

    def _set_health(self, name: str, version: int, error: str | None) -> None:
        key = (name, version)
        with self._lock:
            self._last_probe[key] = error
            if error is None:
                self._failures.pop(key, None)
            else:
                self._failures[key] = self._failures.get(key, 0) + 1
        self.metrics.healthy.labels(name, str(version)).set(0 if error else 1)

    def _due_for_healing(self, name: str, versions: list[int]) -> bool:
        # A model that stays broken is reloaded every ``min_heal_interval_s``, not every pass.
        if time.monotonic() - self._last_heal.get(name, -math.inf) < self.min_heal_interval_s:
            return False
        with self._lock:
            return any(
                self._failures.get((name, v), 0) >= self.heal_after_failed_passes for v in versions
            )

    # --- what /ready says --------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            models = {
                name: {
                    "versions": list(versions),
                    "ready_versions": sorted(self._ready.get(name, ())),
                    "failing_versions": {
                        str(v): error
                        for v in versions
                        if (error := self._last_probe.get((name, v))) is not None
                    },
                    **({"problem": self._problems[name]} if name in self._problems else {}),
                }
                for name, versions in sorted(self._desired.items())
            }
            others = {k: v for k, v in self._problems.items() if k not in self._desired}
            probed = {
                (name, v)
                for name, versions in self._desired.items()
                if not (served := self._applied.get(name)) or not served.definition.is_ensemble
                for v in versions
            }
            healthy = all(
                key in self._last_probe and self._last_probe[key] is None for key in probed
            )
            converged = self._reconciled_once and self._reachable and not self._problems
        return {
            "ready": converged and healthy,
            "converged": converged,
            "healthy": healthy,
            "models": models,
            **({"problems": others} if others else {}),
        }


def run_forever(
    agent: ServingAgent,
    reconcile_interval_s: float,
    probe_interval_s: float,
    stop: threading.Event,
) -> None:
    """Reconciles at once and then every ``reconcile_interval_s``; probes in between."""
    next_reconcile = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_reconcile:
            agent.reconcile()
            next_reconcile = now + reconcile_interval_s
        agent.probe_all()
        stop.wait(probe_interval_s)
