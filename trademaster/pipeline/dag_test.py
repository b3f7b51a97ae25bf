"""Child process of ``run_training_dag``: parse the DAG folder and run one DAG with ``dag.test()``.

Exit status 0 when the run succeeded, 1 when a task failed, 2 when the DAG folder does not
import cleanly.
"""

from __future__ import annotations

import sys

from trademaster.pipeline.airflow_runner import DAGS_FOLDER


def main(dag_id: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{error}", file=sys.stderr)
        return 2
    dag = bag.dags[dag_id]
    run = dag.test()
    state = str(getattr(run, "state", "unknown"))
    print(f"[pipeline] DAG {dag_id} finished: {state}", flush=True)
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
