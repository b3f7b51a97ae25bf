"""Warm-up: before a worker serves its first request, the paths a request takes run once, so
that the first client does not pay for first calls (connections, lazy initialisation, first
inferences of each version in this process).

Per served client model version: one online read of its feature service for an entity no one
has, and one inference with the probe request of its config (``trademaster.contract.probe``);
one prediction cache lookup. Bounded by ``timeout_s``; anything that fails is logged and
skipped: a worker never fails to start for its warm-up (a dependency that is down is what
``/ready`` reports)."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.cache import PredictionCache
from gateway.errors import GatewayError
from gateway.tasks.base import Context

log = logging.getLogger(__name__)

WARM_UP_CACHE_KEY = "warm-up"


async def warm_up(ctx: Context, cache: PredictionCache, timeout_s: float) -> int:
    """Runs the warm-up; the model versions that answered their probe."""
    if timeout_s <= 0:
        return 0
    started = time.perf_counter()
    try:
        answered = await asyncio.wait_for(_warm(ctx, cache), timeout_s)
    except TimeoutError:
        log.warning("warm-up stopped after %.1f s (GATEWAY_WARM_UP_TIMEOUT_S)", timeout_s)
        return 0
    took_ms = (time.perf_counter() - started) * 1e3
    log.info("warm-up: %d model versions answered in %.0f ms", answered, took_ms)
    return answered


async def _warm(ctx: Context, cache: PredictionCache) -> int:
    await cache.get_many([WARM_UP_CACHE_KEY])
    answered = 0
    read: set[str] = set()
    for entry in ctx.catalog.entries():
        for model in entry.by_version.values():
            service = model.feature_service
            try:
                if service and service not in read:
                    read.add(service)
                    labels = (model.name, str(model.version))
                    await ctx.features.read(service, [ctx.features.absent_entity(service)], labels)
                await ctx.triton.infer(model, ctx.triton.probe_inputs(model))
                answered += 1
            except GatewayError as exc:
                if exc.status_code < 500:  # a refusal of zeros: the model still ran
                    answered += 1
                log.debug("warm-up of %s v%d: %s", model.name, model.version, exc)
            except Exception as exc:  # never keep a worker from starting
                log.warning("warm-up of %s v%d failed: %s", model.name, model.version, exc)
    return answered
