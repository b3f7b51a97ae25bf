"""Prediction cache in Redis. Redis failing never fails a prediction: the cache is bypassed.

Keys hold the model name, the model version and the feature service in clear, then a digest
of the effective model inputs (feature values after overrides, text, ...): a new version
never matches its predecessor's entries, and an override never matches the plain features.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway import metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "tm:pred:v2"


def redis_client(url: str, timeout_s: float) -> Redis:
    """The gateway's Redis client (cache and rollout state): one immediate retry, no backoff.
    redis-py's default retries three times with exponential backoff, which made a cache
    write take 6 s and a readiness ping 4.5 s while Redis refused connections; a cache that
    waits is worse than none."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
    )


def cache_key(model_name: str, model_version: int, feature_service: str, digest: str) -> str:
    return f"{KEY_PREFIX}:{model_name}:{model_version}:{feature_service or '-'}:{digest}"


class PredictionCache:
    def __init__(self, redis: Redis, ttl_s: int, retry_after_s: float = 1.0) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._retry_after_s = retry_after_s
        self._skip_until = 0.0
        self._lookups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        if self._down():
            metrics.CACHE_BYPASSED.labels("get").inc()
            return [None] * len(keys)
        try:
            raw = await self._redis.mget(keys)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return [None] * len(keys)
        return [orjson.loads(value) if value is not None else None for value in raw]

    async def set_many(self, values: dict[str, dict[str, Any]]) -> None:
        if not values:
            return
        if self._down():
            metrics.CACHE_BYPASSED.labels("set").inc()
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in values.items():
                    pipe.set(key, orjson.dumps(value), ex=self._ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("set", exc)

    def _down(self) -> bool:
        """After a failure Redis is skipped for a while: no connect timeout on every request."""
        return time.monotonic() < self._skip_until

    def _failed(self, op: str, exc: BaseException) -> None:
        metrics.CACHE_BYPASSED.labels(op).inc()
        if self._skip_until == 0.0 or time.monotonic() >= self._skip_until:
            log.warning("prediction cache unavailable (%s); bypassing it", exc)
        self._skip_until = time.monotonic() + self._retry_after_s

    def record_ratio(self, model_name: str, version: str, hits: int, lookups: int) -> None:
        counts = self._lookups[(model_name, version)]
        counts[0] += hits
        counts[1] += lookups
        if counts[1]:
            metrics.CACHE_HIT_RATIO.labels(model_name, version).set(counts[0] / counts[1])

    async def ping(self) -> bool:
        try:
            alive = bool(await self._redis.execute_command("PING"))
        except (RedisError, OSError):
            return False
        self._skip_until = 0.0
        return alive
