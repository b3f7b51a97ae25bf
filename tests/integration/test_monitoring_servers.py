"""Real Prometheus, Pushgateway and Alertmanager (Debian packages) on free ports: a pushed
metric is scraped and queried back, and an alert travels from Prometheus to Alertmanager."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from trademaster.launchers.prometheus import (
    Alertmanager,
    Monitoring,
    PrometheusServer,
    Pushgateway,
)
from trademaster.launchers.tools import MissingToolError

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0
ALERT = "MonitoringTestAlwaysFiring"


def _or_skip(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except MissingToolError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def always_firing_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules" / "always_firing.yml"
    path.parent.mkdir()
    rule = {
        "alert": ALERT,
        "expr": "vector(1)",
        "labels": {"severity": "warning", "model_name": "test-model"},
        "annotations": {"summary": "always fires", "description": "the delivery test's alert"},
    }
    path.write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": [rule]}]}))
    return path


@pytest.fixture
def monitoring(tmp_path: Path, always_firing_rules: Path) -> Iterator[Monitoring]:
    """The three servers as ``make up`` wires them, with a 1 s interval and the test's rules."""
    pushgateway = _or_skip(lambda: Pushgateway(tmp_path / "pushgateway"))
    alertmanager = _or_skip(lambda: Alertmanager(tmp_path / "alertmanager"))
    with pushgateway, alertmanager:
        prometheus = _or_skip(
            lambda: PrometheusServer(
                tmp_path / "prometheus",
                targets={
                    "pushgateway": [pushgateway.address],
                    "alertmanager": [alertmanager.address],
                },
                alertmanagers=[alertmanager.address],
                rule_files=[always_firing_rules],
                interval_s=1,
            )
        )
        with prometheus:
            yield Monitoring(prometheus, pushgateway, alertmanager)


def _query(prometheus: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_a_pushed_metric_is_scraped_and_queried(monitoring: Monitoring) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("trademaster_test_pushed", "a value pushed by the test", registry=registry)
    gauge.set(42.5)
    push_to_gateway(
        monitoring.pushgateway.address,
        job="trademaster-test",
        registry=registry,
        grouping_key={"task": "push_test"},
    )
    found: list[dict[str, Any]] = []

    def scraped() -> bool:
        found[:] = _query(monitoring.prometheus, "trademaster_test_pushed")
        return bool(found)

    monitoring.prometheus.wait_for(scraped, "the pushed metric in Prometheus", DEADLINE_S)
    (series,) = found
    assert float(series["value"][1]) == 42.5
    # honor_labels: the pushed job and grouping key, not the Pushgateway's own job.
    assert series["metric"]["job"] == "trademaster-test"
    assert series["metric"]["task"] == "push_test"

    def every_target_up() -> bool:
        up = _query(monitoring.prometheus, "up")
        return {s["metric"]["job"]: s["value"][1] for s in up} == {
            "pushgateway": "1",
            "alertmanager": "1",
            "prometheus": "1",
        }

    monitoring.prometheus.wait_for(every_target_up, "every target scraped", DEADLINE_S)


def test_an_alert_reaches_alertmanager(monitoring: Monitoring) -> None:
    received: list[dict[str, Any]] = []

    def delivered() -> bool:
        response = httpx.get(
            f"{monitoring.alertmanager.url}/api/v2/alerts",
            params={"filter": f'alertname="{ALERT}"'},
            timeout=5,
        )
        response.raise_for_status()
        received[:] = response.json()
        return bool(received)

    monitoring.alertmanager.wait_for(delivered, f"{ALERT} in Alertmanager", DEADLINE_S)
    (alert,) = received
    assert alert["labels"]["model_name"] == "test-model"
    assert alert["labels"]["stack"] == "trademaster"  # the external label of prometheus.yml
    assert alert["status"]["state"] == "active"
    # Routed by monitoring/alertmanager.yml: warnings go to the ticket receiver.
    assert [receiver["name"] for receiver in alert["receivers"]] == ["ticket"]
