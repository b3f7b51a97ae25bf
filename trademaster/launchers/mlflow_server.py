"""Run `mlflow server` on 127.0.0.1: the tracking server and model registry of `make up` and of
the integration tests, with a SQL backend store and server-side artifacts (clients upload and
download through the server; `mlflow-artifacts:/` URIs)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from trademaster.launchers.process import ManagedServer, free_port

LOG_NAME = "mlflow-server.log"


class MlflowServer(ManagedServer):
    """``backend_store_uri`` defaults to SQLite in ``work_dir`` (the registry of runs, versions
    and aliases); artifacts go to ``artifacts_dir``, served by the server itself."""

    program = "mlflow server"

    def __init__(
        self,
        work_dir: Path,
        backend_store_uri: str | None = None,
        artifacts_dir: Path | None = None,
        port: int | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.work_dir = work_dir.resolve()
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.work_dir / 'mlflow.db'}"
        self.artifacts_dir = (artifacts_dir or self.work_dir / "artifacts").resolve()
        self.port = port if port is not None else free_port()
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.work_dir / LOG_NAME

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # The mlflow of the interpreter running this (the project's virtualenv).
        mlflow = Path(sys.executable).with_name("mlflow")
        return [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.backend_store_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            self.artifacts_dir.as_uri(),
        ]

    def start(self) -> MlflowServer:
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"mlflow server already running (pid {self.pid})")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        # Its own uvicorn first on PATH (mlflow starts it by name).
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            # Its job runner (GenAI evaluation jobs, which we do not use) starts seven worker
            # processes of about 250 MB each.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        self._spawn(
            self.command(),
            self.healthy,
            f"mlflow server /health on port {self.port}",
            env=env,
            cwd=self.work_dir,
        )
        return self

    def healthy(self) -> bool:
        try:
            # An http:// URL of our own child process: no file:// or custom scheme reaches it.
            health = f"{self.url}/health"
            with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310  # nosec B310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
