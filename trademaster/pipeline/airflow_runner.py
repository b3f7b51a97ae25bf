"""Runs the training DAG once with ``dag.test()`` against a local Airflow home.

Airflow reads its configuration when first imported, so the run happens in child processes
whose environment carries the Airflow home and every pipeline setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from trademaster.settings import PROJECT_ROOT, PipelineSettings

DAG_ID = "trademaster_training"
DAGS_FOLDER = PROJECT_ROOT / "dags"


def settings_environment(settings: PipelineSettings) -> dict[str, str]:
    """``TRADEMASTER_*`` variables that rebuild ``settings`` in a child process."""
    values = settings.model_dump(mode="json")
    return {
        f"TRADEMASTER_{name.upper()}": str(value)
        for name, value in values.items()
        if value is not None
    }


def airflow_environment(settings: PipelineSettings) -> dict[str, str]:
    home = settings.airflow_home
    return {
        **os.environ,
        **settings_environment(settings),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
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
    print(f"[pipeline] running DAG {DAG_ID} with dag.test()", flush=True)
    completed = subprocess.run(
        [sys.executable, "-m", "trademaster.pipeline.dag_test", DAG_ID], env=env, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"DAG {DAG_ID} failed (exit {completed.returncode}); see the log above")
    return time.monotonic() - started
