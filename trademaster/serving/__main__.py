"""``python -m trademaster.serving``: the serving agent beside one Triton, until killed.

Endpoints (``SERVING_AGENT_PORT``, default 9257): ``/health`` (the agent runs), ``/ready``
(200 when this Triton serves exactly the manifest's versions and every probe answered, else
503; the JSON body says which model is behind and why), ``/metrics``.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from trademaster.serving.agent import ServingAgent, run_forever
from trademaster.serving.triton_control import GrpcTritonControl

log = logging.getLogger("trademaster.serving")

AGENT_PORT = 9257
# A pod's port, reached through its Service.
ALL_INTERFACES = "0.0.0.0"  # nosec B104 # noqa: S104


class AgentSettings(BaseSettings):
    """The agent's one typed settings object (environment prefix ``SERVING_AGENT_``)."""

    model_config = SettingsConfigDict(env_prefix="SERVING_AGENT_", extra="ignore")

    model_repository: Path = Path("/models")
    triton_grpc_address: str = "127.0.0.1:8001"
    address: str = ALL_INTERFACES
    port: int = Field(default=AGENT_PORT, ge=0, le=65535)
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    probe_interval_s: float = Field(default=2.0, gt=0)
    probe_timeout_s: float = Field(default=3.0, gt=0)
    # Loading a large model can take minutes on a busy CPU node.
    control_timeout_s: float = Field(default=300.0, gt=0)
    # Two passes (one probe interval apart): a version Triton is reloading (a rollout, the DAG's
    # direct load) fails a probe for a moment; healing it then reloaded it again and made an
    # ensemble unavailable (503s in the daily cycle). A crash still heals within 10 s.
    heal_after_failed_passes: int = Field(default=2, ge=1)


class RunningAgent:
    """The agent's loop and HTTP endpoints on daemon threads, until ``close``."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.control = GrpcTritonControl(
            settings.triton_grpc_address, settings.control_timeout_s, settings.probe_timeout_s
        )
        self.agent = ServingAgent(
            settings.model_repository, self.control, settings.heal_after_failed_passes
        )
        self._stop = threading.Event()
        self._loop = threading.Thread(
            target=run_forever,
            args=(
                self.agent,
                settings.reconcile_interval_s,
                settings.probe_interval_s,
                self._stop,
            ),
            name="serving-agent",
            daemon=True,
        )
        self._server = ThreadingHTTPServer((settings.address, settings.port), _handler(self.agent))
        self._server.daemon_threads = True
        self.port = int(self._server.server_port)
        self._http = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._loop.start()
        self._http.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._loop.join(timeout=30)
        self.control.close()


def _handler(agent: ServingAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            if self.path == "/health":
                self._send(200, "application/json", b'{"status":"ok"}')
            elif self.path == "/ready":
                status = agent.status()
                body = json.dumps(status).encode()
                self._send(200 if status["ready"] else 503, "application/json", body)
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(agent.metrics.registry))
            else:
                missing = {"detail": f"no {self.path}: /health, /ready, /metrics"}
                self._send(404, "application/json", json.dumps(missing).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would flood the log

    return Handler


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = AgentSettings()
    running = RunningAgent(settings)
    log.info(
        "serving agent for Triton %s, manifest in %s, on :%d (/ready, /metrics)",
        settings.triton_grpc_address,
        settings.model_repository,
        running.port,
    )
    threading.Event().wait()


if __name__ == "__main__":
    main()
