"""Prediction cache in Redis. Redis failing never fails a prediction: the cache is bypassed."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "tm:pred:v1"


def cache_key(
    model_name: str,
    model_version: int,
    feature_service: str,
    entities: dict[str, Any],
    overrides: dict[str, float],
) -> str:
    """Model name and version in clear (so a new version never matches), the rest hashed."""
    payload = orjson.dumps(
        {"entities": entities, "overrides": overrides}, option=orjson.OPT_SORT_KEYS
    )
    digest = hashlib.blake2b(payload, digest_size=16).hexdigest()
    return f"{KEY_PREFIX}:{model_name}:{model_version}:{feature_service}:{digest}"


class PredictionCache:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(key)
        except (RedisError, OSError) as exc:
            metrics.CACHE_BYPASSED.labels("get").inc()
            log.debug("cache get bypassed: %s", exc)
            return None
        if raw is None:
            return None
        value: dict[str, Any] = orjson.loads(raw)
        return value

    async def set(self, key: str, value: dict[str, Any]) -> None:
        try:
            await self._redis.set(key, orjson.dumps(value), ex=self._ttl_s)
        except (RedisError, OSError) as exc:
            metrics.CACHE_BYPASSED.labels("set").inc()
            log.debug("cache set bypassed: %s", exc)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.execute_command("PING"))
        except (RedisError, OSError):
            return False
