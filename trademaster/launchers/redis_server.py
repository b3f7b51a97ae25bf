"""Run a throwaway Debian `redis-server` on 127.0.0.1 and a free port (tests, local runs)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from trademaster.launchers.process import ManagedServer, free_port, stop_process
from trademaster.launchers.tools import MissingToolError

LOG_NAME = "redis-server.log"


class RedisServer(ManagedServer):
    """A `redis-server` child process with no persistence. Use as a context manager."""

    program = "redis-server"

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        startup_timeout_s: float = 10.0,
        binary: Path | None = None,
    ) -> None:
        self.work_dir = work_dir.resolve()
        self.port = port if port is not None else free_port()
        self.startup_timeout_s = startup_timeout_s
        self.binary = binary if binary is not None else find_redis_server()
        self.log_path = self.work_dir / LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.work_dir),
        ]

    def start(self) -> RedisServer:
        if self.is_running():
            raise RuntimeError(f"redis-server already running (pid {self.pid})")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            self.command(), self.ping, f"redis-server PING on port {self.port}", cwd=self.work_dir
        )
        return self

    def ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        if self._proc is None:
            return None
        return stop_process(self._proc, grace_s=5.0)

    def kill(self) -> None:
        """SIGKILL the server, as if it crashed (for tests of what happens when Redis dies)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def restart(self) -> RedisServer:
        """Stop the server if it runs, then start an empty one on the same port."""
        self.stop()
        return self.start()


def find_redis_server() -> Path:
    """The `redis-server` on PATH; `MissingToolError` saying how to install it otherwise."""
    found = shutil.which("redis-server")
    if found is None:
        raise MissingToolError(
            "redis-server not found on PATH: `apt-get install redis-server` (or `make bootstrap`)"
        )
    return Path(found)
