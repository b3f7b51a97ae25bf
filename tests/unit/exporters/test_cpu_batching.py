from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from exporters.cpu_batching import CpuBatching, load_tuning, parse_tuning
from exporters.model_spec import ModelSpec, TensorSpec
from exporters.portfolio import PortfolioServingSpec
from exporters.portfolio import render_cpu_config as render_portfolio_cpu_config
from exporters.triton_config import render_cpu_config, render_gpu_config

SPEC = ModelSpec(
    name="risk-assessment-model",
    inputs=(TensorSpec("features", "FP32", (6,)),),
    outputs=(TensorSpec("score", "FP32", (1,)),),
    preferred_batch_sizes=(),
    max_queue_delay_us=0,
)


def _parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def test_measured_settings_replace_the_specs_in_the_cpu_config_only() -> None:
    tuning = {SPEC.name: CpuBatching(2, 1500)}
    cpu = _parse(render_cpu_config(SPEC, tuning))
    assert cpu.instance_group[0].count == 2
    assert cpu.dynamic_batching.max_queue_delay_microseconds == 1500
    gpu = _parse(render_gpu_config(SPEC))
    assert gpu.dynamic_batching.max_queue_delay_microseconds == 0


def test_a_model_the_tuning_does_not_name_keeps_its_spec() -> None:
    cpu = _parse(render_cpu_config(SPEC, {"other": CpuBatching(3, 9)}))
    assert cpu.instance_group[0].count == 1
    assert cpu.HasField("dynamic_batching")
    assert cpu.dynamic_batching.max_queue_delay_microseconds == 0


def test_no_batcher_measured_removes_the_dynamic_batcher() -> None:
    cpu = _parse(render_cpu_config(SPEC, {SPEC.name: CpuBatching(1, None)}))
    assert not cpu.HasField("dynamic_batching")


def test_the_portfolio_takes_its_measured_instance_count() -> None:
    spec = PortfolioServingSpec(name="portfolio-optimizer")
    assert _parse(render_portfolio_cpu_config(spec, {})).instance_group[0].count == (
        spec.cpu_instance_count
    )
    tuned = {spec.name: CpuBatching(3, None)}
    assert _parse(render_portfolio_cpu_config(spec, tuned)).instance_group[0].count == 3


def test_the_tuning_file_is_parsed_and_bad_entries_name_the_model(tmp_path: Path) -> None:
    path = tmp_path / "cpu_batching.json"
    assert load_tuning(path) == {}
    path.write_text(
        json.dumps({"models": {"a": {"instance_count": 2, "max_queue_delay_us": None}}})
    )
    assert load_tuning(path) == {"a": CpuBatching(2, None)}
    with pytest.raises(ValueError, match="model 'b'"):
        parse_tuning({"models": {"b": {"instance_count": 0, "max_queue_delay_us": 1}}}, path)
    with pytest.raises(ValueError, match="'models'"):
        parse_tuning({}, path)


def test_the_shipped_tuning_file_parses() -> None:
    for name, settings in load_tuning().items():
        assert settings.instance_count >= 1, name
