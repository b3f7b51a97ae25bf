"""Run a real `tritonserver` (python backend) as a child process, for tests and local serving."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tritonclient.http as httpclient

from trademaster.launchers.process import (
    ManagedServer,
    ServerStartError,
    free_ports,
    log_tail,
    stop_process,
    wait_until,
)
from trademaster.launchers.tools import ServingTools, prepare_backend_dir, triton_environment

LOG_NAME = "tritonserver.log"
CONTROL_TIMEOUT_S = 120.0
# On SIGTERM Triton waits this long for in-flight requests and open HTTP connections.
EXIT_TIMEOUT_S = 5


@contextmanager
def _http_client(
    url: str, timeout_s: float = CONTROL_TIMEOUT_S
) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(
        url, connection_timeout=timeout_s, network_timeout=timeout_s
    )
    try:
        yield client
    finally:
        client.close()


def is_model_ready(url: str, name: str, version: str = "") -> bool:
    """Whether the server at `url` ("host:port", HTTP) reports `name` ready."""
    with _http_client(url, timeout_s=5.0) as client:
        return bool(client.is_model_ready(name, version))


def wait_for_model(
    url: str,
    name: str,
    version: str = "",
    timeout_s: float = 60.0,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Wait until the server at `url` ("host:port", HTTP) reports model `name` ready."""
    label = f"model {name!r}" + (f" version {version}" if version else "") + f" ready at {url}"
    wait_until(
        lambda: is_model_ready(url, name, version), timeout_s, label, proc=proc, log_path=log_path
    )


@functools.cache
def _supported_flags(tools: ServingTools) -> frozenset[str]:
    """The long options listed by `tritonserver --help` (it runs in well under a second)."""
    try:
        result = subprocess.run(
            [str(tools.tritonserver), "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            env=triton_environment(tools),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    words = (result.stdout + result.stderr).split()
    return frozenset(word for word in words if word.startswith("--"))


class TritonServer(ManagedServer):
    """A `tritonserver` child process in explicit model-control mode, on 127.0.0.1.

    Use as a context manager: entering starts the server and waits until it is live and every
    model in `models` is ready; leaving always stops it (the whole process group, stubs included).
    """

    program = "tritonserver"

    def __init__(
        self,
        model_repository: Path,
        work_dir: Path,
        models: Sequence[str] = (),
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        model_config_name: str | None = None,
        startup_timeout_s: float = 120.0,
        tools: ServingTools | None = None,
        exit_timeout_s: int = EXIT_TIMEOUT_S,
    ) -> None:
        self.model_repository = model_repository.resolve()
        self.work_dir = work_dir.resolve()
        self.models = tuple(models)
        picked = iter(free_ports(3))
        self.http_port = http_port if http_port is not None else next(picked)
        self.grpc_port = grpc_port if grpc_port is not None else next(picked)
        self.metrics_port = metrics_port if metrics_port is not None else next(picked)
        self.model_config_name = model_config_name
        self.startup_timeout_s = startup_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self.tools = tools if tools is not None else ServingTools.from_project_root()
        self.log_path = self.work_dir / LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        """Address for `tritonclient.http`, in its "127.0.0.1:PORT" form."""
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """Address for `tritonclient.grpc`, in its "127.0.0.1:PORT" form."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self, backend_dir: Path) -> list[str]:
        """The `tritonserver` command line for this server."""
        flags = _supported_flags(self.tools)
        cmd = [
            str(self.tools.tritonserver),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            "--allow-http=true",
            "--allow-grpc=true",
            "--allow-metrics=true",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--model-control-mode=explicit",
            *(f"--load-model={name}" for name in self.models),
            "--exit-on-error=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--log-verbose=0",
        ]
        for flag in ("--http-address", "--grpc-address", "--metrics-address"):
            if flag in flags:
                cmd.append(f"{flag}=127.0.0.1")
        if self.model_config_name is not None:
            cmd.append(f"--model-config-name={self.model_config_name}")
        return cmd

    def start(self) -> TritonServer:
        if self.is_running():
            raise RuntimeError(f"tritonserver already running (pid {self.pid})")
        self._stopping = False
        self.tools.require(perf_analyzer=False)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        backend_dir = prepare_backend_dir(self.tools, self.work_dir / "backends")
        self._spawn(
            self.command(backend_dir),
            self._is_live,
            f"tritonserver live at {self.http_url}",
            env=triton_environment(self.tools),
            cwd=self.work_dir,
            fresh_log=True,
        )
        try:
            for name in self.models:
                wait_for_model(
                    self.http_url,
                    name,
                    timeout_s=self.startup_timeout_s,
                    proc=self._proc,
                    log_path=self.log_path,
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _is_live(self) -> bool:
        with _http_client(self.http_url, timeout_s=5.0) as client:
            return bool(client.is_server_live())

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # Set by stop() before the process is signalled: its exit then is not a crash (a watcher
    # polling while stop() waits for the exit must not restart it).
    _stopping = False

    def exit_code(self) -> int | None:
        """The exit code of a tritonserver that exited by itself (crashed, killed); None while
        it runs, before it starts and once ``stop()`` was called."""
        if self._stopping or self._proc is None:
            return None
        return self._proc.poll()

    def restart(self) -> TritonServer:
        """Starts it again on the same ports after it exited by itself; the log of the run
        that ended is kept beside the new one (``<log>.previous``)."""
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name(f"{self.log_path.name}.previous"))
        self._proc = None
        return self.start()

    def is_model_ready(self, name: str, version: str = "") -> bool:
        return is_model_ready(self.http_url, name, version)

    def ready_versions(self, name: str) -> set[int]:
        """The versions of `name` its repository index reports READY."""
        with _http_client(self.http_url, timeout_s=5.0) as client:
            return {
                int(entry["version"])
                for entry in client.get_model_repository_index()
                if entry["name"] == name and entry.get("state") == "READY"
            }

    def model_config(self, name: str) -> dict[str, Any]:
        """The config Triton serves `name` with (JSON, as `/v2/models/<name>/config`)."""
        with _http_client(self.http_url, timeout_s=10.0) as client:
            return dict(client.get_model_config(name))

    def load_model(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        """Load (or reload, picking up new versions and config) `name`; returns once ready.
        With `config`, Triton loads it with that config instead of its `config.pbtxt`."""
        override = None if config is None else json.dumps(config)
        with _http_client(self.http_url) as client:
            try:
                client.load_model(name, config=override)
            except Exception as exc:
                raise ServerStartError(
                    f"loading model {name!r} failed: {exc}\n--- last log lines ---\n"
                    f"{log_tail(self.log_path)}"
                ) from exc

    def unload_model(self, name: str, timeout_s: float = 30.0) -> None:
        """Unload `name` and wait until the server no longer reports it ready."""
        with _http_client(self.http_url) as client:
            client.unload_model(name)
        wait_until(
            lambda: not self.is_model_ready(name),
            timeout_s,
            f"model {name!r} unloaded",
            proc=self._proc,
            log_path=self.log_path,
        )

    def stop(self) -> int | None:
        """Stop the server (TERM to its process group, then KILL); returns its exit code."""
        self._stopping = True
        if self._proc is None:
            return None
        return stop_process(self._proc, grace_s=self.exit_timeout_s + 10)
