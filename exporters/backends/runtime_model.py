"""Triton python-backend runner for an exported model (copied as `<version>/model.py`).

Serves `model.onnx` with ONNX Runtime or `model.pt` with TorchScript, as the config's
`runtime` and `model_filename` parameters say. Triton's stub executes this file with the
serving virtualenv (numpy < 2); the main package never imports it.

All requests of a dynamic batch go to the runtime in ONE call; if that call fails, each
request is run alone, so a bad request gets its own error and the others still succeed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

Arrays = list[np.ndarray]


def _log(level: str, message: str) -> None:
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        getattr(logger, f"log_{level}")(message)
    else:
        print(message, flush=True)


def _load_onnx(path: Path, threads: int) -> Callable[[Arrays], Arrays]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]

    def run(inputs: Arrays) -> Arrays:
        return list(session.run(output_names, dict(zip(input_names, inputs, strict=True))))

    return run


def _load_torchscript(path: Path, threads: int) -> Callable[[Arrays], Arrays]:
    import torch

    torch.set_num_threads(threads)
    module = torch.jit.load(str(path), map_location="cpu")
    module.eval()

    def run(inputs: Arrays) -> Arrays:
        with torch.inference_mode():
            result = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        return [t.detach().cpu().numpy() for t in outputs]

    return run


_LOADERS = {"onnx": _load_onnx, "torchscript": _load_torchscript}


class TritonPythonModel:
    """Triton python-backend model: one runtime call per dynamic batch."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {
            key: value["string_value"] for key, value in config.get("parameters", {}).items()
        }
        runtime = parameters.get("runtime", "onnx")
        if runtime not in _LOADERS:
            raise pb_utils.TritonModelException(f"unknown runtime parameter {runtime!r}")
        default_file = "model.onnx" if runtime == "onnx" else "model.pt"
        artifact = (
            Path(args["model_repository"])
            / args["model_version"]
            / parameters.get("model_filename", default_file)
        )
        threads = int(parameters.get("intra_op_threads", "1"))
        self.model_name = config["name"]
        self.batching = int(config.get("max_batch_size", 0)) > 0
        self.input_names = [i["name"] for i in config["input"]]
        self.input_dtypes = [
            pb_utils.triton_string_to_numpy(i["data_type"]) for i in config["input"]
        ]
        self.output_names = [o["name"] for o in config["output"]]
        self.output_dtypes = [
            pb_utils.triton_string_to_numpy(o["data_type"]) for o in config["output"]
        ]
        self.run = _LOADERS[runtime](artifact, threads)
        # Says which environment the stub picked (it must be the serving venv, numpy < 2).
        _log(
            "info",
            f"{self.model_name}: serving {artifact} with {runtime} "
            f"(python {sys.prefix}, numpy {np.__version__})",
        )

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        batch: list[tuple[int, Arrays]] = []
        for index, request in enumerate(requests):
            try:
                batch.append((index, self._read_inputs(request)))
            except Exception as exc:
                responses[index] = self._error(exc)
        if len(batch) > 1 and self.batching:
            try:
                for (index, _), outputs in zip(batch, self._run_batched(batch), strict=True):
                    responses[index] = self._response(outputs)
                return responses
            except Exception as exc:
                _log(
                    "warn",
                    f"{self.model_name}: batched call over {len(batch)} requests failed "
                    f"({exc}); falling back to one call per request",
                )
        for index, inputs in batch:
            try:
                responses[index] = self._response(self._run_checked(inputs))
            except Exception as exc:
                responses[index] = self._error(exc)
        return responses

    def _read_inputs(self, request: Any) -> Arrays:
        arrays = []
        for name, dtype in zip(self.input_names, self.input_dtypes, strict=True):
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name!r}")
            arrays.append(np.asarray(tensor.as_numpy(), dtype=dtype))
        return arrays

    def _run_checked(self, inputs: Arrays) -> Arrays:
        outputs = self.run(inputs)
        if len(outputs) != len(self.output_names):
            raise ValueError(
                f"runtime returned {len(outputs)} outputs, config declares {len(self.output_names)}"
            )
        return [
            np.asarray(out, dtype=dtype)
            for out, dtype in zip(outputs, self.output_dtypes, strict=True)
        ]

    def _run_batched(self, batch: list[tuple[int, Arrays]]) -> list[Arrays]:
        sizes = [inputs[0].shape[0] for _, inputs in batch]
        merged = [
            np.concatenate([inputs[position] for _, inputs in batch], axis=0)
            for position in range(len(self.input_names))
        ]
        outputs = self._run_checked(merged)
        total = sum(sizes)
        for name, out in zip(self.output_names, outputs, strict=True):
            if out.shape[0] != total:
                raise ValueError(f"output {name!r} has {out.shape[0]} rows for {total} inputs")
        splits = np.cumsum(sizes)[:-1]
        per_output = [np.split(out, splits, axis=0) for out in outputs]
        return [list(parts) for parts in zip(*per_output, strict=True)]

    def _response(self, outputs: Arrays) -> Any:
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(out))
            for name, out in zip(self.output_names, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _error(self, exc: Exception) -> Any:
        return pb_utils.InferenceResponse(
            output_tensors=[], error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
        )
