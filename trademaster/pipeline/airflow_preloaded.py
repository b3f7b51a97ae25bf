"""``airflow scheduler`` with the pipeline's task code imported once, before it forks.

The LocalExecutor forks its workers from the scheduler process, and each task process is a
bare ``os.fork`` of a worker (Linux): whatever the scheduler has imported, every task already
has. Without this, each of the DAG's tasks imports torch, MLflow, Feast, ONNX Runtime and
scikit-learn again, about 4 s of CPU apiece on two cores, even a canary task that only skips.
The imports start no threads, so forking after them is safe (``gc.freeze`` keeps the copied
pages shared).

Run as ``python -m trademaster.pipeline.airflow_preloaded scheduler [args]``.
"""

from __future__ import annotations

import gc
import importlib
import sys

# Every module a task imports (``trademaster.pipeline.tasks`` imports them lazily, and the
# registry and feature code import MLflow and Feast inside their functions).
TASK_MODULES = (
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.pytorch",
    "feast",
    "onnxruntime",
    "torch",
    "trademaster.pipeline.tasks",
    "trademaster.pipeline.catalog",
    "trademaster.features.build",
    "trademaster.features.extract",
    "trademaster.warehouse.validation",
    "trademaster.training.promotion",
    "trademaster.launchers.deploy",
    "trademaster.rollout.canary",
    "trademaster.monitoring.drift_check",
    "trademaster.monitoring.metrics",
    "trademaster.monitoring.publish",
    "trademaster.monitoring.report",
    "trademaster.monitoring.realized",
    "exporters.registered",
)


def preload() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
    gc.freeze()


def main() -> None:
    preload()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *sys.argv[1:]]
    airflow_main()


if __name__ == "__main__":
    main()
