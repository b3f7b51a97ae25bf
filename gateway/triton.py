"""Triton over gRPC (asyncio): which versions are served, and inference calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from gateway import metrics
from gateway.errors import InferenceFailed, InvalidRequest
from trademaster.contract.parameters import ContractError, Parameter, TaskKind, parse_parameters

log = logging.getLogger(__name__)

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
    if model.task is TaskKind.PORTFOLIO_OPTIMIZATION and model.max_batch_size != 0:
        # Its inputs have no batch dimension: splitting a batch would split a portfolio.
        raise ContractError(f"{model.name}: a {model.task} model needs max_batch_size 0")
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


class TritonGateway:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = grpcclient.InferenceServerClient(url=url)
        self._timeout_s = timeout_s
        self._configs: dict[str, dict[str, Any]] = {}
        self._versions_seen: dict[str, tuple[int, ...]] = {}
        # The served models built from each config, reused until the config is re-read (their
        # parsed parameters are cached on them; rebuilding on every refresh would redo it).
        self._served: dict[str, tuple[dict[str, Any], dict[int, ServedModel]]] = {}

    async def close(self) -> None:
        await self._client.close()

    async def repository(self) -> list[RepositoryEntry]:
        """Every model in the repository with its ready versions (newest is the default)."""
        index = await self._client.get_model_repository_index(
            as_json=True, client_timeout=self._timeout_s
        )
        ready: dict[str, set[int]] = {}
        states: dict[str, str] = {}
        for model in index.get("models", []):
            name, state = model["name"], model.get("state", "UNKNOWN")
            if state == "READY" and model.get("version"):
                ready.setdefault(name, set()).add(int(model["version"]))
                states[name] = state
            else:
                states.setdefault(name, state)
        entries = []
        for name, state in states.items():
            versions = tuple(sorted(ready.get(name, ())))
            if not versions:
                entries.append(RepositoryEntry(name, state))
                continue
            # A new set of versions may come with a new config (exports rewrite it).
            changed = self._versions_seen.get(name) != versions
            config = await self._config(name, refresh=changed)
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
                    entries.append(RepositoryEntry(name, state, versions, problem=str(exc)))
                    continue
                self._served[name] = (config, by_version)
            entries.append(
                RepositoryEntry(name, state, versions, by_version[versions[-1]], by_version)
            )
        return entries

    async def _config(self, name: str, refresh: bool) -> dict[str, Any]:
        if refresh or name not in self._configs:
            response = await self._client.get_model_config(
                name, as_json=True, client_timeout=self._timeout_s
            )
            self._configs[name] = response["config"]
        return self._configs[name]

    async def infer(
        self,
        model: ServedModel,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """One call to the exact version in ``model``; arrays include the batch dimension."""
        request_inputs = []
        for name, array in inputs.items():
            datatype = "BYTES" if array.dtype == np.object_ else np_to_triton_dtype(array.dtype)
            tensor = grpcclient.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            request_inputs.append(tensor)
        wanted = list(outputs or model.output_names)
        started = time.perf_counter()
        try:
            result = await self._client.infer(
                model.name,
                request_inputs,
                model_version=str(model.version),
                outputs=[grpcclient.InferRequestedOutput(name) for name in wanted],
                client_timeout=self._timeout_s,
            )
        except InferenceServerException as exc:
            if "INVALID_ARGUMENT" in str(exc.status()):
                # The model refused these inputs (e.g. an infeasible portfolio): client error.
                raise InvalidRequest(f"{model.name}: {exc.message()}") from exc
            raise InferenceFailed(
                f"Triton could not serve {model.name} version {model.version}: {exc.message()}",
                model_name=model.name,
            ) from exc
        finally:
            metrics.TRITON_DURATION.labels(model.name, str(model.version)).observe(
                time.perf_counter() - started
            )
        arrays = {}
        for name in wanted:
            array = result.as_numpy(name)
            if array is None:
                raise InferenceFailed(f"Triton returned no {name} for {model.name}")
            arrays[name] = array
        return arrays
