"""A small client of Airflow's REST API (v2): log in, trigger a DAG run, follow it to the end.

``make up`` uses it to start the first training run on the running scheduler; the tests use it
to trigger runs the way an operator or another system would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from trademaster.launchers.process import Closing

FINISHED = frozenset({"success", "failed"})
TASK_DONE = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class AirflowApiError(RuntimeError):
    """The API answered with an error, or a run did not finish in time."""


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str | None
    try_number: int
    duration_s: float | None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    state: str
    took_s: float
    tasks: dict[str, TaskState]

    def failed_tasks(self) -> list[str]:
        return sorted(t.task_id for t in self.tasks.values() if t.state == "failed")


class AirflowApi(Closing):
    """``with AirflowApi(login) as api:``; ``login`` has ``url``, ``username``, ``password``."""

    def __init__(self, login: Any, timeout_s: float = 30.0) -> None:
        self._client = httpx.Client(base_url=login.url, timeout=timeout_s)
        token = self._client.post(
            "/auth/token", json={"username": login.username, "password": login.password}
        )
        if token.status_code >= 300:
            raise AirflowApiError(f"login to {login.url} refused: HTTP {token.status_code}")
        self._client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise AirflowApiError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json()

    def dag_exists(self, dag_id: str) -> bool:
        return self._client.get(f"/api/v2/dags/{dag_id}").status_code == 200

    def dag(self, dag_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._json("GET", f"/api/v2/dags/{dag_id}")
        return found

    def active_runs(self, dag_id: str) -> list[str]:
        runs = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns",
            params=[("state", "queued"), ("state", "running")],
        )
        return [str(run["dag_run_id"]) for run in runs["dag_runs"]]

    def trigger(self, dag_id: str, note: str = "") -> str:
        """A manual run now; returns its run id."""
        run = self._json(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": {}, **({"note": note} if note else {})},
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._json("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def tasks(self, dag_id: str, run_id: str) -> dict[str, TaskState]:
        found = self._json(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": 100},
        )
        return {
            item["task_id"]: TaskState(
                item["task_id"], item["state"], int(item["try_number"]), item["duration"]
            )
            for item in found["task_instances"]
        }

    def wait(
        self,
        dag_id: str,
        run_id: str,
        timeout_s: float,
        progress: Callable[[str], None] | None = None,
        poll_s: float = 2.0,
    ) -> RunResult:
        """Polls the run until it succeeds or fails, reporting each task's state changes."""
        started = time.monotonic()
        seen: dict[str, tuple[str | None, int]] = {}
        while True:
            state = self.run_state(dag_id, run_id)
            tasks = self.tasks(dag_id, run_id)
            for task in tasks.values():
                key = (task.state, task.try_number)
                if progress and task.state and seen.get(task.task_id) != key:
                    took = f" ({task.duration_s:.1f} s)" if task.state in TASK_DONE else ""
                    retry = f", try {task.try_number}" if task.try_number > 1 else ""
                    progress(f"{task.task_id}: {task.state}{retry}{took}")
                seen[task.task_id] = key
            elapsed = time.monotonic() - started
            if state in FINISHED:
                return RunResult(run_id, state, elapsed, tasks)
            if elapsed > timeout_s:
                raise AirflowApiError(
                    f"DAG run {run_id} still {state} after {timeout_s:.0f} s; see the Airflow UI"
                )
            time.sleep(poll_s)

    def close(self) -> None:
        self._client.close()
