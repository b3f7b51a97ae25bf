from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trademaster.launchers.process import (
    ServerStartError,
    free_port,
    free_ports,
    stop_process,
    wait_until,
)


def _spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_free_port_can_be_bound() -> None:
    port = free_port()

    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct() -> None:
    ports = free_ports(5)

    assert len(set(ports)) == 5


def test_wait_until_returns_once_predicate_holds() -> None:
    calls = []

    def ready() -> bool:
        calls.append(1)
        return len(calls) >= 3

    wait_until(ready, timeout_s=5, what="third call", interval_s=0.001)

    assert len(calls) == 3


def test_wait_until_treats_exceptions_as_not_ready() -> None:
    outcomes: list[Exception | bool] = [ConnectionRefusedError("starting"), False, True]
    attempts = iter(outcomes)

    def probe() -> bool:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    wait_until(probe, timeout_s=5, what="probe", interval_s=0.001)


def test_wait_until_times_out_with_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))

    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        wait_until(lambda: False, timeout_s=0.2, what="the moon", log_path=log)

    assert time.monotonic() - started < 2
    message = str(info.value)
    assert "timed out after 0.2 s waiting for the moon" in message
    assert "line 99" in message
    assert "line 60" in message
    assert "line 59\n" not in message


def test_wait_until_reports_last_error(tmp_path: Path) -> None:
    def refuse() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(ServerStartError, match="nobody home"):
        wait_until(refuse, timeout_s=0.1, what="server")


def test_wait_until_fails_fast_when_process_exits(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("fatal: port in use\n")
    proc = _spawn("import sys; sys.exit(3)")

    started = time.monotonic()
    with pytest.raises(ServerStartError, match="exited with code 3") as info:
        wait_until(lambda: False, timeout_s=30, what="server", proc=proc, log_path=log)

    assert time.monotonic() - started < 10
    assert "fatal: port in use" in str(info.value)


def test_stop_process_terminates_the_whole_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    proc = _spawn(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    wait_until(lambda: child_pid_file.read_text() != "", timeout_s=10, what="child pid")
    child_pid = int(child_pid_file.read_text())

    code = stop_process(proc, grace_s=5)

    assert code == -signal.SIGTERM
    wait_until(lambda: not _alive(child_pid), timeout_s=5, what="child gone")


def test_stop_process_kills_when_term_is_ignored(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    proc = _spawn(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    wait_until(ready.exists, timeout_s=10, what="handler installed")

    started = time.monotonic()
    code = stop_process(proc, grace_s=0.3)

    assert code == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_stop_process_on_exited_process_returns_its_code() -> None:
    proc = _spawn("import sys; sys.exit(0)")
    proc.wait()

    assert stop_process(proc, grace_s=1) == 0
