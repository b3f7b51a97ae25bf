from __future__ import annotations

from pathlib import Path

import pytest

from exporters.sentiment import (
    ENCODER,
    ENSEMBLE,
    HEAD,
    TOKENIZER,
    encoder_spec,
    ensemble_spec,
    head_spec,
    render_ensemble_config,
    render_tokenizer_config,
    tokenizer_spec,
)
from exporters.triton_config import (
    publish_version_folder,
    render_cpu_config,
    render_gpu_config,
    write_configs,
)
from trademaster.contract.parameters import Parameter


def _steps(config: str) -> list[str]:
    return [line.split('"')[1] for line in config.splitlines() if "model_name:" in line]


def test_the_ensemble_chains_tokenizer_encoder_head_at_one_version() -> None:
    config = render_ensemble_config(ensemble_spec(), 7)

    assert 'platform: "ensemble"' in config
    assert "backend:" not in config
    assert _steps(config) == [TOKENIZER, ENCODER, HEAD]
    assert config.count("model_version: 7") == 3
    assert 'input_map { key: "text" value: "text" }' in config
    assert 'output_map { key: "score" value: "score" }' in config
    assert "num_versions: 1" in config


def test_the_ensemble_takes_text_and_answers_probabilities_and_score() -> None:
    spec = ensemble_spec()

    assert [(t.name, t.data_type, t.dims) for t in spec.inputs] == [("text", "BYTES", (1,))]
    assert [(t.name, t.data_type, t.dims) for t in spec.outputs] == [
        ("probabilities", "FP32", (3,)),
        ("score", "FP32", (1,)),
    ]
    assert spec.parameters[Parameter.TASK] == "text_sentiment"
    assert spec.parameters[Parameter.CLASS_LABELS] == "negative,neutral,positive"
    assert (
        0
        < spec.max_batch_size
        <= min(s.max_batch_size for s in (tokenizer_spec(), encoder_spec(), head_spec()))
    )


def test_the_tensors_between_steps_agree() -> None:
    tokenizer, encoder, head = tokenizer_spec(), encoder_spec(), head_spec()

    assert tokenizer.outputs == encoder.inputs
    assert encoder.outputs == head.inputs
    assert head.outputs == ensemble_spec().outputs


def test_the_tokenizer_is_a_python_model_on_cpu_for_both_targets() -> None:
    config = render_tokenizer_config(tokenizer_spec())

    assert 'backend: "python"' in config
    assert "kind: KIND_CPU" in config
    assert "TYPE_STRING" in config
    assert "dynamic_batching" in config
    assert 'key: "max_tokens"' in config
    assert 'key: "runtime"' not in config


def test_the_encoder_runs_onnx_runtime_on_cpu_and_natively_on_gpu() -> None:
    spec = encoder_spec()

    cpu, gpu = render_cpu_config(spec), render_gpu_config(spec, precision_mode=None)

    assert 'backend: "python"' in cpu
    assert 'key: "intra_op_threads"' in cpu
    assert 'backend: "onnxruntime"' in gpu
    assert "kind: KIND_GPU" in gpu
    assert "tensorrt" not in gpu
    assert "intra_op_threads" not in gpu
    for config in (cpu, gpu):
        assert "dims: [ -1 ]" in config
        assert "dims: [ 384 ]" in config
        assert 'string_value: "ensemble_step"' in config


def test_every_step_serves_one_version() -> None:
    for spec in (tokenizer_spec(), encoder_spec(), head_spec(), ensemble_spec()):
        assert spec.versions_served == 1, spec.name


def test_configs_are_written_for_both_targets(tmp_path: Path) -> None:
    cpu, gpu = write_configs(tmp_path, ENSEMBLE, "cpu text\n", "gpu text\n")

    assert cpu == tmp_path / ENSEMBLE / "config.pbtxt"
    assert gpu == tmp_path / ENSEMBLE / "configs" / "gpu.pbtxt"
    assert (cpu.read_text(), gpu.read_text()) == ("cpu text\n", "gpu text\n")


def test_a_version_folder_is_replaced_whole(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("one")
    second.write_text("two")
    repo = tmp_path / "repo"

    publish_version_folder(
        repo, TOKENIZER, 3, {"model.py": first, "tokenizer.json": first}, overwrite=True
    )
    target = publish_version_folder(repo, TOKENIZER, 3, {"model.py": second}, overwrite=True)

    assert target == repo / TOKENIZER / "3"
    assert sorted(p.name for p in target.iterdir()) == ["model.py"]
    assert (target / "model.py").read_text() == "two"
    assert [p.name for p in (repo / TOKENIZER).iterdir()] == ["3"]


def test_a_missing_source_leaves_no_half_written_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        publish_version_folder(
            tmp_path, HEAD, 1, {"model.onnx": tmp_path / "absent.onnx"}, overwrite=True
        )

    assert list((tmp_path / HEAD).iterdir()) == []
