"""Per-model traffic splits: primary and canary versions (sticky per user) and a shadow.

The split comes from settings and can be changed at run time through the admin endpoint; a
change is also written to Redis so every gateway worker picks it up on its next refresh.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import VersionNotLoaded
from gateway.schemas import PredictRequest
from gateway.settings import Rollout
from gateway.triton import RepositoryEntry, ServedModel

log = logging.getLogger(__name__)

REDIS_KEY = "tm:rollouts:v1"
BUCKETS = 10_000


@dataclass(frozen=True)
class Route:
    model: ServedModel
    label: str  # "primary" or "canary"
    shadow: ServedModel | None


def sticky_key(request: PredictRequest) -> str:
    """The same user (or instrument, or text) always lands on the same side of a split.

    Each model's request carries only its own fields, so they are read with ``getattr``.
    """
    user_id = getattr(request, "user_id", None)
    if user_id is not None:
        return f"user:{user_id}"
    symbol = getattr(request, "symbol", None)
    if symbol is not None:
        return f"symbol:{symbol}"
    symbols = getattr(request, "symbols", None)
    if symbols:
        return "symbols:" + ",".join(symbols)
    return f"text:{getattr(request, 'text', None)}"


def bucket(model_name: str, key: str) -> float:
    digest = hashlib.blake2b(f"{model_name}|{key}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") % BUCKETS) / BUCKETS


class Rollouts:
    def __init__(self, configured: dict[str, Rollout], redis: Redis) -> None:
        self._configured = dict(configured)
        self._current = dict(configured)
        self._redis = redis

    def get(self, model_name: str) -> Rollout:
        return self._current.get(model_name, Rollout())

    def all(self) -> dict[str, Rollout]:
        return dict(self._current)

    async def reload(self) -> None:
        """Settings, overridden by what an admin stored in Redis (if Redis answers)."""
        try:
            stored = await cast(Awaitable[dict[bytes, bytes]], self._redis.hgetall(REDIS_KEY))
        except (RedisError, OSError):
            return
        merged = dict(self._configured)
        for name, raw in stored.items():
            key = name.decode() if isinstance(name, bytes) else str(name)
            merged[key] = Rollout.model_validate(orjson.loads(raw))
        self._current = merged

    async def set(self, model_name: str, rollout: Rollout, entry: RepositoryEntry) -> None:
        for field in ("primary_version", "canary_version", "shadow_version"):
            version = getattr(rollout, field)
            if version is not None and version not in entry.versions:
                raise VersionNotLoaded(
                    f"{field} {version} of {model_name} is not loaded in Triton "
                    f"(ready versions: {list(entry.versions)})"
                )
        self._current[model_name] = rollout
        try:
            await cast(
                Awaitable[int], self._redis.hset(REDIS_KEY, model_name, rollout.model_dump_json())
            )
        except (RedisError, OSError) as exc:
            log.warning("rollout of %s kept in this worker only (Redis: %s)", model_name, exc)

    def route(self, entry: RepositoryEntry, request: PredictRequest) -> Route:
        """Primary or canary for this request, plus the shadow version if one is set.

        A configured version that is not ready falls back to the newest ready version.
        """
        assert entry.served is not None
        rollout = self.get(entry.name)
        primary = entry.by_version.get(rollout.primary_version or -1, entry.served)
        shadow = entry.by_version.get(rollout.shadow_version or -1)
        canary = entry.by_version.get(rollout.canary_version or -1)
        in_canary = bucket(entry.name, sticky_key(request)) < rollout.canary_weight
        if canary is not None and in_canary:
            return Route(canary, "canary", shadow)
        return Route(primary, "primary", shadow)
