"""The prediction service over fakes: grouping per model, routing, errors per row, the
promotion retry, the cache."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import EntityNotFound, InferenceFailed, InvalidRequest, ModelNotFound
from gateway.rollout import bucket, sticky_key
from gateway.service import Prediction
from gateway.settings import Rollout
from tests.unit.gateway.fakes import (
    default_features,
    default_triton,
    entry,
    request,
    risk_config,
    service,
    unchecked_request,
)
from trademaster.contract.models import ModelName

RISK, SENTIMENT = ModelName.RISK, ModelName.SENTIMENT


def test_a_mixed_batch_is_served_per_model_in_request_order() -> None:
    triton = default_triton()
    triton.entries = [e for e in triton.entries if e.name != ModelName.BEHAVIOR]
    rows = [
        request(model_name=RISK, user_id=1, symbol="AAA"),
        request(model_name=SENTIMENT, text="rates up"),
        request(model_name=RISK, user_id=9, symbol="AAA"),  # unknown user
        request(model_name=SENTIMENT, text="rates down"),
        unchecked_request(RISK, symbol="AAA"),  # no user_id
        request(model_name=ModelName.BEHAVIOR, user_id=1),  # not in Triton
    ]

    async def scenario() -> list:
        predictions, _ = await service(default_features(), triton)
        return await predictions.predict_many(rows)

    outcomes = asyncio.run(scenario())

    assert isinstance(outcomes[0], Prediction)
    assert outcomes[0].payload["model_name"] == RISK
    assert outcomes[0].payload["prediction"] == pytest.approx(0.44)
    assert outcomes[0].payload["feature_service"] == "risk_model_v1"
    assert isinstance(outcomes[2], EntityNotFound)
    assert isinstance(outcomes[4], InvalidRequest)
    assert isinstance(outcomes[5], ModelNotFound)
    sentiment = [outcomes[1], outcomes[3]]
    assert [o.payload["prediction"] for o in sentiment] == pytest.approx([0.7, -0.7])
    # One Triton call per model: the failed rows never reach it.
    assert [(call.model, len(next(iter(call.inputs.values())))) for call in triton.calls] == [
        (RISK, 1),
        (SENTIMENT, 2),
    ]


def test_a_thousand_sentiment_rows_succeed_despite_max_batch_size_128() -> None:
    triton = default_triton(sentiment=128)
    rows = [request(model_name=SENTIMENT, text=f"stock {i} up") for i in range(1000)]

    async def scenario() -> list:
        predictions, _ = await service(default_features(), triton)
        outcomes = await predictions.predict_many(rows)
        await predictions.drain()
        return outcomes

    outcomes = asyncio.run(scenario())

    assert all(isinstance(outcome, Prediction) for outcome in outcomes)
    assert len(triton.calls) == 8


def test_a_second_identical_request_is_answered_from_the_cache() -> None:
    triton = default_triton()

    async def scenario() -> tuple[Prediction, Prediction]:
        predictions, _ = await service(default_features(), triton)
        first = await predictions.predict(request(model_name=RISK, user_id=1, symbol="AAA"))
        second = await predictions.predict(request(model_name=RISK, user_id=1, symbol="AAA"))
        return first, second

    first, second = asyncio.run(scenario())

    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.payload["cached"] is True
    assert second.payload["prediction"] == first.payload["prediction"]
    assert len(triton.calls) == 1


def test_concurrent_predictions_are_coalesced_with_the_answers_they_get_alone() -> None:
    # (9, AAA): unknown; (3, BBB): a feature without a value; (1, AAA) twice.
    users = [(1, "AAA"), (2, "AAA"), (9, "AAA"), (3, "BBB"), (1, "AAA"), (2, "AAA")]

    async def answers(coalesce_batches: int) -> tuple[list[object], int]:
        triton = default_triton()
        predictions, _ = await service(
            default_features(), triton, coalesce_batches=coalesce_batches
        )
        outcomes = await asyncio.gather(
            *(
                predictions.predict(request(model_name=RISK, user_id=user, symbol=symbol))
                for user, symbol in users
            ),
            return_exceptions=True,
        )
        summary = [
            o.payload["prediction"] if isinstance(o, Prediction) else type(o).__name__
            for o in outcomes
        ]
        return summary, len(triton.calls)

    alone, calls_alone = asyncio.run(answers(0))
    together, calls_together = asyncio.run(answers(1))

    assert together == alone
    assert alone[2:4] == ["EntityNotFound", "InvalidFeatures"]
    assert alone[4] == alone[0]
    assert alone[5] == alone[1]
    # Alone: one Triton call per complete row. Coalesced: the requests made in one turn of
    # the loop all find the first batch still queued, and go in it.
    assert (calls_alone, calls_together) == (4, 1)


def test_predict_raises_the_rows_error() -> None:
    async def scenario() -> None:
        predictions, _ = await service(default_features(), default_triton())
        await predictions.predict(request(model_name=RISK, user_id=9, symbol="AAA"))

    with pytest.raises(EntityNotFound):
        asyncio.run(scenario())


def test_a_canary_takes_its_share_of_users_sticky_by_user() -> None:
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1, 2))
    rollout = Rollout(primary_version=1, canary_version=2, canary_weight=0.3)
    features = default_features()
    users = range(1, 201)
    features.rows["risk_model_v1"] = {(u, "AAA"): {"a": 1.0, "b": 2.0, "c": 3.0} for u in users}
    rows = [request(model_name=RISK, user_id=u, symbol="AAA") for u in users]

    async def scenario() -> list:
        predictions, _ = await service(features, triton, {RISK: rollout})
        return await predictions.predict_many(rows)

    outcomes = asyncio.run(scenario())

    expected = [2 if bucket(RISK, sticky_key(row)) < 0.3 else 1 for row in rows]
    assert [o.payload["model_version"] for o in outcomes] == expected
    assert 0.15 < expected.count(2) / len(expected) < 0.45
    # Each version's share in one call.
    assert sorted((c.version, len(c.inputs["features"])) for c in triton.calls) == [
        (1, expected.count(1)),
        (2, expected.count(2)),
    ]


def test_after_a_promotion_the_catalog_is_refreshed_and_the_rows_retried_once() -> None:
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1,))
    triton.failing.add((RISK, 1))  # version 1 was just unloaded
    promoted = list(triton.entries)
    promoted[0] = entry(RISK, risk_config(), versions=(2,))

    async def scenario() -> tuple[list, int]:
        predictions, _ = await service(default_features(), triton)
        reads = triton.repository_reads
        triton.next_entries = promoted
        outcomes = await predictions.predict_many(
            [request(model_name=RISK, user_id=u, symbol="AAA") for u in (1, 2)]
        )
        return outcomes, triton.repository_reads - reads

    outcomes, refreshes = asyncio.run(scenario())

    assert refreshes == 1
    assert [o.payload["model_version"] for o in outcomes] == [2, 2]
    assert [call.version for call in triton.calls] == [1, 2]


def test_a_version_that_still_fails_after_the_refresh_fails_its_rows() -> None:
    triton = default_triton()
    triton.failing.add((RISK, 1))

    async def scenario() -> list:
        predictions, _ = await service(default_features(), triton)
        return await predictions.predict_many(
            [
                request(model_name=RISK, user_id=1, symbol="AAA"),
                request(model_name=SENTIMENT, text="up"),
            ]
        )

    risk, sentiment = asyncio.run(scenario())

    assert isinstance(risk, InferenceFailed)
    assert isinstance(sentiment, Prediction)  # the other model is not affected
    assert [call.version for call in triton.calls_to(RISK)] == [1, 1]


def test_a_shadow_version_is_called_in_the_background_with_the_same_inputs() -> None:
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1, 2))

    async def scenario() -> Prediction:
        predictions, _ = await service(
            default_features(), triton, {RISK: Rollout(primary_version=1, shadow_version=2)}
        )
        answer = await predictions.predict(request(model_name=RISK, user_id=1, symbol="AAA"))
        await predictions.drain()
        return answer

    answer = asyncio.run(scenario())

    assert answer.payload["model_version"] == 1
    primary, shadow = triton.calls
    assert (primary.version, shadow.version) == (1, 2)
    assert (primary.inputs["features"] == shadow.inputs["features"]).all()
