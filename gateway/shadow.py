"""Shadow traffic: the candidate version answers the same inputs; we only log and compare.

Its answers go to the prediction log too (route "shadow", under the primary's request id),
so the candidate's served behaviour can be analysed before it takes traffic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway import metrics
from gateway.errors import GatewayError
from gateway.prediction_log import PredictionLog, Record, log_record
from gateway.tasks.base import Context, Prepared, TaskAdapter
from gateway.triton import ServedModel

if TYPE_CHECKING:
    from gateway.service import Outcome

log = logging.getLogger("gateway.shadow")


def disagreement(primary: Any, shadow: Any) -> float:
    """|difference| of numeric predictions; 0/1 for labels; mean over weight dicts."""
    if isinstance(primary, dict) and isinstance(shadow, dict):
        keys = primary.keys() | shadow.keys()
        total = sum(abs(float(primary.get(k, 0.0)) - float(shadow.get(k, 0.0))) for k in keys)
        return total / max(1, len(keys))
    if isinstance(primary, str) or isinstance(shadow, str):
        return 0.0 if primary == shadow else 1.0
    return abs(float(primary) - float(shadow))


async def compare_shadow(
    ctx: Context,
    shadow: ServedModel,
    adapter: TaskAdapter,
    prepared: Sequence[Prepared],
    primary: Sequence[Outcome | None],
    prediction_log: PredictionLog | None = None,
) -> None:
    labels = (shadow.name, str(shadow.version))
    try:
        answers = await adapter.infer(ctx, shadow, prepared)
    except GatewayError as exc:
        metrics.SHADOW_ERRORS.labels(*labels).inc(len(prepared))
        log.warning("shadow %s v%s failed: %s", shadow.name, shadow.version, exc.detail)
        return
    if prediction_log is not None:
        prediction_log.record(shadow_records(shadow, prepared, answers))
    for answer, outcome in zip(answers, primary, strict=True):
        if isinstance(answer, GatewayError) or outcome is None or isinstance(outcome, GatewayError):
            metrics.SHADOW_ERRORS.labels(*labels).inc()
            continue
        primary_prediction = outcome.payload["prediction"]
        difference = disagreement(primary_prediction, answer["prediction"])
        metrics.SHADOW_PREDICTIONS.labels(*labels).inc()
        metrics.SHADOW_DIFFERENCE.labels(*labels).observe(difference)
        log.info(
            "shadow %s v%s vs v%s: primary=%s shadow=%s diff=%.6f",
            shadow.name,
            shadow.version,
            outcome.payload["model_version"],
            primary_prediction,
            answer["prediction"],
            difference,
        )


def shadow_records(
    shadow: ServedModel, prepared: Sequence[Prepared], answers: Sequence[Any]
) -> list[Record]:
    """Log records of the shadow's answers to the logged (sampled) requests."""
    answered_at = datetime.now(UTC)
    return [
        log_record(item.request_id, shadow, "shadow", item, answer, False, answered_at)
        for item, answer in zip(prepared, answers, strict=True)
        if item.request_id is not None and not isinstance(answer, GatewayError)
    ]
