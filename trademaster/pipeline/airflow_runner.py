"""Runs the training DAG once with ``dag.test()`` against a local Airflow home.

Airflow reads its configuration when first imported, so the run happens in child processes
whose environment carries the Airflow home and every pipeline setting.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from trademaster.settings import PROJECT_ROOT, PipelineSettings

DAG_ID = "trademaster_training"
DAGS_FOLDER = PROJECT_ROOT / "dags"


def settings_environment(settings: PipelineSettings) -> dict[str, str]:
    """``TRADEMASTER_*`` variables that rebuild ``settings`` in a child process."""
    values = {
        **settings.model_dump(mode="json"),
        # Absolute, so that a process started in another folder finds the same files.
        **{
            name: str(Path(value).resolve())
            for name, value in settings.model_dump().items()
            if isinstance(value, Path)
        },
        "gateway_api_key": settings.gateway_api_key.get_secret_value(),
    }
    return {
        f"TRADEMASTER_{name.upper()}": str(value)
        for name, value in values.items()
        if value is not None
    }


def airflow_environment(
    settings: PipelineSettings, home: Path | None = None, metadata_url: str = ""
) -> dict[str, str]:
    """What every Airflow process of ours runs with: the pipeline's settings, the DAG folder,
    and a metadata database (SQLite in ``home`` unless ``metadata_url`` names another)."""
    home = home or settings.airflow_home
    return {
        **os.environ,
        **settings_environment(settings),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": str(settings.airflow_retry_delay_s),
    }


def run_training_dag(settings: PipelineSettings) -> float:
    """Migrates the Airflow database and runs the DAG; returns the wall time in seconds."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow_environment(settings)
    started = time.monotonic()
    print("[pipeline] airflow db migrate", flush=True)
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    log_path = settings.airflow_home / "dag_test.log"
    print(f"[pipeline] running DAG {DAG_ID} with dag.test() (full log: {log_path})", flush=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "trademaster.pipeline.dag_test", DAG_ID],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        progress = DagProgress(time.monotonic())
        for line in process.stdout:
            log.write(line)
            shown = progress.line(line)
            if shown:
                print(shown, flush=True)
        code = process.wait()
    if code != 0:
        tail = log_path.read_text().splitlines()[-60:]
        print("\n".join(tail), file=sys.stderr, flush=True)
        raise RuntimeError(f"DAG {DAG_ID} failed (exit {code}); full log: {log_path}")
    return time.monotonic() - started


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_TASK_STATE = re.compile(r"Task instance state updated.* new_state=(\w+)")
_OUR_LOG = re.compile(r"\[(info|warning|error)\s*\] (.*?) \[(?:trademaster|exporters)[\w.]*\]")


class DagProgress:
    """Turns the DAG run's log into short progress lines: tasks, their outcome, our messages."""

    def __init__(self, started: float) -> None:
        self._started = started
        self._task = ""
        self._task_started = started

    def line(self, text: str) -> str | None:
        if match := _TASK_START.search(text):
            self._task, self._task_started = match.group(1), time.monotonic()
            return f"[pipeline] {self._task} ..."
        if (match := _TASK_STATE.search(text)) and self._task:
            took = time.monotonic() - self._task_started
            return f"[pipeline] {self._task}: {match.group(1)} ({took:.1f} s)"
        if match := _OUR_LOG.search(text):
            return f"[pipeline]   {match.group(2)}"
        if text.startswith("[pipeline]"):
            return text.rstrip()
        return None
