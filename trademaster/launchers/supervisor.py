"""What the kubelet does for a pod's containers, for the processes of ``make up``: a server that
exited by itself (crashed, killed) is started again, after a back-off that doubles from
``first_delay_s`` to ``max_delay_s`` between attempts and starts over once a restart has kept
running for ``max_delay_s``. A server stopped on purpose (``stop()``) is left stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class Restartable(Protocol):
    def exit_code(self) -> int | None:
        """The exit code of a process that exited by itself; None while it runs or after
        a deliberate stop."""

    def restart(self) -> object:
        """Start it again (raises if it does not come up)."""


@dataclass
class _Watched:
    name: str
    server: Restartable
    delay_s: float
    next_try: float = 0.0
    restarted_at: float | None = None


class Restarter:
    def __init__(
        self,
        servers: Sequence[tuple[str, Restartable]],
        say: Callable[[str], None],
        check_s: float = 2.0,
        first_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._watched = [_Watched(name, server, first_delay_s) for name, server in servers]
        self._say = say
        self._check_s = check_s
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def check(self) -> None:
        """One pass: restart what exited by itself and is due."""
        now = self._clock()
        for watched in self._watched:
            code = watched.server.exit_code()
            if code is None:
                if watched.restarted_at is not None and now - watched.restarted_at >= (
                    self._max_delay_s
                ):
                    watched.delay_s, watched.restarted_at = self._first_delay_s, None
                continue
            if now < watched.next_try or self._stop.is_set():
                continue
            self._say(f"{watched.name} exited with code {code}; starting it again")
            watched.restarted_at = now
            watched.next_try = now + watched.delay_s
            watched.delay_s = min(watched.delay_s * 2, self._max_delay_s)
            try:
                watched.server.restart()
            except Exception as exc:  # the next try comes after the back-off
                self._say(f"{watched.name} did not come back: {exc}; next try in "
                          f"{watched.next_try - now:.0f} s")  # fmt: skip
                continue
            self.restarts += 1
            self._say(f"{watched.name} is back")

    def start(self) -> Restarter:
        self._thread = threading.Thread(target=self._run, name="restarter", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._check_s):
            try:
                self.check()
            except Exception:  # never let the watcher die
                log.exception("restarter pass failed")

    def close(self) -> None:
        """Stops watching (before the servers are stopped on purpose)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=300)
