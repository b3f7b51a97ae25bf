"""The smallest request a served model must answer: one row of zeros per required input (text:
``b"probe"``), shaped from its Triton config, a variable dim taken as 1. The serving agent
probes every served version with it; the gateway warms each version with it before a worker
serves its first request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROBE_TEXT = b"probe"
NUMPY_TYPES: Mapping[str, type[np.generic]] = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
}


@dataclass(frozen=True)
class InputShape:
    """A config input as the probe needs it: ``dims`` without the batch dimension."""

    name: str
    data_type: str  # "TYPE_FP32", "TYPE_STRING", ...
    dims: Sequence[int]
    optional: bool = False


def probe_inputs(inputs: Iterable[InputShape], batched: bool) -> dict[str, np.ndarray]:
    """The probe request of a model with these ``inputs`` (``batched``: max_batch_size > 0,
    so a batch dimension of 1 leads); ValueError for an input type it cannot fill."""
    arrays: dict[str, np.ndarray] = {}
    batch = [1] if batched else []
    for tensor in inputs:
        if tensor.optional:
            continue
        shape = batch + [d if d > 0 else 1 for d in tensor.dims]
        if tensor.data_type == "TYPE_STRING":
            arrays[tensor.name] = np.full(shape, PROBE_TEXT, dtype=np.object_)
        elif tensor.data_type in NUMPY_TYPES:
            arrays[tensor.name] = np.zeros(shape, dtype=NUMPY_TYPES[tensor.data_type])
        else:
            raise ValueError(f"input {tensor.name!r}: cannot probe type {tensor.data_type}")
    return arrays


def input_shapes_from_json(config: Mapping[str, Any]) -> list[InputShape]:
    """The inputs of a config as Triton's ``get_model_config(as_json=True)`` returns it
    (proto3 JSON: dims as strings, defaults left out)."""
    return [
        InputShape(
            str(tensor["name"]),
            str(tensor.get("data_type", "TYPE_INVALID")),
            [int(dim) for dim in tensor.get("dims", [])],
            bool(tensor.get("optional", False)),
        )
        for tensor in config.get("input", [])
    ]
