"""Reading a live Prometheus through its HTTP API (``/api/v1``), with deadlines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector (or scalar) of ``expr`` now; raises on a bad expression."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body.get("status") == "success", (expr, body)
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def alerts(url: str, state: str = "firing") -> list[dict[str, Any]]:
    """Alerts Prometheus holds in ``state`` (pending or firing)."""
    body = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()
    return [alert for alert in body["data"]["alerts"] if alert["state"] == state]


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float) -> T:
    """Polls ``check`` until it returns something truthy; AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s:.0f} s")
        time.sleep(2)
