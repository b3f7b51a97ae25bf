from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.triton_config import (
    RUNNER_TEMPLATE,
    render_cpu_config,
    render_gpu_config,
    write_model_configs,
    write_model_version,
)


def _spec(**overrides: object) -> ModelSpec:
    fields: dict[str, object] = {
        "name": "risk_mlp",
        "inputs": (TensorSpec("features", "FP32", (6,)),),
        "outputs": (TensorSpec("score", "FP32", (1,)),),
        "preferred_batch_sizes": (8, 32),
        "max_queue_delay_us": 750,
        "cpu_instance_count": 2,
        "gpu_instance_count": 3,
        "parameters": {"intra_op_threads": "2", "feature_service": "risk_model_v1"},
    }
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


def _parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def _params(config: mc.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_cpu_config_parses_with_python_backend_and_batching() -> None:
    config = _parse(render_cpu_config(_spec()))

    assert config.name == "risk_mlp"
    assert config.backend == "python"
    assert config.max_batch_size == 1024
    assert config.version_policy.latest.num_versions == 2  # primary + canary/shadow
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("features", mc.TYPE_FP32, [6])
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("score", mc.TYPE_FP32, [1])
    ]
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, 2)
    ]
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    assert config.dynamic_batching.max_queue_delay_microseconds == 750
    assert _params(config) == {
        "intra_op_threads": "2",
        "feature_service": "risk_model_v1",
        "runtime": "onnx",
        "model_filename": "model.onnx",
    }


def test_cpu_config_names_torchscript_artifact() -> None:
    config = _parse(render_cpu_config(_spec(runtime="torchscript", parameters={})))

    assert _params(config) == {
        "intra_op_threads": "1",
        "runtime": "torchscript",
        "model_filename": "model.pt",
    }


def test_gpu_onnx_config_uses_onnxruntime_with_tensorrt() -> None:
    config = _parse(render_gpu_config(_spec()))

    assert config.backend == "onnxruntime"
    assert config.default_model_filename == "model.onnx"
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (mc.ModelInstanceGroup.KIND_GPU, 3)
    ]
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert int(accelerator.parameters["max_workspace_size_bytes"]) > 0
    assert list(config.input[0].dims) == [6]
    # The model's own parameters travel, the CPU runner's knobs do not.
    assert _params(config) == {"feature_service": "risk_model_v1"}


def test_gpu_torchscript_config_uses_pytorch_backend() -> None:
    config = _parse(render_gpu_config(_spec(runtime="torchscript")))

    assert config.backend == "pytorch"
    assert config.default_model_filename == "model.pt"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not config.optimization.HasField("execution_accelerators")


def test_types_and_variable_dims_render() -> None:
    spec = _spec(
        inputs=(
            TensorSpec("tokens", "INT64", (-1,)),
            TensorSpec("text", "BYTES", (1,)),
            TensorSpec("mask", "INT32", (4, -1)),
        )
    )
    for text in (render_cpu_config(spec), render_gpu_config(spec)):
        inputs = _parse(text).input
        assert [(t.data_type, list(t.dims)) for t in inputs] == [
            (mc.TYPE_INT64, [-1]),
            (mc.TYPE_STRING, [1]),
            (mc.TYPE_INT32, [4, -1]),
        ]


def test_no_batching_omits_dynamic_batching() -> None:
    spec = _spec(max_batch_size=0, preferred_batch_sizes=())
    for text in (render_cpu_config(spec), render_gpu_config(spec)):
        config = _parse(text)
        assert config.max_batch_size == 0
        assert not config.HasField("dynamic_batching")


def test_rendering_is_deterministic() -> None:
    one = _spec(parameters={"b": "2", "a": "1"})
    two = _spec(parameters={"a": "1", "b": "2"})

    assert render_cpu_config(one) == render_cpu_config(two)
    assert render_gpu_config(one) == render_gpu_config(two)


def test_parameter_values_are_escaped() -> None:
    config = _parse(render_cpu_config(_spec(parameters={"note": 'say "hi"\\now'})))

    assert _params(config)["note"] == 'say "hi"\\now'


def test_write_model_configs_writes_cpu_and_gpu_files(tmp_path: Path) -> None:
    cpu_path, gpu_path = write_model_configs(tmp_path, _spec())

    assert cpu_path == tmp_path / "risk_mlp" / "config.pbtxt"
    assert gpu_path == tmp_path / "risk_mlp" / "configs" / "gpu.pbtxt"
    assert _parse(cpu_path.read_text()).backend == "python"
    assert _parse(gpu_path.read_text()).backend == "onnxruntime"


def test_write_model_version_copies_artifact_and_runner(tmp_path: Path) -> None:
    artifact = tmp_path / "exported.onnx"
    artifact.write_bytes(b"onnx-bytes")
    repo = tmp_path / "repo"

    version_dir = write_model_version(repo, _spec(), 1, artifact)

    assert version_dir == repo / "risk_mlp" / "1"
    assert (version_dir / "model.onnx").read_bytes() == b"onnx-bytes"
    assert (version_dir / "model.py").read_text() == RUNNER_TEMPLATE.read_text()
    assert sorted(os.listdir(repo / "risk_mlp")) == ["1"]


def test_write_model_version_refuses_to_overwrite(tmp_path: Path) -> None:
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(b"v1")
    spec = _spec(runtime="torchscript")
    write_model_version(tmp_path / "repo", spec, 3, artifact)
    artifact.write_bytes(b"v1-retrained")

    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_model_version(tmp_path / "repo", spec, 3, artifact)
    version_dir = write_model_version(tmp_path / "repo", spec, 3, artifact, overwrite=True)

    assert (version_dir / "model.pt").read_bytes() == b"v1-retrained"
    assert sorted(os.listdir(tmp_path / "repo" / "risk_mlp")) == ["3"]


def test_write_model_version_rejects_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_model_version(tmp_path, _spec(), 1, tmp_path / "absent.onnx")
    assert not (tmp_path / "risk_mlp" / "1").exists()


@pytest.mark.parametrize("render", [render_cpu_config, render_gpu_config])
def test_batched_numeric_models_are_warmed_up_with_zeros_before_ready(render: object) -> None:
    spec = _spec(inputs=(TensorSpec("window", "FP32", (30, 5)), TensorSpec("ids", "INT64", (4,))))
    config = _parse(render(spec))  # type: ignore[operator]

    (warmup,) = config.model_warmup
    assert (warmup.batch_size, warmup.count) == (1, 2)
    assert {
        name: (i.data_type, list(i.dims), i.zero_data) for name, i in warmup.inputs.items()
    } == {
        "window": (mc.TYPE_FP32, [30, 5], True),
        "ids": (mc.TYPE_INT64, [4], True),
    }


@pytest.mark.parametrize(
    "spec",
    [
        _spec(inputs=(TensorSpec("text", "BYTES", (1,)),)),  # no zero string to send
        _spec(inputs=(TensorSpec("ids", "INT64", (-1,)),)),  # no fixed shape to send
        _spec(max_batch_size=0, preferred_batch_sizes=()),
    ],
)
def test_models_without_a_fixed_numeric_input_get_no_warmup(spec: ModelSpec) -> None:
    assert not _parse(render_cpu_config(spec)).model_warmup
