"""Triton over gRPC (asyncio): which versions are served, and inference calls."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from gateway.errors import InferenceFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A model version ready in Triton, with what its config says about its inputs."""

    name: str
    version: int
    feature_service: str
    feature_names: tuple[str, ...]
    input_name: str
    output_name: str
    task: str


@dataclass(frozen=True)
class RepositoryEntry:
    name: str
    state: str
    served: ServedModel | None


def _parameter(config: dict[str, Any], key: str, default: str = "") -> str:
    value = config.get("parameters", {}).get(key, {})
    return str(value.get("string_value", default))


def served_model_from_config(name: str, version: int, config: dict[str, Any]) -> ServedModel:
    features = _parameter(config, "feature_names")
    return ServedModel(
        name=name,
        version=version,
        feature_service=_parameter(config, "feature_service"),
        feature_names=tuple(f for f in features.split(",") if f),
        input_name=config["input"][0]["name"],
        output_name=config["output"][0]["name"],
        task=_parameter(config, "task", "binary_classification"),
    )


class TritonGateway:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._client = grpcclient.InferenceServerClient(url=url)
        self._timeout_s = timeout_s
        self._configs: dict[tuple[str, int], dict[str, Any]] = {}

    async def close(self) -> None:
        await self._client.close()

    async def is_live(self) -> bool:
        try:
            return bool(await self._client.is_server_live(client_timeout=self._timeout_s))
        except (InferenceServerException, OSError):
            return False

    async def repository(self) -> list[RepositoryEntry]:
        """Every model in the repository, with its newest ready version if any."""
        index = await self._client.get_model_repository_index(
            as_json=True, client_timeout=self._timeout_s
        )
        ready: dict[str, int] = {}
        states: dict[str, str] = {}
        for model in index.get("models", []):
            name, state = model["name"], model.get("state", "UNKNOWN")
            if state == "READY" and model.get("version"):
                ready[name] = max(ready.get(name, 0), int(model["version"]))
            states.setdefault(name, state)
            if state == "READY":
                states[name] = state
        entries = []
        for name, state in states.items():
            served = None
            if name in ready:
                config = await self._config(name, ready[name])
                served = served_model_from_config(name, ready[name], config)
            entries.append(RepositoryEntry(name, state, served))
        return entries

    async def _config(self, name: str, version: int) -> dict[str, Any]:
        key = (name, version)
        if key not in self._configs:
            response = await self._client.get_model_config(
                name, as_json=True, client_timeout=self._timeout_s
            )
            self._configs[key] = response["config"]
        return self._configs[key]

    async def infer(self, model: ServedModel, rows: np.ndarray) -> np.ndarray:
        """Runs ``rows`` (batch x features) through the exact version in ``model``."""
        request_input = grpcclient.InferInput(model.input_name, list(rows.shape), "FP32")
        request_input.set_data_from_numpy(rows.astype(np.float32, copy=False))
        try:
            result = await self._client.infer(
                model.name,
                [request_input],
                model_version=str(model.version),
                outputs=[grpcclient.InferRequestedOutput(model.output_name)],
                client_timeout=self._timeout_s,
            )
        except InferenceServerException as exc:
            raise InferenceFailed(
                f"Triton could not serve {model.name} version {model.version}: {exc.message()}",
                model_name=model.name,
            ) from exc
        output = result.as_numpy(model.output_name)
        if output is None:
            raise InferenceFailed(f"Triton returned no output for {model.name}")
        return output
