"""Traffic splits: deterministic buckets, canary shares, fallbacks, admin changes."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import VersionNotLoaded
from gateway.rollout import REDIS_KEY, Rollouts, bucket, sticky_key
from gateway.settings import Rollout
from tests.unit.gateway.fakes import FakeRedis, entry, request, risk_config, rollouts
from trademaster.contract.models import ModelName

RISK = ModelName.RISK


def test_a_bucket_is_a_pure_function_of_model_and_key() -> None:
    assert bucket(RISK, "user:7") == bucket(RISK, "user:7")
    assert 0.0 <= bucket(RISK, "user:7") < 1.0
    # Another model splits its users independently.
    keys = [f"user:{i}" for i in range(200)]
    assert [bucket(RISK, k) for k in keys] != [bucket(ModelName.BEHAVIOR, k) for k in keys]


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5, 0.9])
def test_the_canary_share_over_many_users_is_its_weight(weight: float) -> None:
    users = 20_000
    share = sum(bucket(RISK, f"user:{i}") < weight for i in range(1, users + 1)) / users
    # Binomial standard deviation at 20,000 users is at most 0.0036.
    assert share == pytest.approx(weight, abs=0.015)


def test_the_sticky_key_prefers_the_user_then_the_instruments_then_the_text() -> None:
    assert sticky_key(request(model_name=RISK, user_id=3, symbol="AAA")) == "user:3"
    assert sticky_key(request(model_name=ModelName.PRICE, symbol="AAA")) == "symbol:AAA"
    portfolio = request(model_name=ModelName.PORTFOLIO, symbols=["AAA", "BBB"])
    assert sticky_key(portfolio) == "symbols:AAA,BBB"
    assert sticky_key(request(model_name=ModelName.SENTIMENT, text="hi")) == "text:hi"


def test_routes_follow_the_rollout_and_the_same_user_always_lands_on_the_same_side() -> None:
    models = entry(RISK, risk_config(), versions=(1, 2, 3))
    split = rollouts(
        {RISK: Rollout(primary_version=1, canary_version=2, canary_weight=0.5, shadow_version=3)}
    )
    routes = {}
    for user in range(1, 101):
        row = request(model_name=RISK, user_id=user, symbol="AAA")
        route = split.route(models, row)
        assert route == split.route(models, row)  # sticky
        routes[user] = route
        expected = "canary" if bucket(RISK, f"user:{user}") < 0.5 else "primary"
        assert route.label == expected
        assert route.model.version == (2 if expected == "canary" else 1)
        assert route.shadow is not None
        assert route.shadow.version == 3
    assert {route.label for route in routes.values()} == {"primary", "canary"}


def test_a_configured_version_that_is_not_ready_falls_back_to_the_newest() -> None:
    models = entry(RISK, risk_config(), versions=(4, 5))
    split = rollouts({RISK: Rollout(primary_version=1, canary_version=2, canary_weight=1.0)})

    route = split.route(models, request(model_name=RISK, user_id=1, symbol="AAA"))

    assert (route.label, route.model.version, route.shadow) == ("primary", 5, None)


def test_an_admin_change_needs_loaded_versions_and_reaches_other_workers() -> None:
    models = entry(RISK, risk_config(), versions=(1, 2))
    redis = FakeRedis()
    here, there = Rollouts({}, redis), Rollouts({}, redis)  # type: ignore[arg-type]

    with pytest.raises(VersionNotLoaded, match=r"canary_version 7 .*\(ready versions: \[1, 2\]\)"):
        asyncio.run(here.set(RISK, Rollout(canary_version=7, canary_weight=0.1), models))
    assert REDIS_KEY not in redis.hashes

    change = Rollout(primary_version=1, canary_version=2, canary_weight=0.2)
    asyncio.run(here.set(RISK, change, models))
    asyncio.run(there.reload())

    assert here.get(RISK) == there.get(RISK) == change
    assert there.get(ModelName.BEHAVIOR) == Rollout()
