"""Publishing batch metrics: what is pushed where, and that a missing Pushgateway never fails
the pipeline. A small HTTP server stands in for the Pushgateway's API (its wire format is
prometheus_client's; tests/integration/test_monitoring_servers.py pushes to the real one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from trademaster.launchers.process import free_port
from trademaster.monitoring.metrics import PUSH_JOB, batch_registry
from trademaster.monitoring.publish import dag_finished, push
from trademaster.settings import PipelineSettings


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    received: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _settings(tmp_path: Path, url: str) -> PipelineSettings:
    return PipelineSettings(environment="test", data_dir=tmp_path, pushgateway_url=url)


def test_a_push_replaces_the_tasks_group(
    tmp_path: Path, pushgateway: tuple[str, list[tuple[str, str, str]]]
) -> None:
    url, received = pushgateway
    metrics = batch_registry()
    metrics.drift_share.labels("risk-assessment-model", "3", "served").set(0.25)

    assert push(_settings(tmp_path, url), metrics, "drift") is True

    ((method, path, body),) = received
    assert (method, path) == ("PUT", f"/metrics/job/{PUSH_JOB}/task/drift")
    assert (
        'ml_feature_drift_share{model_name="risk-assessment-model",model_version="3",'
        'source="served"} 0.25'
    ) in body


def test_without_a_pushgateway_nothing_is_pushed(tmp_path: Path) -> None:
    assert push(_settings(tmp_path, ""), batch_registry(), "drift") is False


def test_an_unreachable_pushgateway_is_reported_not_raised(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"127.0.0.1:{free_port()}")

    assert push(settings, batch_registry(), "drift") is False


def test_successes_and_failures_keep_their_own_groups(
    tmp_path: Path, pushgateway: tuple[str, list[tuple[str, str, str]]]
) -> None:
    url, received = pushgateway
    settings = _settings(tmp_path, url)

    assert dag_finished(settings, "trademaster_training", True, 120.0)
    assert dag_finished(settings, "trademaster_training", False, None)

    (_, success_path, success_body), (_, failure_path, failure_body) = received
    assert success_path.endswith("/task/dag-trademaster_training-success")
    assert failure_path.endswith("/task/dag-trademaster_training-failed")
    assert "trademaster_dag_last_success_timestamp_seconds" in success_body
    assert (
        'trademaster_dag_run_duration_seconds{dag_id="trademaster_training",state="success"} 120.0'
        in success_body
    )
    assert "trademaster_dag_last_failure_timestamp_seconds" in failure_body
    assert "trademaster_dag_last_success_timestamp_seconds{" not in failure_body
