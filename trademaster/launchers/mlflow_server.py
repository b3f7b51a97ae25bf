"""Run `mlflow server` on 127.0.0.1: the tracking server and model registry of `make up` and of
the integration tests, with a SQL backend store and server-side artifacts (clients upload and
download through the server; `mlflow-artifacts:/` URIs); and `mlflow models serve` of a
registered model, the baseline the load benchmark compares the gateway with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from trademaster.launchers.process import LocalServer, answers_ok

LOG_NAME = "mlflow-server.log"
MODEL_SERVER_LOG_NAME = "mlflow-models-serve.log"
# The mlflow of the interpreter running this (the project's virtualenv).
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def _mlflow_environment(**extra: str) -> dict[str, str]:
    """This environment with the virtualenv's bin first on PATH (mlflow starts its uvicorn
    by name) and ``extra`` on top."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


class MlflowServer(LocalServer):
    """``backend_store_uri`` defaults to SQLite in ``work_dir`` (the registry of runs, versions
    and aliases); artifacts go to ``artifacts_dir``, served by the server itself."""

    program = "mlflow server"
    log_name = LOG_NAME

    def __init__(
        self,
        work_dir: Path,
        backend_store_uri: str | None = None,
        artifacts_dir: Path | None = None,
        port: int | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(work_dir, port, startup_timeout_s)
        self.backend_store_uri = backend_store_uri or f"sqlite:///{self.work_dir / 'mlflow.db'}"
        self.artifacts_dir = (artifacts_dir or self.work_dir / "artifacts").resolve()

    def command(self) -> list[str]:
        return [
            MLFLOW,
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
        env = _mlflow_environment(
            # Its job runner (GenAI evaluation jobs, which we do not use) starts seven worker
            # processes of about 250 MB each.
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"
        )
        self._spawn(
            self.command(),
            self.healthy,
            f"mlflow server /health on port {self.port}",
            env=env,
            cwd=self.work_dir,
        )
        return self

    def healthy(self) -> bool:
        return answers_ok(f"{self.url}/health")


class MlflowModelServer(LocalServer):
    """``mlflow models serve`` of ``model_uri`` (``models:/<name>@champion``) from the
    registry at ``tracking_uri``, by ``workers`` uvicorn workers in this virtualenv (which
    holds the model's requirements: no new environment). No feature lookup, no cache:
    ``POST /invocations`` with the model's own inputs."""

    program = "mlflow models serve"
    log_name = MODEL_SERVER_LOG_NAME

    def __init__(
        self,
        work_dir: Path,
        model_uri: str,
        tracking_uri: str,
        workers: int = 1,
        port: int | None = None,
        startup_timeout_s: float = 120.0,
    ) -> None:
        super().__init__(work_dir, port, startup_timeout_s)
        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.workers = workers

    def command(self) -> list[str]:
        return [
            MLFLOW,
            "models",
            "serve",
            "--model-uri",
            self.model_uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--env-manager",
            "local",
        ]

    def start(self) -> MlflowModelServer:
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"mlflow models serve already running (pid {self.pid})")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            self.command(),
            lambda: answers_ok(f"{self.url}/ping"),
            f"mlflow models serve /ping on port {self.port}",
            env=_mlflow_environment(MLFLOW_TRACKING_URI=self.tracking_uri),
            cwd=self.work_dir,
        )
        return self
