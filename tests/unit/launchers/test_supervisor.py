"""The restarter of make up's servers: what exited by itself comes back, after a back-off that
doubles and starts over once a restart held; what was stopped on purpose stays stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path

from trademaster.launchers.supervisor import Restarter
from trademaster.launchers.triton import TritonServer


class Server:
    def __init__(self) -> None:
        self.code: int | None = None
        self.restarts = 0
        self.refuse = False

    def exit_code(self) -> int | None:
        return self.code

    def restart(self) -> None:
        self.restarts += 1
        if self.refuse:
            raise RuntimeError("port in use")
        self.code = None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _restarter(server: Server, clock: Clock, said: list[str]) -> Restarter:
    return Restarter([("tritonserver 1/2", server)], said.append, clock=clock, max_delay_s=8)


def test_a_server_that_exited_is_started_again_and_one_running_is_left_alone() -> None:
    server, clock, said = Server(), Clock(), list[str]()
    restarter = _restarter(server, clock, said)

    restarter.check()
    assert server.restarts == 0

    server.code = -9  # killed
    restarter.check()

    assert server.restarts == 1
    assert restarter.restarts == 1
    assert said == [
        "tritonserver 1/2 exited with code -9; starting it again",
        "tritonserver 1/2 is back",
    ]


def test_failed_restarts_back_off_doubling_and_the_delay_starts_over_once_one_holds() -> None:
    server, clock, said = Server(), Clock(), list[str]()
    restarter = _restarter(server, clock, said)
    server.code, server.refuse = 1, True
    tries = []
    for second in range(40):
        clock.now = float(second)
        before = server.restarts
        restarter.check()
        if server.restarts > before:
            tries.append(second)

    assert tries == [0, 1, 3, 7, 15, 23, 31, 39]  # 1, 2, 4, 8 s apart, then at most 8
    assert "did not come back: port in use; next try in 8 s" in said[-1]

    server.refuse = False
    clock.now = 47.0
    restarter.check()  # comes back
    clock.now = 60.0
    restarter.check()  # held for 8 s (max_delay_s): the back-off starts over
    server.code = 1
    clock.now = 61.0
    restarter.check()
    clock.now = 62.0
    server.code, server.refuse = 1, True
    restarter.check()
    assert server.restarts == len(tries) + 3  # 47, 61 and again 1 s later


def test_after_close_nothing_is_restarted() -> None:
    server, clock, said = Server(), Clock(), list[str]()
    restarter = _restarter(server, clock, said)
    restarter.close()

    server.code = 0
    restarter.check()

    assert server.restarts == 0


def test_tritonserver_reports_a_crash_not_a_deliberate_stop(tmp_path: Path) -> None:
    """The restarter's view of a real process: running (None), killed (its code), stopped on
    purpose (None again, even though the process has exited)."""
    server = TritonServer(tmp_path / "repository", tmp_path / "work")
    server._proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    assert server.exit_code() is None

    server._proc.kill()
    server._proc.wait()
    assert server.exit_code() == -9

    server._proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    server.stop()
    assert server._proc.poll() is not None
    assert server.exit_code() is None
