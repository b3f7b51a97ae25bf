"""Process helpers shared by the server wrappers: free ports, readiness waits, shutdown."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOG_TAIL_LINES = 40


class ManagedServer:
    """A server process used as a context manager: ``with X(...) as server:`` starts it and
    stops it on the way out, whatever happens inside."""

    # The name in messages ("redis-server") and the running process, if any.
    program = "server"
    _proc: subprocess.Popen[bytes] | None = None
    log_path: Path
    startup_timeout_s: float

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.program} is not started")
        return self._proc.pid

    @property
    def running_pid(self) -> int | None:
        """The pid while started, else None (for observers that outlive a restart)."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> Self:
        raise NotImplementedError

    # How long a TERM'ed server gets before its process group is killed.
    stop_grace_s = 10.0

    def stop(self) -> Any:
        """TERM to the process group, KILL after ``stop_grace_s``; the exit code (None if
        not started)."""
        if self._proc is None:
            return None
        code = stop_process(self._proc, grace_s=self.stop_grace_s)
        self._proc = None
        return code

    def _spawn(
        self,
        command: list[str],
        ready: Callable[[], bool],
        waiting_for: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        fresh_log: bool = False,
    ) -> None:
        """Starts ``command`` in its own process group (output appended to ``log_path``, or
        replacing it with ``fresh_log``) and waits until ``ready()``; stops it again if it
        dies or is not ready in time."""
        with self.log_path.open("wb" if fresh_log else "ab") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        try:
            wait_until(
                ready,
                self.startup_timeout_s,
                waiting_for,
                proc=self._proc,
                log_path=self.log_path,
            )
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Closing:
    """A client used as a context manager: ``with X(...) as client:`` closes it on the way
    out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class LocalServer(ManagedServer):
    """A server on 127.0.0.1:``port`` (None: a free one) with its files and its log
    (``log_name``) in ``work_dir``."""

    log_name = ""

    def __init__(self, work_dir: Path, port: int | None, startup_timeout_s: float) -> None:
        self.work_dir = work_dir.resolve()
        self.port = port if port is not None else free_port()
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.work_dir / self.log_name

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, what a scrape config or a client takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def kept_secret(path: Path, nbytes: int = 32) -> str:
    """A random secret created once at ``path`` (mode 0600) and read back on later starts."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


class ServerStartError(RuntimeError):
    """A server process exited or did not become ready before its deadline."""


def answers_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether an HTTP GET of ``url`` (a health endpoint of our own child process) is 200."""
    try:
        # An http:// URL of our own child process: no file:// or custom scheme reaches it.
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310  # nosec B310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held open together while the OS picks them)."""
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def log_tail(log_path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, or a note saying why there are none."""
    if log_path is None:
        return "(no log file)"
    try:
        with log_path.open(encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip() or "(log is empty)"
    except OSError as exc:
        return f"(cannot read {log_path}: {exc})"


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
    interval_s: float = 0.05,
) -> None:
    """Poll `predicate` until it returns True.

    An exception from `predicate` counts as "not yet" (a server that is still starting refuses
    connections). Raises `ServerStartError` with the last log lines when `proc` exits first or
    `timeout_s` passes.
    """
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
            last_error = None
        except Exception as exc:
            last_error = exc
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"process {proc.pid} exited with code {proc.returncode} while waiting for {what}"
                f"\n--- last log lines ({log_path}) ---\n{log_tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise ServerStartError(
                f"timed out after {timeout_s:g} s waiting for {what}{detail}"
                f"\n--- last log lines ({log_path}) ---\n{log_tail(log_path)}"
            )
        time.sleep(interval_s)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> int:
    """Stop a process started with `start_new_session=True`, with all its children.

    Sends SIGTERM to its process group, waits up to `grace_s`, then SIGKILLs the group.
    Returns the exit code.
    """
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # The leader may be gone while children it spawned (backend stubs) linger.
    _signal_group(proc, signal.SIGKILL)
    return proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        # Not our group (started without a new session): signal the process only.
        if proc.poll() is None:
            proc.send_signal(sig)
