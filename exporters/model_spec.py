"""One description of a served model, from which every Triton config is generated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from trademaster.contract.parameters import Parameter

DataType = Literal["FP32", "INT64", "INT32", "BYTES"]
Runtime = Literal["onnx", "torchscript"]

DATA_TYPES: tuple[DataType, ...] = ("FP32", "INT64", "INT32", "BYTES")
RUNTIMES: tuple[Runtime, ...] = ("onnx", "torchscript")
ARTIFACT_NAMES: Mapping[Runtime, str] = {"onnx": "model.onnx", "torchscript": "model.pt"}
# Parameters the exporter writes itself; a spec may not set them.
RESERVED_PARAMETERS = frozenset({Parameter.RUNTIME, Parameter.MODEL_FILENAME})

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output. `dims` leave out the batch dimension; -1 means variable."""

    name: str
    data_type: DataType
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid tensor name {self.name!r}")
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"tensor {self.name!r}: data_type must be one of {DATA_TYPES}")
        if not self.dims or any(d == 0 or d < -1 for d in self.dims):
            raise ValueError(
                f"tensor {self.name!r}: dims must be non-empty, each > 0 or -1, got {self.dims}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """What Triton needs to know about a model, for both the CPU and the GPU target.

    `parameters` are the contract's keys (``trademaster.contract.parameters``): what the
    gateway reads, and knobs of the CPU python-backend runner (e.g. `intra_op_threads`).
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 1024
    preferred_batch_sizes: tuple[int, ...] = (8, 32, 128)
    max_queue_delay_us: int = 500
    cpu_instance_count: int = 1
    gpu_instance_count: int = 1
    parameters: Mapping[Parameter, str] = field(default_factory=dict)
    runtime: Runtime = "onnx"
    # The newest N versions stay loaded, so a canary or shadow can run beside the primary.
    versions_served: int = 2

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"invalid model name {self.name!r}")
        if not self.inputs or not self.outputs:
            raise ValueError(f"model {self.name!r} needs at least one input and one output")
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r}: tensor names must be unique, got {names}")
        if self.max_batch_size < 0:
            raise ValueError(f"model {self.name!r}: max_batch_size must be >= 0")
        if any(not 0 < size <= self.max_batch_size for size in self.preferred_batch_sizes):
            raise ValueError(
                f"model {self.name!r}: preferred_batch_sizes {self.preferred_batch_sizes} must "
                f"lie in 1..max_batch_size ({self.max_batch_size})"
            )
        if self.max_queue_delay_us < 0:
            raise ValueError(f"model {self.name!r}: max_queue_delay_us must be >= 0")
        if self.cpu_instance_count < 1 or self.gpu_instance_count < 1:
            raise ValueError(f"model {self.name!r}: instance counts must be >= 1")
        if self.versions_served < 1:
            raise ValueError(f"model {self.name!r}: versions_served must be >= 1")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"model {self.name!r}: runtime must be one of {RUNTIMES}")
        reserved = RESERVED_PARAMETERS & set(self.parameters)
        if reserved:
            raise ValueError(f"model {self.name!r}: parameters {sorted(reserved)} are reserved")

    @property
    def artifact_name(self) -> str:
        """The file name the runtime loads from a version folder."""
        return ARTIFACT_NAMES[self.runtime]
