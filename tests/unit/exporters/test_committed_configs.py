"""The committed model-repository configs are exactly what the exporter renders."""

from __future__ import annotations

from exporters.risk_model import risk_model_spec
from exporters.triton_config import render_cpu_config, render_gpu_config
from trademaster.features.store import feature_service_columns, load_definitions
from trademaster.settings import PROJECT_ROOT

REPOSITORY = PROJECT_ROOT / "model_repository"


def test_risk_model_configs_match_the_exporter() -> None:
    service = load_definitions().risk_model_v1
    spec = risk_model_spec("risk-assessment-model", service.name, feature_service_columns(service))
    model_dir = REPOSITORY / spec.name
    message = "regenerate with `trademaster export risk-assessment-model` after a spec change"
    assert (model_dir / "config.pbtxt").read_text() == render_cpu_config(spec), message
    assert (model_dir / "configs" / "gpu.pbtxt").read_text() == render_gpu_config(spec), message
