"""Constant light load on a running gateway, recording every answer (status and version)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx
import sqlalchemy as sa

from trademaster.settings import PipelineSettings


def recent_traders(settings: PipelineSettings, limit: int) -> list[tuple[int, str]]:
    """(user, symbol) of the ``limit`` users who opened a position most recently: entities
    with fresh features, many of them, so that both sides of a traffic split see users."""
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.connect() as connection:
        pairs = connection.execute(
            sa.text(
                "SELECT user_id, symbol FROM trades WHERE action = 'open' "
                "GROUP BY user_id ORDER BY MAX(ts) DESC LIMIT :limit"
            ),
            {"limit": limit},
        ).all()
    engine.dispose()
    return [(int(user), str(symbol)) for user, symbol in pairs]


@dataclass
class TrafficRecord:
    statuses: Counter[int] = field(default_factory=Counter)
    versions: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


class ConstantLoad:
    """Cycles through ``bodies`` (``/predict`` requests for several models and entities) from
    one thread, ``rate_per_s`` at most, until the block exits."""

    def __init__(
        self, base_url: str, api_key: str, bodies: Sequence[dict[str, Any]], rate_per_s: float
    ) -> None:
        self._client = httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=10)
        self._bodies = list(bodies)
        self._interval = 1.0 / rate_per_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="constant-load", daemon=True)
        self.record = TrafficRecord()

    def _run(self) -> None:
        for body in itertools.cycle(self._bodies):
            if self._stop.is_set():
                return
            started = time.monotonic()
            self._send(body)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _send(self, body: dict[str, Any]) -> None:
        try:
            response = self._client.post("/predict", json=body)
        except httpx.HTTPError as exc:
            self.record.statuses[0] += 1
            self.record.failures.append(f"{body['model_name']}: {exc!r}")
            return
        self.record.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.record.versions[body["model_name"]][int(response.json()["model_version"])] += 1
        else:
            self.record.failures.append(
                f"{body['model_name']}: HTTP {response.status_code} {response.text[:300]}"
            )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._client.close()
