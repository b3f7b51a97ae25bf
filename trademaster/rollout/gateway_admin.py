"""The running gateway as the rollout sees it: its traffic splits (admin API), the versions it
serves (``/models``) and its Prometheus metrics (``/metrics``)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from trademaster.launchers.process import Closing
from trademaster.rollout.analysis import Snapshot


class GatewayAdminError(RuntimeError):
    """The gateway refused a rollout change or did not reach the expected state in time."""


class GatewayAdmin(Closing):
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url
        self._client = httpx.Client(
            base_url=base_url, timeout=timeout_s, headers={"X-API-Key": api_key}
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise GatewayAdminError(
                f"{method} {self.base_url}{path}: HTTP {response.status_code} {response.text}"
            )
        return response

    def reachable(self) -> bool:
        try:
            return self._client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def served_versions(self, model_name: str) -> list[int]:
        for entry in self._call("GET", "/models").json():
            if entry["name"] == model_name:
                return [int(version) for version in entry["versions"]]
        return []

    def set_rollout(self, model_name: str, **split: int | float | None) -> dict[str, Any]:
        """Primary, canary (with its weight) and shadow versions; left out means cleared."""
        body = {key: value for key, value in split.items() if value is not None}
        answer: dict[str, Any] = self._call(
            "PUT", f"/admin/rollouts/{model_name}", json=body
        ).json()
        return answer

    def snapshot(self) -> Snapshot:
        return Snapshot.parse(self._call("GET", "/metrics").text)

    def wait_for_versions(
        self,
        model_name: str,
        present: frozenset[int] = frozenset(),
        absent: frozenset[int] = frozenset(),
        timeout_s: float = 60.0,
    ) -> list[int]:
        """Until the gateway's view of Triton (refreshed in the background) has ``present``
        and lacks ``absent``."""
        deadline = time.monotonic() + timeout_s
        while True:
            versions = self.served_versions(model_name)
            if present <= set(versions) and not absent & set(versions):
                return versions
            if time.monotonic() > deadline:
                raise GatewayAdminError(
                    f"the gateway serves {model_name} versions {versions} after {timeout_s:.0f} s "
                    f"(waiting for {sorted(present)} present, {sorted(absent)} gone)"
                )
            time.sleep(0.5)

    def close(self) -> None:
        self._client.close()
