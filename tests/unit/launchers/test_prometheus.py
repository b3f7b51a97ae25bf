"""The local Prometheus config is monitoring/prometheus.yml with local targets, and promtool
accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from trademaster.launchers.prometheus import (
    PROMETHEUS_CONFIG,
    Alertmanager,
    Pushgateway,
    local_prometheus_config,
    write_config,
)
from trademaster.launchers.tools import MissingToolError

TARGETS = {
    "gateway": ["127.0.0.1:8080"],
    "triton": ["127.0.0.1:8002"],
    "pushgateway": ["127.0.0.1:9091"],
    "alertmanager": ["127.0.0.1:9093"],
    "prometheus": ["127.0.0.1:9090"],
}
RULE_FILES = sorted((PROMETHEUS_CONFIG.parent / "rules").glob("*.yml"))


def _kubernetes_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return config


def _jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.mark.parametrize("interval_s", [None, 5])
def test_local_config_passes_promtool(promtool: str, tmp_path: Path, interval_s: int) -> None:
    config = local_prometheus_config(TARGETS, ["127.0.0.1:9093"], interval_s=interval_s)
    path = write_config(tmp_path / "elsewhere" / "prometheus.yml", config, PROMETHEUS_CONFIG)
    result = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files are found from another folder: their paths are absolute.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_only_the_targets_change() -> None:
    source = _kubernetes_config()
    config = local_prometheus_config(TARGETS, ["127.0.0.1:9093"])
    assert config["global"] == source["global"]
    assert config["rule_files"] == [str(PROMETHEUS_CONFIG.parent / "rules" / "*.yml")]
    assert config["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]
    }
    source_jobs, jobs = _jobs(source), _jobs(config)
    assert set(jobs) == set(TARGETS)
    for name, job in jobs.items():
        assert job.pop("static_configs") == [{"targets": TARGETS[name]}]
        kept = {
            key: value
            for key, value in source_jobs[name].items()
            if key not in ("static_configs", "dns_sd_configs")
        }
        assert job == kept, name
    assert _jobs(config)["pushgateway"]["honor_labels"] is True


def test_jobs_without_a_local_server_are_left_out() -> None:
    assert "kube-state-metrics" in _jobs(_kubernetes_config())
    assert "kube-state-metrics" not in _jobs(local_prometheus_config(TARGETS))


def test_a_job_the_kubernetes_config_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no job node"):
        local_prometheus_config({**TARGETS, "node": ["127.0.0.1:9100"]})


def test_without_alertmanagers_there_is_no_alerting() -> None:
    assert "alerting" not in local_prometheus_config(TARGETS)


def test_shorter_intervals_keep_the_timeout_within_the_interval() -> None:
    settings = local_prometheus_config(TARGETS, interval_s=5)["global"]
    assert settings["scrape_interval"] == settings["evaluation_interval"] == "5s"
    assert settings["scrape_timeout"] == "5s"
    assert settings["external_labels"] == _kubernetes_config()["global"]["external_labels"]
    # The Kubernetes file itself keeps its own.
    assert _kubernetes_config()["global"]["scrape_interval"] == "15s"


def test_rule_files_can_be_replaced(tmp_path: Path) -> None:
    rules = tmp_path / "test.yml"
    assert local_prometheus_config(TARGETS, rule_files=[rules])["rule_files"] == [str(rules)]


@pytest.mark.parametrize(
    ("server", "package"),
    [(Pushgateway, "prometheus-pushgateway"), (Alertmanager, "prometheus-alertmanager")],
)
def test_a_missing_binary_names_its_debian_package(
    server: type[Pushgateway | Alertmanager],
    package: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match=f"apt-get install {package}"):
        server(tmp_path)
