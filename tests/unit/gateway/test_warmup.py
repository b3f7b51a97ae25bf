"""The warm-up before a worker serves: every served version probed, each feature service read
once for an entity no one has, refusals counted as answers, failures and slowness never
keeping the worker from starting."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from gateway.warmup import warm_up
from tests.unit.gateway.fakes import Bench, FakeCache, bench
from trademaster.contract.models import ModelName


def _bench() -> Bench:
    """Every model answers whatever it is sent (the probe's zeros fit no real model here)."""
    bench_ = bench(ModelName.RISK)
    bench_.triton.respond = dict.fromkeys(bench_.triton.respond, lambda model, inputs: {})
    return bench_


def _warm(bench_: Bench, timeout_s: float = 5.0) -> int:
    cache: Any = FakeCache()
    return asyncio.run(warm_up(bench_.ctx, cache, timeout_s))


def test_every_served_version_is_probed_and_each_feature_service_read_once() -> None:
    warmed = _bench()

    answered = _warm(warmed)

    models = sorted(str(name) for name in ModelName)
    assert answered == len(models)
    assert sorted(call.model for call in warmed.triton.calls) == models
    services = [service for service, _ in warmed.features.reads]
    assert services
    assert len(services) == len(set(services))  # each feature service read once
    for service, rows in warmed.features.reads:
        assert rows == [dict.fromkeys(warmed.features.join_keys[service], -1)]
    risk = next(call for call in warmed.triton.calls if call.model == ModelName.RISK)
    np.testing.assert_array_equal(risk.inputs["features"], np.zeros((1, 1), np.float32))


def test_a_refusal_counts_as_an_answer_and_a_failure_does_not_stop_the_rest() -> None:
    warmed = _bench()
    warmed.triton.refused[ModelName.PORTFOLIO] = "infeasible"  # the model ran
    warmed.triton.failing = {(ModelName.RISK, 1)}  # Triton cannot serve it

    def broken(model: Any, inputs: Any) -> dict[str, np.ndarray]:
        raise RuntimeError("the fake breaks")

    warmed.triton.respond[ModelName.SENTIMENT] = broken

    answered = _warm(warmed)

    assert answered == len(ModelName) - 2  # risk failed, sentiment raised
    assert {call.model for call in warmed.triton.calls} >= {ModelName.PRICE, ModelName.BEHAVIOR}


def test_a_slow_warm_up_is_cut_short_and_off_is_off() -> None:
    warmed = _bench()

    async def hangs(*_: Any, **__: Any) -> dict[str, np.ndarray]:
        await asyncio.sleep(60)
        return {}

    warmed.triton.infer = hangs  # type: ignore[method-assign]

    assert _warm(warmed, timeout_s=0.05) == 0
    off = _bench()
    assert _warm(off, timeout_s=0) == 0
    assert off.triton.calls == []
    assert off.features.reads == []
