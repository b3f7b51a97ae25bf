from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.cache import KEY_PREFIX, PredictionCache, cache_key

ENTITIES = {"user_id": 7, "symbol": "SYN001"}


def test_key_names_model_and_version_in_clear() -> None:
    key = cache_key("risk-assessment-model", 3, "risk_model_v1", ENTITIES, {})
    assert key.startswith(f"{KEY_PREFIX}:risk-assessment-model:3:risk_model_v1:")


def test_a_new_version_never_shares_a_key() -> None:
    assert cache_key("m", 1, "s", ENTITIES, {}) != cache_key("m", 2, "s", ENTITIES, {})


def test_overrides_and_entities_change_the_key_but_not_their_order() -> None:
    base = cache_key("m", 1, "s", ENTITIES, {})
    assert cache_key("m", 1, "s", ENTITIES, {"rsi_14": 50.0}) != base
    assert cache_key("m", 1, "s", {"user_id": 8, "symbol": "SYN001"}, {}) != base
    assert cache_key("m", 1, "s", {"symbol": "SYN001", "user_id": 7}, {}) == base
    a = cache_key("m", 1, "s", ENTITIES, {"a": 1.0, "b": 2.0})
    assert a == cache_key("m", 1, "s", ENTITIES, {"b": 2.0, "a": 1.0})


def test_an_unreachable_redis_is_bypassed_not_raised() -> None:
    async def scenario() -> tuple[object, bool]:
        # Nothing listens on port 1: every call fails fast and is swallowed.
        redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
        cache = PredictionCache(redis, ttl_s=10)
        await cache.set("k", {"x": 1})
        value = await cache.get("k")
        alive = await cache.ping()
        await redis.aclose()
        return value, alive

    value, alive = asyncio.run(scenario())
    assert value is None
    assert alive is False


@pytest.mark.parametrize("ttl", [1, 300])
def test_ttl_is_kept(ttl: int) -> None:
    assert PredictionCache(Redis(), ttl)._ttl_s == ttl
