"""Concurrent single predictions served together, without waiting for company.

A worker under load has several ``/predict`` calls in flight at once. Each one alone costs a
Feast read, a cache round trip, a Triton call and a cache write; most of that cost is per
call, not per row. The coalescer lets at most ``max_batches`` batches of one model run at a
time: a request that finds a free slot starts a batch at once (no delay is ever added to wait
for others), and requests arriving while every slot is busy queue up and go together as the
next batch, one Feast read, one MGET, one Triton call and one cache write for all of them.
Each model has its own lane: a slow model (a big portfolio) never holds up another's calls.

At concurrency 1 every batch is one request, exactly as without it. Rows stay independent:
each gets its own outcome, and an error that several rows share only because they were
served together (a 4xx the model raised for the whole call, e.g. an infeasible input) is
not handed to the others: such rows are served again one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway import metrics
from gateway.background import BackgroundTasks
from gateway.errors import GatewayError
from gateway.schemas import PredictRequest

Outcome = TypeVar("Outcome")
# ``PredictionService._serve``: requests and their log ids in, one outcome per request out.
ServeMany = Callable[[Sequence[PredictRequest], Sequence[str | None]], Awaitable[list[Outcome]]]


@dataclass
class _Waiting(Generic[Outcome]):
    request: PredictRequest
    logged_id: str | None
    answer: asyncio.Future[Outcome]


@dataclass
class _Lane(Generic[Outcome]):
    """One model's queue and how many of its batches are in flight."""

    queue: list[_Waiting[Outcome]] = field(default_factory=list)
    running: int = 0


class Coalescer(Generic[Outcome]):
    def __init__(
        self,
        serve: ServeMany[Outcome],
        background: BackgroundTasks,
        max_batches: int,
        max_rows: int | None = None,
    ) -> None:
        """``max_batches``: batches of one model in flight at once (each a call of
        ``serve``, run as ``background`` work); ``max_rows``: the most requests one batch
        takes from the queue (None: all that wait)."""
        if max_batches < 1 or (max_rows is not None and max_rows < 1):
            raise ValueError("max_batches and max_rows must be at least 1")
        self._serve = serve
        self._background = background
        self._max_batches = max_batches
        self._max_rows = max_rows
        # Keyed by the model name as requested; an empty lane is dropped, so names that no
        # model has leave nothing behind.
        self._lanes: dict[str, _Lane[Outcome]] = {}

    async def submit(self, request: PredictRequest, logged_id: str | None) -> Outcome:
        """The outcome of ``request`` (a prediction or a GatewayError), served in a batch."""
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        lane = self._lanes.setdefault(request.model_name, _Lane())
        lane.queue.append(_Waiting(request, logged_id, answer))
        if lane.running < self._max_batches:
            lane.running += 1
            self._background.spawn(self._drain(request.model_name, lane))
        # Shielded: a client that goes away cancels its wait, not the batch others share.
        return await asyncio.shield(answer)

    async def _drain(self, name: str, lane: _Lane[Outcome]) -> None:
        try:
            while lane.queue:
                batch = lane.queue[: self._max_rows]
                del lane.queue[: self._max_rows]
                metrics.COALESCED_BATCH_ROWS.observe(len(batch))
                await self._serve_batch(batch)
        finally:
            lane.running -= 1
            if not lane.running:
                # Empty unless this batch was cancelled (shutdown): nothing else would answer.
                for item in lane.queue:
                    item.answer.cancel()
                lane.queue.clear()
                self._lanes.pop(name, None)

    async def _serve_batch(self, batch: list[_Waiting[Outcome]]) -> None:
        try:
            outcomes = await self._serve(
                [item.request for item in batch], [item.logged_id for item in batch]
            )
            if len(batch) > 1:
                outcomes = await self._separate_shared_refusals(batch, outcomes)
        except BaseException as exc:  # a bug, or cancellation at shutdown: every row gets it
            for item in batch:
                if not item.answer.done():
                    item.answer.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            if not item.answer.done():
                item.answer.set_result(outcome)

    async def _separate_shared_refusals(
        self, batch: list[_Waiting[Outcome]], outcomes: list[Outcome]
    ) -> list[Outcome]:
        """Rows sharing one 4xx error object are served again alone: the refusal may be one
        row's doing. A 5xx (a dependency down) is the same for every row and stays shared."""
        shared: dict[int, list[int]] = {}
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, GatewayError) and outcome.status_code < 500:
                shared.setdefault(id(outcome), []).append(index)
        again = [index for rows in shared.values() if len(rows) > 1 for index in rows]
        if not again:
            return outcomes
        separate = await asyncio.gather(
            *(self._serve([batch[i].request], [batch[i].logged_id]) for i in again)
        )
        outcomes = list(outcomes)
        for index, (outcome,) in zip(again, separate, strict=True):
            outcomes[index] = outcome
        return outcomes
