"""The coalescer over a scripted ``serve``: batches form only while others are in flight,
per model, rows keep their own outcomes, a shared refusal is re-served row by row."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.background import BackgroundTasks
from gateway.coalesce import Coalescer
from gateway.errors import FeaturesUnavailable, GatewayError, InvalidRequest
from gateway.schemas import PredictRequest
from tests.unit.gateway.fakes import request
from trademaster.contract.models import ModelName

RISK, BEHAVIOUR = ModelName.RISK, ModelName.BEHAVIOR


class ScriptedServe:
    """Answers ``"{user_id}@{log id}"``; holds every call until ``release`` is set when
    ``hold`` is, and records each call's users."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.refuse_user: int | None = None
        self.fail_all = False

    async def __call__(
        self, requests: Sequence[PredictRequest], ids: Sequence[str | None]
    ) -> list[object]:
        users = [int(getattr(item, "user_id", 0)) for item in requests]
        self.calls.append(users)
        await self.release.wait()
        if self.fail_all:
            return [FeaturesUnavailable("feature store unavailable")] * len(requests)
        if self.refuse_user in users:
            # As a model call refused as a whole: one error object for every row.
            return [InvalidRequest(f"user {self.refuse_user} is infeasible")] * len(requests)
        return [f"{user}@{logged}" for user, logged in zip(users, ids, strict=True)]


def _risk(user: int) -> PredictRequest:
    return request(model_name=RISK, user_id=user, symbol="AAA")


def test_one_request_at_a_time_is_served_alone() -> None:
    serve = ScriptedServe()

    async def scenario() -> list[object]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        return [await coalescer.submit(_risk(user), f"r{user}") for user in (1, 2, 3)]

    assert asyncio.run(scenario()) == ["1@r1", "2@r2", "3@r3"]
    assert serve.calls == [[1], [2], [3]]


def test_requests_arriving_while_a_batch_is_in_flight_go_together_next() -> None:
    serve = ScriptedServe(hold=True)

    async def scenario() -> list[object]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        first = asyncio.create_task(coalescer.submit(_risk(1), "a"))
        await asyncio.sleep(0)  # the first batch starts, and waits
        later = [asyncio.create_task(coalescer.submit(_risk(u), f"id{u}")) for u in (2, 3, 4)]
        await asyncio.sleep(0)
        serve.release.set()
        return list(await asyncio.gather(first, *later))

    assert asyncio.run(scenario()) == ["1@a", "2@id2", "3@id3", "4@id4"]
    assert serve.calls == [[1], [2, 3, 4]]


def test_two_batches_may_be_in_flight_and_max_rows_bounds_a_batch() -> None:
    serve = ScriptedServe(hold=True)

    async def scenario() -> None:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=2, max_rows=2)
        tasks = [asyncio.create_task(coalescer.submit(_risk(u), None)) for u in range(1, 7)]
        await asyncio.sleep(0)
        serve.release.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    # Two batches start at once with what is queued; the rest follow two rows at a time.
    assert sorted(len(call) for call in serve.calls) == [2, 2, 2]
    assert sorted(user for call in serve.calls for user in call) == [1, 2, 3, 4, 5, 6]


def test_a_model_held_up_does_not_hold_up_another() -> None:
    slow = asyncio.Event()

    async def serve(requests: Sequence[PredictRequest], ids: Sequence[str | None]) -> list[str]:
        if requests[0].model_name == RISK:
            await slow.wait()
        return [request.model_name for request in requests]

    async def scenario() -> tuple[object, bool]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        risk = asyncio.create_task(coalescer.submit(_risk(1), None))
        await asyncio.sleep(0)
        behaviour = await asyncio.wait_for(
            coalescer.submit(request(model_name=BEHAVIOUR, user_id=1), None), 1.0
        )
        risk_was_waiting = not risk.done()
        slow.set()
        await risk
        return behaviour, risk_was_waiting

    assert asyncio.run(scenario()) == (BEHAVIOUR, True)


def test_a_refusal_shared_by_a_batch_lands_only_on_the_row_that_caused_it() -> None:
    serve = ScriptedServe(hold=True)
    serve.refuse_user = 3

    async def scenario() -> list[object]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        first = asyncio.create_task(coalescer.submit(_risk(1), "a"))
        await asyncio.sleep(0)
        later = [asyncio.create_task(coalescer.submit(_risk(u), f"id{u}")) for u in (2, 3, 4)]
        await asyncio.sleep(0)
        serve.release.set()
        return list(await asyncio.gather(first, *later))

    outcomes = asyncio.run(scenario())

    assert outcomes[0] == "1@a"
    assert outcomes[1] == "2@id2"
    assert outcomes[3] == "4@id4"
    assert isinstance(outcomes[2], InvalidRequest)
    assert "user 3" in outcomes[2].detail
    # The batch [2, 3, 4], then each of its rows alone.
    assert serve.calls[1:] == [[2, 3, 4], [2], [3], [4]]


def test_a_dependency_failure_stays_shared_and_is_not_retried() -> None:
    serve = ScriptedServe(hold=True)
    serve.fail_all = True

    async def scenario() -> list[object]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        first = asyncio.create_task(coalescer.submit(_risk(1), None))
        await asyncio.sleep(0)
        later = [asyncio.create_task(coalescer.submit(_risk(u), None)) for u in (2, 3)]
        await asyncio.sleep(0)
        serve.release.set()
        return list(await asyncio.gather(first, *later))

    outcomes = asyncio.run(scenario())

    assert all(isinstance(o, GatewayError) and o.status_code == 503 for o in outcomes)
    assert serve.calls == [[1], [2, 3]]


def test_a_caller_that_goes_away_leaves_the_batch_to_the_others() -> None:
    serve = ScriptedServe(hold=True)

    async def scenario() -> tuple[object, bool]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        first = asyncio.create_task(coalescer.submit(_risk(1), None))
        await asyncio.sleep(0)
        gone = asyncio.create_task(coalescer.submit(_risk(2), None))
        stays = asyncio.create_task(coalescer.submit(_risk(3), None))
        await asyncio.sleep(0)
        gone.cancel()
        serve.release.set()
        await first
        return await stays, gone.cancelled()

    assert asyncio.run(scenario()) == ("3@None", True)
    assert serve.calls == [[1], [2, 3]]


def test_an_unexpected_error_reaches_every_row_of_its_batch() -> None:
    async def serve(requests: Sequence[PredictRequest], ids: Sequence[str | None]) -> list[str]:
        raise RuntimeError("bug")

    async def scenario() -> list[object]:
        coalescer = Coalescer(serve, BackgroundTasks(), max_batches=1, max_rows=100)
        tasks = [asyncio.create_task(coalescer.submit(_risk(u), None)) for u in (1, 2)]
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    outcomes = asyncio.run(scenario())

    assert all(isinstance(o, RuntimeError) for o in outcomes)


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(ScriptedServe(), BackgroundTasks(), max_batches=0, max_rows=10)
