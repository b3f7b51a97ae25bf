"""Render Triton `config.pbtxt` files (CPU and GPU targets) and lay out model-repository entries.

CPU target (this project's machines, `tritonserver` with the python backend only): the
`runtime_model.py` runner serves `model.onnx` with ONNX Runtime or `model.pt` with TorchScript.
GPU target (the NGC image, `--model-config-name=gpu`): the native `onnxruntime` backend with the
TensorRT execution accelerator, or the native `pytorch` backend.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from exporters.cpu_batching import CpuBatching, tuned_settings
from exporters.model_spec import ModelSpec, TensorSpec
from trademaster.contract.atomic_file import replacing
from trademaster.contract.parameters import Parameter

GPU_CONFIG_NAME = "gpu"
RUNNER_TEMPLATE = Path(__file__).resolve().parent / "backends" / "runtime_model.py"
DEFAULT_RUNNER_PARAMETERS: Mapping[Parameter, str] = {Parameter.INTRA_OP_THREADS: "1"}
TRT_WORKSPACE_BYTES = 1 << 30

_TRITON_TYPES = {"FP32": "TYPE_FP32", "INT64": "TYPE_INT64", "INT32": "TYPE_INT32"}


def triton_data_type(data_type: str) -> str:
    """The config enum for a spec data type (`BYTES` is `TYPE_STRING` in a config)."""
    return _TRITON_TYPES.get(data_type, "TYPE_STRING")


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _int_list(values: Iterable[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def tensor_lines(section: str, tensors: Iterable[TensorSpec]) -> list[str]:
    blocks = [
        "\n".join(
            [
                "  {",
                f"    name: {quote(t.name)}",
                f"    data_type: {triton_data_type(t.data_type)}",
                f"    dims: {_int_list(t.dims)}",
                "  }",
            ]
        )
        for t in tensors
    ]
    return [f"{section} [", ",\n".join(blocks), "]"]


def instance_group_lines(count: int, kind: str) -> list[str]:
    return ["instance_group [", "  {", f"    count: {count}", f"    kind: {kind}", "  }", "]"]


def dynamic_batching_lines(spec: ModelSpec, batcher: bool = True) -> list[str]:
    if spec.max_batch_size == 0 or not batcher:
        return []
    lines = ["dynamic_batching {"]
    if spec.preferred_batch_sizes:
        lines.append(f"  preferred_batch_size: {_int_list(spec.preferred_batch_sizes)}")
    lines += [f"  max_queue_delay_microseconds: {spec.max_queue_delay_us}", "}"]
    return lines


WARMUP_RUNS = 2


def warmup_lines(spec: ModelSpec) -> list[str]:
    """Zero-filled requests Triton runs before it reports the model ready, so the first
    client request does not pay for lazy initialisation (TorchScript optimises on its first
    two calls; measured 200-300 ms, past a loaded machine's 2 s deadline). Only for batched
    models whose inputs are all numeric with fixed dims; others get none."""
    numeric = all(t.data_type in _TRITON_TYPES and all(d > 0 for d in t.dims) for t in spec.inputs)
    if spec.max_batch_size == 0 or not numeric:
        return []
    inputs = [
        "\n".join(
            [
                "    inputs {",
                f"      key: {quote(t.name)}",
                f"      value: {{ data_type: {triton_data_type(t.data_type)} "
                f"dims: {_int_list(t.dims)} zero_data: true }}",
                "    }",
            ]
        )
        for t in spec.inputs
    ]
    return model_warmup_lines("zeros", inputs)


def model_warmup_lines(name: str, inputs: Sequence[str]) -> list[str]:
    """A `model_warmup` of one batch-1 sample run ``WARMUP_RUNS`` times; ``inputs``: its
    rendered `inputs { ... }` entries."""
    return [
        "model_warmup [",
        "  {",
        f"    name: {quote(name)}",
        "    batch_size: 1",
        *inputs,
        f"    count: {WARMUP_RUNS}",
        "  }",
        "]",
    ]


def parameter_lines(parameters: Mapping[Parameter, str]) -> list[str]:
    lines: list[str] = []
    for key in sorted(parameters):
        lines += [
            "parameters: {",
            f"  key: {quote(key)}",
            f"  value: {{ string_value: {quote(parameters[key])} }}",
            "}",
        ]
    return lines


def header_lines(spec: ModelSpec, backend: str, default_model_filename: str | None) -> list[str]:
    lines = [f"name: {quote(spec.name)}", f"backend: {quote(backend)}"]
    if default_model_filename is not None:
        lines.append(f"default_model_filename: {quote(default_model_filename)}")
    lines += [
        f"max_batch_size: {spec.max_batch_size}",
        f"version_policy: {{ latest: {{ num_versions: {spec.versions_served} }} }}",
    ]
    return lines


def join_sections(*sections: list[str]) -> str:
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"


def tuned_for_cpu(
    spec: ModelSpec, tuning: Mapping[str, CpuBatching] | None = None
) -> tuple[ModelSpec, bool]:
    """``spec`` with the measured CPU instance count and queue delay of ``tuning`` (default:
    `exporters/cpu_batching.json`), and whether it keeps a dynamic batcher."""
    tuned = tuned_settings(spec.name, tuning)
    if tuned is None:
        return spec, True
    delay = tuned.max_queue_delay_us
    if delay is None:
        delay = spec.max_queue_delay_us
    changed = dataclasses.replace(
        spec, cpu_instance_count=tuned.instance_count, max_queue_delay_us=delay
    )
    return changed, tuned.max_queue_delay_us is not None


def render_cpu_config(spec: ModelSpec, tuning: Mapping[str, CpuBatching] | None = None) -> str:
    """`config.pbtxt` for the python-backend runner on CPU, with the measured batching
    settings of ``tuning`` (default: `exporters/cpu_batching.json`)."""
    return render_python_config(
        spec,
        {
            **DEFAULT_RUNNER_PARAMETERS,
            **spec.parameters,
            Parameter.RUNTIME: spec.runtime,
            Parameter.MODEL_FILENAME: spec.artifact_name,
        },
        tuning,
    )


def render_python_config(
    spec: ModelSpec,
    parameters: Mapping[Parameter, str],
    tuning: Mapping[str, CpuBatching] | None = None,
) -> str:
    """A python-backend model on CPU with exactly ``parameters`` (e.g. the tokenizer, which
    brings its own ``model.py`` instead of the runner) and the measured batching settings."""
    spec, batcher = tuned_for_cpu(spec, tuning)
    return join_sections(
        header_lines(spec, "python", None),
        tensor_lines("input", spec.inputs),
        tensor_lines("output", spec.outputs),
        instance_group_lines(spec.cpu_instance_count, "KIND_CPU"),
        dynamic_batching_lines(spec, batcher),
        warmup_lines(spec),
        parameter_lines(parameters),
    )


def _model_parameters(spec: ModelSpec) -> dict[Parameter, str]:
    """``spec.parameters`` without the CPU runner's own knobs."""
    return {k: v for k, v in spec.parameters.items() if k not in DEFAULT_RUNNER_PARAMETERS}


def _tensorrt_lines(precision_mode: str, trt_workspace_bytes: int) -> list[str]:
    return [
        "optimization {",
        "  execution_accelerators {",
        "    gpu_execution_accelerator: [",
        "      {",
        '        name: "tensorrt"',
        f'        parameters {{ key: "precision_mode" value: {quote(precision_mode)} }}',
        "        parameters {",
        '          key: "max_workspace_size_bytes"',
        f'          value: "{trt_workspace_bytes}"',
        "        }",
        "      }",
        "    ]",
        "  }",
        "}",
    ]


def render_gpu_config(
    spec: ModelSpec,
    precision_mode: str | None = "FP16",
    trt_workspace_bytes: int = TRT_WORKSPACE_BYTES,
) -> str:
    """`configs/gpu.pbtxt` for the native onnxruntime or pytorch backend on GPU. ONNX models
    get the TensorRT accelerator at ``precision_mode``; None: plain CUDA execution provider
    (FP32; e.g. for variable sequence lengths, where TensorRT would rebuild engines)."""
    extra: list[str] = []
    if spec.runtime == "onnx":
        header = header_lines(spec, "onnxruntime", spec.artifact_name)
        parameters = _model_parameters(spec)
        if precision_mode is not None:
            extra = _tensorrt_lines(precision_mode, trt_workspace_bytes)
    else:
        header = header_lines(spec, "pytorch", spec.artifact_name)
        parameters = {**_model_parameters(spec), Parameter.INFERENCE_MODE: "true"}
    # The model's own parameters (feature service, feature names, task) are read by the
    # gateway from whichever config Triton serves, so both targets carry them.
    return join_sections(
        header,
        tensor_lines("input", spec.inputs),
        tensor_lines("output", spec.outputs),
        instance_group_lines(spec.gpu_instance_count, "KIND_GPU"),
        dynamic_batching_lines(spec),
        extra,
        warmup_lines(spec),
        parameter_lines(parameters),
    )


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_model_configs(repo: Path, spec: ModelSpec) -> tuple[Path, Path]:
    """Write `repo/<name>/config.pbtxt` (CPU) and `repo/<name>/configs/gpu.pbtxt` (GPU)."""
    return write_configs(repo, spec.name, render_cpu_config(spec), render_gpu_config(spec))


def write_configs(repo: Path, name: str, cpu: str, gpu: str) -> tuple[Path, Path]:
    """`repo/<name>/config.pbtxt` (CPU) and `repo/<name>/configs/gpu.pbtxt` (GPU), as given."""
    cpu_path = repo / name / "config.pbtxt"
    gpu_path = repo / name / "configs" / f"{GPU_CONFIG_NAME}.pbtxt"
    write_text_atomic(cpu_path, cpu)
    write_text_atomic(gpu_path, gpu)
    return cpu_path, gpu_path


def write_model_version(
    repo: Path, spec: ModelSpec, version: int, artifact: Path, overwrite: bool = False
) -> Path:
    """Publish `artifact` as `repo/<name>/<version>/` with the python-backend runner."""
    if not artifact.is_file():
        raise FileNotFoundError(f"model artifact {artifact} does not exist")
    files = {spec.artifact_name: artifact, "model.py": RUNNER_TEMPLATE}
    return publish_version_folder(repo, spec.name, version, files, overwrite)


def publish_version_folder(
    repo: Path, name: str, version: int, files: Mapping[str, Path], overwrite: bool = False
) -> Path:
    """`repo/<name>/<version>/` holding `files` (file name in the folder -> source).

    The folder appears complete or not at all (built beside it, then renamed), so a server
    loading the model never sees half a version. An existing version is kept unless
    `overwrite=True`, and then replaced in one rename.
    """
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    model_dir = repo / name
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.staging-"))
    try:
        for filename, source in files.items():
            shutil.copy2(source, staging / filename)
        staging.chmod(0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.retired-"))
            os.replace(target, retired / "old")
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
