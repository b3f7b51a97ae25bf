"""What the agent asks of one Triton (gRPC, explicit model control), behind a small seam.

A load carries the model's whole config as an override with ``version_policy: specific``, so
Triton serves exactly the manifest's versions whatever the config file on disk says (an
override replaces the file's config; it is not merged with it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import tritonclient.grpc as grpcclient
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from trademaster.contract.probe import InputShape, probe_inputs

CONFIG_FILE = "config.pbtxt"
# How a probe that got no answer at all (timeout, reset) starts: worth a second try at once,
# unlike Triton's own answer that the model failed.
NO_ANSWER = "no answer: "
# Triton's answer to a request the model itself refused: the model ran, so it is alive.
_REFUSED_BY_MODEL = "StatusCode.INVALID_ARGUMENT"
_NO_ANSWER_STATUSES = frozenset({"StatusCode.DEADLINE_EXCEEDED", "StatusCode.UNAVAILABLE"})


class ModelConfigError(ValueError):
    """A model folder whose config cannot be read or parsed."""


@dataclass(frozen=True)
class ModelDefinition:
    """A model's config as read from the repository, and the probe request built from it."""

    name: str
    config: model_config_pb2.ModelConfig
    digest: str  # of the config file: a changed config is loaded again

    @classmethod
    def read(cls, repository: Path, name: str) -> ModelDefinition:
        path = repository / name / CONFIG_FILE
        try:
            text = path.read_text()
            config = text_format.Parse(text, model_config_pb2.ModelConfig())
        except (OSError, text_format.ParseError) as exc:
            raise ModelConfigError(f"{path}: {exc}") from exc
        if config.name and config.name != name:
            raise ModelConfigError(f"{path} names model {config.name!r}, not {name!r}")
        return cls(name, config, hashlib.sha256(text.encode()).hexdigest())

    @property
    def is_ensemble(self) -> bool:
        """An ensemble runs no code of its own: its steps are probed and healed."""
        return self.config.platform == "ensemble"

    def override(self, versions: tuple[int, ...]) -> str:
        """The config as JSON, serving exactly ``versions``."""
        config = model_config_pb2.ModelConfig()
        config.CopyFrom(self.config)
        config.name = self.name
        config.version_policy.specific.versions[:] = list(versions)
        return json_format.MessageToJson(config, preserving_proto_field_name=True)

    def probe_inputs(self) -> dict[str, np.ndarray]:
        """The probe request (``trademaster.contract.probe``) of this config."""
        shapes = [
            InputShape(
                tensor.name,
                model_config_pb2.DataType.Name(tensor.data_type),
                list(tensor.dims),
                tensor.optional,
            )
            for tensor in self.config.input
        ]
        try:
            return probe_inputs(shapes, batched=self.config.max_batch_size > 0)
        except ValueError as exc:
            raise ModelConfigError(f"{self.name}: {exc}") from exc


class TritonControl(Protocol):
    def ready_versions(self) -> dict[str, set[int]]: ...

    def load(self, name: str, config_json: str) -> None: ...

    def unload(self, name: str) -> None: ...

    def probe(self, name: str, version: int, inputs: dict[str, np.ndarray]) -> str | None:
        """None when the model answered; else what went wrong."""
        ...


class GrpcTritonControl:
    """``TritonControl`` over Triton's gRPC API (the gateway image, which runs the agent, has
    the gRPC client only); a call that gets no answer raises, and the agent retries it."""

    def __init__(self, address: str, control_timeout_s: float, probe_timeout_s: float) -> None:
        self.address = address
        self._client = grpcclient.InferenceServerClient(address)
        self._control_timeout_s = control_timeout_s
        self._probe_timeout_s = probe_timeout_s

    def close(self) -> None:
        self._client.close()

    def ready_versions(self) -> dict[str, set[int]]:
        index = self._client.get_model_repository_index(
            as_json=True, client_timeout=self._control_timeout_s
        )
        ready: dict[str, set[int]] = {}
        for entry in index.get("models", []):
            if entry.get("state") == "READY" and str(entry.get("version", "")).isdigit():
                ready.setdefault(entry["name"], set()).add(int(entry["version"]))
        return ready

    def load(self, name: str, config_json: str) -> None:
        self._client.load_model(name, config=config_json, client_timeout=self._control_timeout_s)

    def unload(self, name: str) -> None:
        self._client.unload_model(name, client_timeout=self._control_timeout_s)

    def probe(self, name: str, version: int, inputs: dict[str, np.ndarray]) -> str | None:
        request = []
        for input_name, array in inputs.items():
            datatype = (
                "BYTES" if array.dtype == np.object_ else str(np_to_triton_dtype(array.dtype))
            )
            tensor = grpcclient.InferInput(input_name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        try:
            self._client.infer(
                name, request, model_version=str(version), client_timeout=self._probe_timeout_s
            )
        except InferenceServerException as exc:
            status = str(exc.status())
            if status == _REFUSED_BY_MODEL:
                return None
            if status in _NO_ANSWER_STATUSES:
                return f"{NO_ANSWER}{exc.message()}"
            return exc.message() or str(exc)
        except Exception as exc:  # a reset connection or the like: no answer
            return f"{NO_ANSWER}{type(exc).__name__}: {exc}"
        return None
