"""The prediction log's writer: every answer recorded, never at the cost of an answer.

``record`` runs on the request path: it appends plain dicts to a bounded in-memory queue and
returns; a full queue drops the newest records and counts them. A background task drains the
queue in batches (``batch_rows``, or whatever is there after ``flush_interval_s``) and writes
each in a worker thread (JSON encoding included), so the event loop never waits on the store.
A store that fails (unreachable, disk full, locked past the busy timeout) costs the batch in
hand, counted; the next batch tries again, so the log recovers by itself, and the failure is
logged once per outage. The engine and the schema are created lazily for the same reason: a
gateway whose store is unusable starts and serves.

The queue is one list that ``record`` extends (one call per request, not one put per row: a
1,000-row batch costs one ``extend``); everything touching it runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway import metrics
from trademaster.contract.prediction_log import (
    create_schema,
    prediction_log_engine,
    write_records,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from gateway.settings import GatewaySettings
    from gateway.tasks.base import Prepared
    from gateway.triton import ServedModel

log = logging.getLogger(__name__)

Record = dict[str, Any]
_HASH_SPACE = 2**64


def log_record(
    request_id: str,
    model: ServedModel,
    route: str,
    item: Prepared,
    answer: Mapping[str, Any],
    cache_hit: bool,
    logged_at: datetime,
) -> Record:
    """One logged answer, as plain Python objects (encoded later, in the writer's thread).
    ``route`` is one of ``ROUTES``; ``answer`` an adapter's answer or a cached payload."""
    confidence = answer.get("confidence")
    interval = confidence if isinstance(confidence, dict) else None
    return {
        "request_id": request_id,
        "logged_at": logged_at,
        "model_name": model.name,
        "model_version": model.version,
        "route": route,
        "feature_service": model.feature_service,
        "entity": item.logged_entity,
        "features": item.logged_features,
        "feature_timestamps": item.feature_timestamps,
        "stale_views": item.stale_views,
        "prediction": answer.get("prediction"),
        "confidence": None if interval is not None else confidence,
        "interval": interval,
        "probabilities": answer.get("probabilities"),
        "cache_hit": cache_hit,
    }


class PredictionLog:
    """Bounded, batched, best-effort writes of records to the prediction log's store."""

    def __init__(
        self,
        url: str | None,
        *,
        sample_rate: float = 1.0,
        queue_size: int = 10_000,
        batch_rows: int = 500,
        flush_interval_s: float = 1.0,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        self._url = url or None
        self._threshold = int(sample_rate * _HASH_SPACE)
        self._queue_size = queue_size
        self._batch_rows = batch_rows
        self._flush_interval_s = flush_interval_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._pending: list[Record] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._engine: sa.Engine | None = None
        self._schema_ready = False
        self._failing_since: float | None = None
        self._dropped_in_outage = 0

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> PredictionLog:
        return cls(
            settings.prediction_log_url,
            sample_rate=settings.prediction_log_sample_rate,
            queue_size=settings.prediction_log_queue_size,
            batch_rows=settings.prediction_log_batch_rows,
            flush_interval_s=settings.prediction_log_flush_interval_s,
        )

    @property
    def enabled(self) -> bool:
        return self._url is not None

    @property
    def queued(self) -> int:
        return len(self._pending)

    def sampled(self, request_id: str) -> bool:
        """Whether this request's answers are logged: a hash of its id against the rate, so
        the decision is the same for all its rows and for its shadow answers."""
        if self._url is None or self._threshold <= 0:
            return False
        if self._threshold >= _HASH_SPACE:
            return True
        digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._threshold

    def record(self, records: Sequence[Record]) -> None:
        """Queues ``records``; never blocks, never raises. What does not fit is dropped."""
        if not records or self._url is None:
            return
        if self._stopping:  # e.g. a shadow answer that finished after the drain
            metrics.PREDICTION_LOG_DROPPED.labels("shutdown").inc(len(records))
            return
        try:
            room = max(self._queue_size - len(self._pending), 0)
            if room >= len(records):
                self._pending.extend(records)
            else:
                self._pending.extend(records[:room])
                metrics.PREDICTION_LOG_DROPPED.labels("queue_full").inc(len(records) - room)
            if len(self._pending) >= self._batch_rows:
                self._wake.set()
        except Exception:  # a log must never fail an answer
            log.exception("prediction log: could not queue %d records", len(records))

    async def start(self) -> None:
        if self._url is not None and self._task is None:
            self._task = asyncio.create_task(self._run(), name="prediction-log-writer")

    async def stop(self) -> None:
        """Flushes what is queued (at most ``shutdown_timeout_s``), then closes the engine.
        Records still queued after that are dropped and counted."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=self._shutdown_timeout_s)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._pending:
            metrics.PREDICTION_LOG_DROPPED.labels("shutdown").inc(len(self._pending))
            log.warning("prediction log: %d records not written at shutdown", len(self._pending))
            self._pending = []
        metrics.PREDICTION_LOG_QUEUE_DEPTH.set(0)
        if self._engine is not None:
            await asyncio.to_thread(self._engine.dispose)
            self._engine = None

    async def _run(self) -> None:
        while True:
            if not self._stopping and len(self._pending) < self._batch_rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._flush_interval_s)
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._batch_rows]
                del self._pending[: self._batch_rows]
                await self._write(batch)
                if not self._stopping and len(self._pending) < self._batch_rows:
                    break  # a partial remainder waits for the next interval
            metrics.PREDICTION_LOG_QUEUE_DEPTH.set(len(self._pending))
            if self._stopping and not self._pending:
                return

    async def _write(self, batch: list[Record]) -> None:
        started = time.perf_counter()
        try:
            written = await asyncio.to_thread(self._write_blocking, batch)
        except Exception as exc:  # any failure of the store: the batch is lost, not the log
            metrics.PREDICTION_LOG_DROPPED.labels("sink_error").inc(len(batch))
            self._dropped_in_outage += len(batch)
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.warning(
                    "prediction log: store failing (%s: %s); dropping batches until it recovers",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
            return
        metrics.PREDICTION_LOG_WRITE_DURATION.observe(time.perf_counter() - started)
        metrics.PREDICTION_LOG_RECORDS.inc(written)
        if self._failing_since is not None:
            log.warning(
                "prediction log: store recovered after %.1f s; %d records dropped meanwhile",
                time.monotonic() - self._failing_since,
                self._dropped_in_outage,
            )
            self._failing_since = None
            self._dropped_in_outage = 0

    def _write_blocking(self, batch: list[Record]) -> int:
        """In a worker thread: the engine and the schema on first success, then the insert."""
        if self._engine is None:
            assert self._url is not None
            self._engine = prediction_log_engine(self._url)
        if not self._schema_ready:
            create_schema(self._engine)
            self._schema_ready = True
        return write_records(self._engine, batch)
