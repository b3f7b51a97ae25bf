"""Triton over gRPC (asyncio): which versions are served, and inference calls."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from gateway import metrics
from gateway.errors import InferenceFailed, InvalidRequest
from gateway.triton_replicas import Replica, ReplicaSet, parse_endpoints
from trademaster.contract.parameters import ContractError, Parameter, TaskKind, parse_parameters
from trademaster.contract.probe import input_shapes_from_json, probe_inputs

log = logging.getLogger(__name__)

FailureKind = Literal["request", "timeout", "unreachable", "version_failed"]

_TABULAR = frozenset({TaskKind.BINARY_CLASSIFICATION, TaskKind.MULTICLASS_CLASSIFICATION})
_LABELLED = frozenset({TaskKind.MULTICLASS_CLASSIFICATION, TaskKind.TEXT_SENTIMENT})


@dataclass(frozen=True)
class ServedModel:
    """A model version ready in Triton, with what its config says about how to call it.

    Built by ``served_model_from_config``, which refuses a config that breaks the contract;
    the typed views below are parsed once per served version (``cached_property`` writes the
    instance ``__dict__`` directly, which a frozen dataclass allows).
    """

    name: str
    version: int
    task: TaskKind
    parameters: Mapping[Parameter, str]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    # Rows per Triton call; 0: the model takes no batch dimension (one request per call).
    max_batch_size: int

    def parameter(self, key: Parameter) -> str:
        try:
            return self.parameters[key]
        except KeyError:
            raise ContractError(f"{self.name}: config has no {key} parameter") from None

    def parameter_list(self, key: Parameter) -> tuple[str, ...]:
        return tuple(item for item in self.parameter(key).split(",") if item)

    def parameter_floats(self, key: Parameter) -> tuple[float, ...]:
        try:
            return tuple(float(item) for item in self.parameter_list(key))
        except ValueError:
            raise ContractError(f"{self.name}: {key} is not a list of numbers") from None

    def parameter_int(self, key: Parameter) -> int:
        try:
            return int(self.parameter(key))
        except ValueError:
            raise ContractError(f"{self.name}: {key} is not an integer") from None

    @property
    def feature_service(self) -> str | None:
        """The Feast feature service the model reads, if it reads one."""
        return self.parameters.get(Parameter.FEATURE_SERVICE)

    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        if Parameter.FEATURE_NAMES not in self.parameters:
            return ()
        return self.parameter_list(Parameter.FEATURE_NAMES)

    @cached_property
    def class_labels(self) -> tuple[str, ...]:
        return self.parameter_list(Parameter.CLASS_LABELS)

    @cached_property
    def feature_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return (
            self.parameter_floats(Parameter.FEATURE_MIN),
            self.parameter_floats(Parameter.FEATURE_MAX),
        )

    @cached_property
    def feature_reference(self) -> tuple[float, ...]:
        return self.parameter_floats(Parameter.FEATURE_REFERENCE)

    @cached_property
    def window_shape(self) -> tuple[int, int]:
        """(steps, features) of a sequence model's input window."""
        return self.parameter_int(Parameter.WINDOW), self.parameter_int(Parameter.FEATURES)

    @cached_property
    def interval_level(self) -> float:
        """The nominal coverage of the model's prediction interval."""
        try:
            return float(self.parameter(Parameter.INTERVAL))
        except ValueError:
            raise ContractError(f"{self.name}: {Parameter.INTERVAL} is not a number") from None


# The input of a batched portfolio optimizer counting each padded row's real holdings.
PORTFOLIO_HOLDINGS = "holdings"


def _check_values(model: ServedModel) -> None:
    """Parses what the gateway reads of ``model``'s task now, so a malformed value fails
    the model's load (ContractError) rather than a request."""
    if model.task in _TABULAR:
        names = model.feature_names
        low, high = model.feature_bounds
        lengths = {len(names), len(low), len(high), len(model.feature_reference)}
        if not names or len(lengths) != 1:
            raise ContractError(
                f"{model.name}: {Parameter.FEATURE_NAMES}, {Parameter.FEATURE_REFERENCE}, "
                f"{Parameter.FEATURE_MIN} and {Parameter.FEATURE_MAX} must have the same "
                "non-zero length"
            )
    if model.task in _LABELLED and not model.class_labels:
        raise ContractError(f"{model.name}: {Parameter.CLASS_LABELS} is empty")
    if (
        model.task is TaskKind.PORTFOLIO_OPTIMIZATION
        and model.max_batch_size != 0
        and PORTFOLIO_HOLDINGS not in model.input_names
    ):
        # A batch dimension is one row per portfolio, padded: without a count of each row's
        # holdings the padding would be taken for holdings.
        raise ContractError(
            f"{model.name}: a {model.task} model taking batches needs a "
            f"{PORTFOLIO_HOLDINGS!r} input (or max_batch_size 0: one portfolio per call)"
        )
    if model.task is TaskKind.REGRESSION_INTERVAL:
        steps, features = model.window_shape
        if steps < 1 or features < 1:
            raise ContractError(f"{model.name}: window shape {steps} x {features} is empty")
        if not 0 < model.interval_level < 1:
            raise ContractError(
                f"{model.name}: {Parameter.INTERVAL} {model.interval_level} is not in (0, 1)"
            )


@dataclass(frozen=True)
class RepositoryEntry:
    name: str
    state: str
    versions: tuple[int, ...] = ()
    served: ServedModel | None = None
    by_version: Mapping[int, ServedModel] = field(default_factory=dict)
    # Why Triton's ready versions cannot be served (their config breaks the contract).
    problem: str | None = None


def served_model_from_config(name: str, version: int, config: Mapping[str, Any]) -> ServedModel:
    """``config`` is Triton's model config as JSON; ContractError names what is wrong."""
    raw = {
        key: str(value.get("string_value", ""))
        for key, value in config.get("parameters", {}).items()
    }
    task, parameters = parse_parameters(name, raw)
    try:
        # proto3 JSON leaves out zero values: no max_batch_size means 0 (no batching).
        max_batch_size = int(config.get("max_batch_size", 0))
    except (TypeError, ValueError):
        raise ContractError(f"{name}: max_batch_size is not an integer") from None
    model = ServedModel(
        name=name,
        version=version,
        task=task,
        parameters=parameters,
        input_names=tuple(tensor["name"] for tensor in config.get("input", [])),
        output_names=tuple(tensor["name"] for tensor in config.get("output", [])),
        max_batch_size=max_batch_size,
    )
    _check_values(model)
    return model


def _index_versions(index: Mapping[str, Any]) -> tuple[dict[str, frozenset[int]], dict[str, str]]:
    """A repository index as (model -> ready versions, model -> state)."""
    ready: dict[str, set[int]] = {}
    states: dict[str, str] = {}
    for model in index.get("models", []):
        name, state = model["name"], model.get("state", "UNKNOWN")
        if state == "READY" and model.get("version"):
            ready.setdefault(name, set()).add(int(model["version"]))
            states[name] = state
        else:
            states.setdefault(name, state)
    return {name: frozenset(versions) for name, versions in ready.items()}, states


def _default_version(name: str, ready_on: Sequence[Mapping[str, frozenset[int]]]) -> int:
    """The newest version every replica that serves ``name`` has ready; the newest anywhere
    while no version is on all of them. A promotion thus moves traffic to the new version
    once every replica loaded it, not onto the first replica that did."""
    sets = [ready[name] for ready in ready_on if ready.get(name)]
    common = frozenset.intersection(*sets)
    return max(common or frozenset.union(*sets))


def _failure_kind(exc: InferenceServerException) -> FailureKind:
    status, message = str(exc.status()), str(exc.message()).lower()
    if "INVALID_ARGUMENT" in status and "unknown model" not in message:
        return "request"
    if "DEADLINE_EXCEEDED" in status:
        return "timeout"
    if "UNAVAILABLE" in status and "model" not in message:
        return "unreachable"  # refused, reset or gone: the whole replica
    return "version_failed"  # this version on this replica (a crashed backend, unloaded)


class TritonGateway:
    """Triton behind one or more replicas (``gateway.triton_replicas``): the repository as
    all of them serve it, and each inference on one replica, failed over to the next."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        eject_s: float = 5.0,
        replicas: ReplicaSet[grpcclient.InferenceServerClient] | None = None,
    ) -> None:
        """``replicas``: a seam for tests (clients that are not gRPC)."""
        self._replicas = replicas or ReplicaSet(parse_endpoints(url), self._connect, eject_s)
        self._timeout_s = timeout_s
        self._configs: dict[str, dict[str, Any]] = {}
        self._versions_seen: dict[str, tuple[int, ...]] = {}
        self._reported_replicas: set[str] = set()  # the labels of ml_triton_replica_up
        # The served models built from each config, reused until the config is re-read (their
        # parsed parameters are cached on them; rebuilding on every refresh would redo it).
        self._served: dict[str, tuple[dict[str, Any], dict[int, ServedModel]]] = {}

    @staticmethod
    def _connect(address: str) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(url=address)

    async def close(self) -> None:
        await self._replicas.close()

    async def _index(self, replica: Replica[grpcclient.InferenceServerClient]) -> dict[str, Any]:
        index: dict[str, Any] = await replica.client.get_model_repository_index(
            as_json=True, client_timeout=self._timeout_s
        )
        return index

    async def repository(self) -> list[RepositoryEntry]:
        """Every model any replica has, with the versions ready on at least one (the default
        is ``_default_version``); raises when no replica answers."""
        await self._replicas.sync()
        replicas = self._replicas.replicas
        answers = await asyncio.gather(
            *(self._index(replica) for replica in replicas), return_exceptions=True
        )
        ready_on: list[tuple[Replica[grpcclient.InferenceServerClient], dict[str, frozenset[int]]]]
        ready_on = []
        states: dict[str, str] = {}
        failure: BaseException | None = None
        for replica, answer in zip(replicas, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, InferenceServerException | OSError):
                    raise answer
                failure = failure or answer
                self._replicas.unreachable(replica, str(answer))
            else:
                ready, replica_states = _index_versions(answer)
                self._replicas.indexed(replica, ready)
                ready_on.append((replica, ready))
                for name, state in replica_states.items():
                    if state == "READY" or name not in states:
                        states[name] = state
            metrics.TRITON_REPLICA_UP.labels(replica.address).set(1 if replica.reachable else 0)
        self._forget_gone_replicas({replica.address for replica in replicas})
        if not ready_on:
            raise failure or InferenceServerException("no Triton replica is configured")
        entries = []
        for name, state in states.items():
            versions = tuple(sorted(set().union(*(ready.get(name, ()) for _, ready in ready_on))))
            if not versions:
                entries.append(RepositoryEntry(name, state))
                continue
            default = _default_version(name, [ready for _, ready in ready_on])
            source = next(replica for replica, ready in ready_on if default in ready.get(name, ()))
            entry = await self._entry(name, state, versions, default, source)
            entries.append(entry)
        return entries

    def _forget_gone_replicas(self, current: set[str]) -> None:
        """Drops the up series of replicas the set no longer has (scaled in), so that the
        gauge lists the replicas the gateway calls, not every pod it ever saw."""
        for address in self._reported_replicas - current:
            metrics.TRITON_REPLICA_UP.remove(address)
        self._reported_replicas = current

    async def _entry(
        self,
        name: str,
        state: str,
        versions: tuple[int, ...],
        default: int,
        source: Replica[grpcclient.InferenceServerClient],
    ) -> RepositoryEntry:
        # A new set of versions may come with a new config (exports rewrite it).
        changed = self._versions_seen.get(name) != versions
        config = await self._config(source, name, refresh=changed)
        self._versions_seen[name] = versions
        cached = self._served.get(name)
        if cached is not None and cached[0] is config and set(cached[1]) == set(versions):
            by_version = cached[1]
        else:
            try:
                by_version = {v: served_model_from_config(name, v, config) for v in versions}
            except ContractError as exc:
                # Re-read next time: a fix may keep the versions.
                self._configs.pop(name, None)
                self._served.pop(name, None)
                return RepositoryEntry(name, state, versions, problem=str(exc))
            self._served[name] = (config, by_version)
        return RepositoryEntry(name, state, versions, by_version[default], by_version)

    async def _config(
        self, source: Replica[grpcclient.InferenceServerClient], name: str, refresh: bool
    ) -> dict[str, Any]:
        if refresh or name not in self._configs:
            response = await source.client.get_model_config(
                name, as_json=True, client_timeout=self._timeout_s
            )
            self._configs[name] = response["config"]
        return self._configs[name]

    def replica_health(self) -> dict[str, str]:
        return self._replicas.health()

    def probe_inputs(self, model: ServedModel) -> dict[str, np.ndarray]:
        """The smallest request ``model`` must answer (``trademaster.contract.probe``), from
        its config as last read; ValueError for an input type it cannot fill."""
        config = self._configs.get(model.name, {})
        return probe_inputs(input_shapes_from_json(config), batched=model.max_batch_size > 0)

    def answering(self, model: ServedModel) -> int:
        """How many replicas have ``model``'s version without it just failing there."""
        return self._replicas.answering(model.name, model.version)

    async def infer(
        self,
        model: ServedModel,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One call to the exact version in ``model``; arrays include the batch dimension.
        A replica that fails the call is marked and the call goes to the next one."""
        request_inputs = []
        for name, array in inputs.items():
            datatype = "BYTES" if array.dtype == np.object_ else np_to_triton_dtype(array.dtype)
            tensor = grpcclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            request_inputs.append(tensor)
        wanted = list(outputs or model.output_names)
        requested = [grpcclient.InferRequestedOutput(name) for name in wanted]
        tried: set[str] = set()
        failure = "no Triton replica serves it now"
        while (replica := self._replicas.pick(model.name, model.version, tried)) is not None:
            tried.add(replica.address)
            replica.in_flight += 1
            started = time.perf_counter()
            try:
                result = await replica.client.infer(
                    model.name,
                    request_inputs,
                    model_version=str(model.version),
                    outputs=requested,
                    client_timeout=self._timeout_s,
                )
            except InferenceServerException as exc:
                kind = _failure_kind(exc)
                if kind == "request":
                    # The model refused these inputs (e.g. an infeasible portfolio).
                    raise InvalidRequest(f"{model.name}: {exc.message()}") from exc
                failure = f"{replica.address}: {exc.message()}"
                metrics.TRITON_REPLICA_FAILURES.labels(replica.address, model.name, kind).inc()
                if kind == "unreachable":
                    self._replicas.unreachable(replica, str(exc.message()))
                else:
                    self._replicas.version_failed(replica, model.name, model.version)
                if kind == "timeout":
                    break  # another replica would only double a slow answer's wait
                log.warning(
                    "%s v%s failed on %s (%s); next replica",
                    model.name,
                    model.version,
                    replica.address,
                    kind,
                )
                continue
            finally:
                replica.in_flight -= 1
                metrics.TRITON_DURATION.labels(model.name, str(model.version)).observe(
                    time.perf_counter() - started
                )
            return _arrays(model, result, wanted)
        raise InferenceFailed(
            f"Triton could not serve {model.name} version {model.version} "
            f"({len(tried)} replica(s) tried): {failure}",
            model_name=model.name,
        )


def _arrays(
    model: ServedModel, result: grpcclient.InferResult, wanted: Sequence[str]
) -> dict[str, np.ndarray]:
    arrays = {}
    for name in wanted:
        array = result.as_numpy(name)
        if array is None:
            raise InferenceFailed(f"Triton returned no {name} for {model.name}")
        arrays[name] = array
    return arrays
