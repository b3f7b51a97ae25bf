"""When a new version goes live as a canary, and when directly (the reasons are shown to the
operator as the canary task's skip message)."""

from __future__ import annotations

from pathlib import Path

from exporters.registered import versions_served
from trademaster.rollout.canary import why_no_canary
from trademaster.settings import PipelineSettings

MODEL = "risk-assessment-model"


def _settings(tmp_path: Path, served: int | None, gateway_url: str) -> PipelineSettings:
    repository = tmp_path / "model_repository"
    (repository / MODEL).mkdir(parents=True)
    policy = f"version_policy: {{ latest: {{ num_versions: {served} }} }}\n" if served else ""
    (repository / MODEL / "config.pbtxt").write_text(f'name: "{MODEL}"\n{policy}')
    return PipelineSettings(
        data_dir=tmp_path / "var", model_repository=repository, gateway_url=gateway_url
    )


def test_versions_served_reads_the_config(tmp_path: Path) -> None:
    assert versions_served(_settings(tmp_path, 2, "").model_repository, MODEL) == 2
    assert versions_served(tmp_path / "nowhere", MODEL) == 1


def test_reasons_for_going_live_directly(tmp_path: Path) -> None:
    no_gateway = _settings(tmp_path / "a", 2, "")
    assert "no gateway configured" in why_no_canary(no_gateway, MODEL, previous=3)
    gateway = _settings(tmp_path / "b", 2, "http://127.0.0.1:9")
    assert "first version" in why_no_canary(gateway, MODEL, previous=None)
    single = _settings(tmp_path / "c", 1, "http://127.0.0.1:9")
    assert "one version at a time" in why_no_canary(single, MODEL, previous=3)
    # Port 9 (discard) refuses connections: a gateway that does not answer gets no canary.
    assert "does not answer" in why_no_canary(gateway, MODEL, previous=3)
