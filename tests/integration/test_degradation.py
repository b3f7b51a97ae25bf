"""Dependencies dying under the gateway: the cache Redis, Triton, the Feast online store.

Each test kills a real process, checks the promised behaviour, restarts it and checks that
the gateway recovers without a restart of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import httpx
import pytest

from tests.integration.stack import RISK_MODEL, Gateway, metric_total, risk_gateway, wait_for
from trademaster.features.build import apply_and_materialize
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.triton import TritonServer
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration

TRITON_TIMEOUT_S = 1.0
FEAST_TIMEOUT_S = 1.0
_users = count(1)


@dataclass
class Isolated:
    gateway: Gateway
    settings: PipelineSettings
    online: RedisServer
    cache: RedisServer
    triton: TritonServer


@pytest.fixture(scope="module")
def isolated(
    pipeline_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Isolated]:
    """A gateway with its own online store, cache and Triton, so killing them harms no one."""
    root = tmp_path_factory.mktemp("degradation")
    with (
        RedisServer(root / "online") as online,
        RedisServer(root / "cache") as cache,
        TritonServer(pipeline_settings.model_repository, root / "triton", models=[RISK_MODEL])
        as triton,
    ):  # fmt: skip
        settings = pipeline_settings.model_copy(
            update={"online_store_redis": f"127.0.0.1:{online.port}"}
        )
        apply_and_materialize(settings)
        with risk_gateway(
            settings,
            cache,
            triton,
            root / "gateway.log",
            extra_env={
                "GATEWAY_TRITON_TIMEOUT_S": str(TRITON_TIMEOUT_S),
                "GATEWAY_FEAST_TIMEOUT_S": str(FEAST_TIMEOUT_S),
                "GATEWAY_CACHE_RETRY_AFTER_S": "0.5",
            },
        ) as gateway:
            yield Isolated(gateway, settings, online, cache, triton)


def _fresh_body() -> dict[str, object]:
    """A request nobody asked before, so it cannot be answered from the cache."""
    return {"user_id": next(_users), "symbol": "SYN006"}


def _timed_fresh_predict(client: httpx.Client) -> tuple[httpx.Response, float]:
    """A fresh /predict and the seconds it took to answer."""
    started = time.monotonic()
    response = client.post("/predict", json=_fresh_body())
    return response, time.monotonic() - started


def test_cache_redis_down_predictions_still_served(isolated: Isolated) -> None:
    with isolated.gateway.client() as client:
        isolated.cache.kill()
        body = _fresh_body()
        answers = [client.post("/predict", json=body) for _ in range(3)]
        ready = client.get("/ready")
        bypassed = metric_total(
            client.get("/metrics").text, "ml_prediction_cache_bypassed_total", op="get"
        )

        isolated.cache.restart()
        wait_for(lambda: client.get("/ready").json()["cache"] is True, 10, "cache back")
        again = _fresh_body()
        first, second = (client.post("/predict", json=again) for _ in range(2))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.headers["X-Cache"] for a in answers} == {"miss"}
    assert ready.status_code == 200
    assert ready.json()["cache"] is False
    assert bypassed >= 1
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")


def test_triton_down_gives_503_quickly_then_recovers(isolated: Isolated) -> None:
    with isolated.gateway.client() as client:
        isolated.triton.stop()
        down, took = _timed_fresh_predict(client)
        wait_for(lambda: client.get("/ready").status_code == 503, 5, "/ready to turn 503")

        isolated.triton.start()
        wait_for(lambda: client.get("/ready").status_code == 200, 60, "/ready to turn 200")
        up = client.post("/predict", json=_fresh_body())
    assert down.status_code == 503
    assert down.json()["error"] == "inference_unavailable"
    assert took < TRITON_TIMEOUT_S + 2.0
    assert up.status_code == 200


def test_feast_online_store_down_gives_503_features_unavailable(isolated: Isolated) -> None:
    with isolated.gateway.client() as client:
        isolated.online.kill()
        down, took = _timed_fresh_predict(client)

        isolated.online.restart()  # empty: nothing persisted, features must be reloaded
        empty = client.post("/predict", json=_fresh_body())
        apply_and_materialize(isolated.settings)
        up = client.post("/predict", json=_fresh_body())
    assert down.status_code == 503
    assert down.json()["error"] == "features_unavailable"
    assert took < FEAST_TIMEOUT_S + 2.0
    assert empty.status_code == 404  # an empty online store knows no user
    assert up.status_code == 200
