"""Publishing the batch side's metrics: one Pushgateway group per task, replaced on each push.

A group (``grouping_key`` ``{"task": ...}``) holds exactly what its task measured last, so a
model that is no longer checked drops out of the next push instead of lingering. Without a
``pushgateway_url`` nothing is pushed (a run on a laptop without the stack); a Pushgateway
that does not answer is logged and reported, never fails the pipeline: monitoring must not
stop training, and ``DriftCheckStale`` / ``TrainingDagLate`` notice silence.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import push_to_gateway

from trademaster.monitoring.metrics import PUSH_JOB, BatchMetrics, batch_registry
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 5.0


def push(settings: PipelineSettings, metrics: BatchMetrics, task: str) -> bool:
    """Replaces the Pushgateway group of ``task`` with ``metrics``; True when pushed."""
    if not settings.pushgateway_url:
        log.info("no pushgateway_url: %s's metrics are not pushed", task)
        return False
    try:
        push_to_gateway(
            settings.pushgateway_url,
            job=PUSH_JOB,
            registry=metrics.registry,
            grouping_key={"task": task},
            timeout=PUSH_TIMEOUT_S,
        )
    except OSError as exc:  # URLError, refused, timeout
        log.warning("pushing %s's metrics to %s failed: %s", task, settings.pushgateway_url, exc)
        return False
    log.info("pushed %s's metrics to %s", task, settings.pushgateway_url)
    return True


def dag_finished(
    settings: PipelineSettings, dag_id: str, succeeded: bool, duration_s: float | None
) -> bool:
    """Records a finished DAG run: its time (now) and duration, in the group of its outcome.

    Successes and failures have a group each, so a failure never erases the last success
    (``TrainingDagFailed`` compares the two timestamps; the next success clears it)."""
    metrics = batch_registry()
    state = "success" if succeeded else "failed"
    last = metrics.dag_last_success if succeeded else metrics.dag_last_failure
    last.labels(dag_id).set(time.time())
    if duration_s is not None:
        metrics.dag_run_duration.labels(dag_id, state).set(duration_s)
    return push(settings, metrics, f"dag-{dag_id}-{state}")
