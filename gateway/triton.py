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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A model version ready in Triton, with what its config says about how to call it."""

    name: str
    version: int
    task: str
    parameters: Mapping[str, str]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def parameter(self, key: str, default: str = "") -> str:
        return self.parameters.get(key, default)

    def parameter_list(self, key: str) -> tuple[str, ...]:
        return tuple(item for item in self.parameter(key).split(",") if item)

    def parameter_floats(self, key: str) -> tuple[float, ...]:
        return tuple(float(item) for item in self.parameter_list(key))

    @property
    def feature_service(self) -> str | None:
        return self.parameter("feature_service") or None

    # Parsed once per served version (cached_property writes the instance __dict__ directly,
    # which a frozen dataclass allows).
    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return self.parameter_list("feature_names")

    @cached_property
    def class_labels(self) -> tuple[str, ...]:
        return self.parameter_list("class_labels")

    @cached_property
    def feature_bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.parameter_floats("feature_min"), self.parameter_floats("feature_max")

    @cached_property
    def feature_reference(self) -> tuple[float, ...]:
        return self.parameter_floats("feature_reference")


@dataclass(frozen=True)
class RepositoryEntry:
    name: str
    state: str
    versions: tuple[int, ...] = ()
    served: ServedModel | None = None
    by_version: Mapping[int, ServedModel] = field(default_factory=dict)


def served_model_from_config(name: str, version: int, config: dict[str, Any]) -> ServedModel:
    parameters = {
        key: str(value.get("string_value", ""))
        for key, value in config.get("parameters", {}).items()
    }
    return ServedModel(
        name=name,
        version=version,
        task=parameters.get("task", "binary_classification"),
        parameters=parameters,
        input_names=tuple(tensor["name"] for tensor in config.get("input", [])),
        output_names=tuple(tensor["name"] for tensor in config.get("output", [])),
    )


class TritonGateway:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = grpcclient.InferenceServerClient(url=url)
        self._timeout_s = timeout_s
        self._configs: dict[str, dict[str, Any]] = {}
        self._versions_seen: dict[str, tuple[int, ...]] = {}

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
            by_version = {v: served_model_from_config(name, v, config) for v in versions}
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
