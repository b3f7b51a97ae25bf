from __future__ import annotations

import asyncio

from gateway.cache import KEY_PREFIX, PredictionCache, cache_key, redis_client
from gateway.tasks.base import key_material


def test_key_names_model_version_and_feature_service_in_clear() -> None:
    key = cache_key("risk-assessment-model", 3, "risk_model_v1", "abc")
    assert key == f"{KEY_PREFIX}:risk-assessment-model:3:risk_model_v1:abc"


def test_a_new_version_never_shares_a_key() -> None:
    assert cache_key("m", 1, "s", "d") != cache_key("m", 2, "s", "d")


def test_key_material_follows_values_not_dict_order() -> None:
    import numpy as np

    vector = np.array([[1.0, 2.0]], np.float32)
    assert key_material({"a": 1, "b": 2}, vector) == key_material({"b": 2, "a": 1}, vector)
    assert key_material({"a": 1}, vector) != key_material({"a": 1}, vector + 1e-3)
    assert key_material("x", vector, True) != key_material("x", vector, False)


def test_an_unreachable_redis_is_bypassed_not_raised() -> None:
    async def scenario() -> tuple[object, bool]:
        # Nothing listens on port 1: every call fails and is swallowed.
        redis = redis_client("redis://127.0.0.1:1/0", timeout_s=0.2)
        cache = PredictionCache(redis, ttl_s=10)
        await cache.set_many({"k": {"x": 1}})
        values = await cache.get_many(["k", "j"])
        alive = await cache.ping()
        await redis.aclose()
        return values, alive

    values, alive = asyncio.run(scenario())
    assert values == [None, None]
    assert alive is False
