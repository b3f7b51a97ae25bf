"""The prediction service: models, features, cache and Triton; knows nothing of HTTP.

Requests for the same model are served together: one Feast read, one cache round trip
(MGET), one Triton call for the misses, one cache write. A single prediction is a batch of
one. A row that fails (unknown entity) gets its own error; a dependency failure fails the
rows of that model only. Every answer (hit or miss, primary, canary or shadow) of a sampled
request goes to the prediction log in one ``record`` call per share, which only queues.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from gateway import metrics
from gateway.background import BackgroundTasks
from gateway.cache import PredictionCache, cache_key
from gateway.catalog import ModelCatalog
from gateway.coalesce import Coalescer
from gateway.errors import GatewayError, InferenceFailed
from gateway.prediction_log import PredictionLog, Record, log_record
from gateway.rollout import Rollouts, Route
from gateway.schemas import PredictRequest
from gateway.shadow import compare_shadow
from gateway.tasks.base import Context, Prepared, TaskAdapter
from gateway.tasks.registry import adapter_for
from gateway.triton import ServedModel

# Batches with more cache writes than this answer before the writes finish.
BACKGROUND_CACHE_WRITE_ROWS = 50


@dataclass(frozen=True)
class Prediction:
    """A JSON-ready answer with the shape of ``PredictResponse`` (built as a plain dict on
    the hot path; the integration tests validate answers against the model)."""

    payload: dict[str, Any]
    cache_hit: bool


Outcome = Prediction | GatewayError


class PredictionService:
    def __init__(
        self,
        context: Context,
        cache: PredictionCache,
        rollouts: Rollouts,
        prediction_log: PredictionLog | None = None,
        coalesce_batches: int = 0,
        max_coalesced_rows: int | None = None,
    ) -> None:
        """``coalesce_batches``: single predictions in flight together are served in batches
        (of at most ``max_coalesced_rows``; None: all that wait), at most this many batches
        of a model at a time (``gateway.coalesce``); 0: each alone."""
        self._ctx = context
        self._catalog: ModelCatalog = context.catalog
        self._cache = cache
        self._rollouts = rollouts
        self._log = prediction_log or PredictionLog(None)
        self._background = BackgroundTasks()
        self._coalescer: Coalescer[Outcome] | None = None
        if coalesce_batches:
            self._coalescer = Coalescer(
                partial(self._serve, timed=False),
                self._background,
                coalesce_batches,
                max_coalesced_rows,
            )

    async def predict(self, request: PredictRequest, request_id: str | None = None) -> Prediction:
        """One prediction; logged under ``request_id`` (generated if None)."""
        logged = self._logged_id(request_id)
        if self._coalescer is None:
            (outcome,) = await self._serve([request], [logged])
        else:
            # Timed here: a coalesced call's latency includes its wait for a free batch.
            started = time.perf_counter()
            outcome = await self._coalescer.submit(request, logged)
            metrics.PREDICTION_DURATION.labels(self._label(request.model_name)).observe(
                time.perf_counter() - started
            )
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    async def predict_many(
        self, requests: Sequence[PredictRequest], request_id: str | None = None
    ) -> list[Outcome]:
        """Many predictions; row ``i`` is logged as ``"{request_id}:{i}"``."""
        logged = self._logged_id(request_id)
        if logged is None:
            return await self._serve(requests, [None] * len(requests))
        return await self._serve(requests, [f"{logged}:{i}" for i in range(len(requests))])

    def _logged_id(self, request_id: str | None) -> str | None:
        """The id to log this request's answers under, or None if they are not logged."""
        if not self._log.enabled:
            return None
        request_id = request_id or uuid.uuid4().hex
        return request_id if self._log.sampled(request_id) else None

    def _label(self, name: str) -> str:
        """The model_name label of a requested name: unknown names share one series."""
        return name if self._catalog.knows(name) else "unknown"

    async def _serve(
        self, requests: Sequence[PredictRequest], ids: Sequence[str | None], timed: bool = True
    ) -> list[Outcome]:
        """``timed``: observe each model's share in ml_prediction_duration_seconds."""
        groups: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[request.model_name].append(index)
        outcomes: list[Outcome | None] = [None] * len(requests)
        for name, indices in groups.items():
            label = self._label(name)
            started = time.perf_counter()
            metrics.PREDICTION_REQUESTS.labels(label).inc(len(indices))
            try:
                results = await self._predict_model(
                    [requests[i] for i in indices], [ids[i] for i in indices]
                )
            except GatewayError as exc:
                results = [exc] * len(indices)
            for index, outcome in zip(indices, results, strict=True):
                outcomes[index] = outcome
                if isinstance(outcome, GatewayError):
                    metrics.PREDICTION_ERRORS.labels(label, outcome.code).inc()
            if timed:
                metrics.PREDICTION_DURATION.labels(label).observe(time.perf_counter() - started)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _predict_model(
        self, requests: Sequence[PredictRequest], ids: Sequence[str | None]
    ) -> list[Outcome]:
        """Routes each request (primary / canary), then serves each version's share at once."""
        name = requests[0].model_name
        outcomes: list[Outcome | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        for attempt in range(2):
            entry = self._catalog.entry(name)
            shares: dict[tuple[int, str], list[int]] = defaultdict(list)
            routes: dict[tuple[int, str], Route] = {}
            for index in pending:
                route = self._rollouts.route(entry, requests[index])
                shares[(route.model.version, route.label)].append(index)
                routes[(route.model.version, route.label)] = route
            retry: list[int] = []
            for key, indices in shares.items():
                try:
                    results = await self._predict_version(
                        routes[key], [requests[i] for i in indices], [ids[i] for i in indices]
                    )
                except InferenceFailed:
                    if attempt:
                        version, label = key
                        metrics.ROUTE_ANSWERS.labels(name, str(version), label, "error").inc(
                            len(indices)
                        )
                        raise
                    retry.extend(indices)
                    continue
                for index, outcome in zip(indices, results, strict=True):
                    outcomes[index] = outcome
            if not retry:
                break
            # The version may just have been replaced (promotion): re-read Triton, retry once.
            await self._catalog.refresh()
            pending = retry
        return [outcome for outcome in outcomes if outcome is not None]

    async def _predict_version(
        self, route: Route, requests: Sequence[PredictRequest], ids: Sequence[str | None]
    ) -> list[Outcome]:
        model = route.model
        adapter = adapter_for(model)
        started = time.perf_counter()
        outcomes: list[Outcome | None] = [None] * len(requests)
        valid: list[int] = []
        for index, request in enumerate(requests):
            try:
                adapter.validate(model, request)
                valid.append(index)
            except GatewayError as exc:
                outcomes[index] = exc
        if valid:
            prepared = await adapter.prepare(self._ctx, model, [requests[i] for i in valid])
            ready: list[tuple[int, Prepared]] = []
            for index, item in zip(valid, prepared, strict=True):
                if isinstance(item, GatewayError):
                    outcomes[index] = item
                else:
                    item.request_id = ids[index]
                    ready.append((index, item))
            await self._answer(model, adapter, ready, outcomes, route.label)
            if route.shadow is not None and route.shadow.version != model.version and ready:
                self._start_shadow(route.shadow, adapter, ready, outcomes)
        answered = [outcome for outcome in outcomes if outcome is not None]
        record_route(route, answered, time.perf_counter() - started)
        return answered

    async def _answer(
        self,
        model: ServedModel,
        adapter: TaskAdapter,
        ready: list[tuple[int, Prepared]],
        outcomes: list[Outcome | None],
        route_label: str,
    ) -> None:
        if not ready:
            return
        version = str(model.version)
        feature_service = model.feature_service or ""
        keys = [
            cache_key(model.name, model.version, feature_service, item.cache_digest())
            for _, item in ready
        ]
        cached = await self._cache.get_many(keys)
        misses = [
            (position, pair) for position, pair in enumerate(ready) if cached[position] is None
        ]
        hits = len(ready) - len(misses)
        metrics.CACHE_LOOKUPS.labels(model.name, version, "hit").inc(hits)
        metrics.CACHE_LOOKUPS.labels(model.name, version, "miss").inc(len(misses))
        self._cache.record_ratio(model.name, version, hits, len(ready))
        metrics.VERSION_PREDICTIONS.labels(model.name, version, route_label).inc(len(ready))

        records: list[Record] = []
        if hits:
            answered_at = datetime.now(UTC)
            for position, (index, item) in enumerate(ready):
                value = cached[position]
                if value is None:
                    continue
                outcomes[index] = Prediction({**value, "cached": True}, cache_hit=True)
                if item.request_id is not None:
                    records.append(
                        log_record(
                            item.request_id, model, route_label, item, value, True, answered_at
                        )
                    )
        if misses:
            records += await self._answer_misses(
                model, adapter, misses, keys, outcomes, route_label
            )
        # Only once the whole share is answered: a share retried after a promotion is
        # logged once, by the attempt that answered it.
        self._log.record(records)

    async def _answer_misses(
        self,
        model: ServedModel,
        adapter: TaskAdapter,
        misses: list[tuple[int, tuple[int, Prepared]]],
        keys: list[str],
        outcomes: list[Outcome | None],
        route_label: str,
    ) -> list[Record]:
        """Triton for the rows the cache could not answer (``(position in keys, (index in
        outcomes, item))``); their answers are cached, in the background for big batches.
        Returns the log records of those to be logged."""
        answers = await adapter.infer(self._ctx, model, [item for _, (_, item) in misses])
        to_cache: dict[str, dict[str, Any]] = {}
        records: list[Record] = []
        answered_at = datetime.now(UTC)
        now = answered_at.isoformat().replace("+00:00", "Z")
        for (position, (index, item)), answer in zip(misses, answers, strict=True):
            if isinstance(answer, GatewayError):
                outcomes[index] = answer
                continue
            for view in item.stale_views:
                metrics.STALE_FEATURES.labels(model.name, view).inc()
            payload = {
                "model_name": model.name,
                "model_version": model.version,
                "prediction": answer["prediction"],
                "confidence": answer["confidence"],
                "probabilities": answer.get("probabilities"),
                "feature_importance": answer.get("feature_importance"),
                "timestamp": now,
                "feature_service": model.feature_service,
                "cached": False,
                "stale_features": list(item.stale_views),
            }
            outcomes[index] = Prediction(payload, cache_hit=False)
            to_cache[keys[position]] = payload
            if item.request_id is not None:
                records.append(
                    log_record(
                        item.request_id, model, route_label, item, answer, False, answered_at
                    )
                )
        if len(to_cache) > BACKGROUND_CACHE_WRITE_ROWS:
            # A big batch's cache writes need not delay its answer.
            self._background.spawn(self._cache.set_many(to_cache))
        else:
            await self._cache.set_many(to_cache)
        return records

    def _start_shadow(
        self,
        shadow: ServedModel,
        adapter: TaskAdapter,
        ready: list[tuple[int, Prepared]],
        outcomes: list[Outcome | None],
    ) -> None:
        """Calls the shadow version in the background; its answers are only compared."""
        primary = [outcomes[index] for index, _ in ready]
        self._background.spawn(
            compare_shadow(
                self._ctx, shadow, adapter, [item for _, item in ready], primary, self._log
            )
        )

    async def drain(self) -> None:
        """Waits for background work (coalesced batches, shadow calls, cache writes), e.g.
        at shutdown."""
        await self._background.drain()


def record_route(route: Route, answered: Sequence[Outcome], took_s: float) -> None:
    """Per version and route: answers by outcome, and the time this share took."""
    name, version = route.model.name, str(route.model.version)
    counts = {"ok": 0, "error": 0, "rejected": 0}
    for outcome in answered:
        if isinstance(outcome, GatewayError):
            counts["error" if outcome.status_code >= 500 else "rejected"] += 1
        else:
            counts["ok"] += 1
    for outcome_name, count in counts.items():
        if count:
            metrics.ROUTE_ANSWERS.labels(name, version, route.label, outcome_name).inc(count)
    metrics.ROUTE_DURATION.labels(name, version, route.label).observe(took_s)
