"""A canary that fails its analysis is rolled back under load: every user returns to the
champion, MLflow's ``champion`` alias moves back, the version leaves the model repository and
Triton, and no request fails on the way (real Triton, gateway, Redis and MLflow server)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from exporters.registered import exported_versions
from exporters.risk import export_version
from tests.integration.stack import ADMIN_KEY, RISK_MODEL, risk_gateway
from tests.integration.traffic import ConstantLoad, recent_traders
from trademaster import registry
from trademaster.launchers.deploy import load_into_triton
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.triton import TritonServer
from trademaster.rollout import canary
from trademaster.settings import PipelineSettings
from trademaster.training.fingerprint import FINGERPRINT_TAG

pytestmark = pytest.mark.integration


@pytest.fixture
def private_repository(pipeline_settings: PipelineSettings, tmp_path: Path) -> PipelineSettings:
    copy = tmp_path / "model_repository"
    shutil.copytree(pipeline_settings.model_repository, copy)
    # Its own data folder (rolled back versions go there), the session's warehouse.
    return pipeline_settings.model_copy(
        update={
            "model_repository": copy,
            "data_dir": tmp_path / "var",
            "warehouse_url": pipeline_settings.resolved_warehouse_url,
        }
    )


@pytest.fixture
def risk_triton(private_repository: PipelineSettings, tmp_path: Path) -> Iterator[TritonServer]:
    with TritonServer(
        private_repository.model_repository, tmp_path / "triton", models=[RISK_MODEL]
    ) as server:
        yield server


def _clone_of_champion(settings: PipelineSettings) -> registry.RegisteredVersion:
    """A new registry version with the champion's model and tags (what a retrain on the same
    data would give), so the test needs no training."""
    import mlflow

    champion = registry.version_for_alias(settings, RISK_MODEL, registry.CHAMPION)
    assert champion is not None
    registry.configure_mlflow(settings)
    client = mlflow.MlflowClient()
    source = client.get_model_version(RISK_MODEL, str(champion.version))
    assert source.source is not None
    created = client.create_model_version(
        RISK_MODEL,
        source.source,
        run_id=source.run_id,
        # Not a training run: without the fingerprint, a later rerun of the pipeline on the
        # session's data reuses the champion, not this clone.
        tags={key: value for key, value in source.tags.items() if key != FINGERPRINT_TAG},
        # MLflow 3 sources are logged models ("models:/m-..."): the version must name it.
        model_id=source.model_id or source.source.removeprefix("models:/"),
    )
    return registry.RegisteredVersion(RISK_MODEL, int(created.version), str(created.run_id))


def _bodies(settings: PipelineSettings) -> list[dict[str, object]]:
    return [
        {"model_name": RISK_MODEL, "user_id": user, "symbol": symbol}
        for user, symbol in recent_traders(settings, 60)
    ]


def test_a_failed_canary_is_rolled_back_without_a_failed_request(
    private_repository: PipelineSettings,
    risk_triton: TritonServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    settings = private_repository
    champion = registry.version_for_alias(settings, RISK_MODEL, registry.CHAMPION)
    assert champion is not None
    old = exported_versions(settings.model_repository, RISK_MODEL)[-1]
    new = _clone_of_champion(settings)
    with risk_gateway(settings, redis_server, risk_triton, tmp_path / "gateway.log") as gateway:
        settings = settings.model_copy(
            update={
                "gateway_url": gateway.base_url,
                "gateway_api_key": SecretStr(ADMIN_KEY),
                "triton_url": risk_triton.http_url,
                "canary_weight": 0.5,
                # More answers than 12 s of light load gives: the analysis must roll back.
                "canary_min_requests": 100_000,
                "canary_max_wait_s": 12,
            }
        )
        plan = canary.CanaryPlan(RISK_MODEL, old, new.version)
        with ConstantLoad(gateway.base_url, ADMIN_KEY, _bodies(settings), rate_per_s=25) as load:
            time.sleep(1)
            export_version(settings, new)
            registry.set_alias(settings, RISK_MODEL, registry.CHAMPION, new.version)  # validated
            canary.begin(settings, plan, lambda: load_into_triton(risk_triton.http_url, RISK_MODEL))
            outcome = canary.conclude(settings, plan)
            time.sleep(1)
        with gateway.client(ADMIN_KEY) as client:
            models = {entry["name"]: entry for entry in client.get("/models").json()}
            rollout = client.get("/admin/rollouts").json().get(RISK_MODEL)

    try:
        assert outcome["promoted"] is False
        assert "canary answers (needs 100000)" in outcome["reason"]
        assert load.record.failures == [], load.record.failures[:5]
        seen = load.record.versions[RISK_MODEL]
        assert set(seen) <= {old, new.version}, seen
        assert seen[new.version] > 0, "no user reached the canary"
        assert registry.version_for_alias(settings, RISK_MODEL, registry.CHAMPION) == champion
        assert registry.version_for_alias(settings, RISK_MODEL, canary.CANARY_ALIAS) is None
        assert new.version not in exported_versions(settings.model_repository, RISK_MODEL)
        assert list((settings.resolved_data_dir / "rolled_back" / RISK_MODEL).iterdir())
        assert new.version not in models[RISK_MODEL]["versions"]
        assert models[RISK_MODEL]["version"] == old
        assert rollout in (None, {"primary_version": None, "canary_version": None,
                                  "canary_weight": 0.0, "shadow_version": None})  # fmt: skip
    finally:
        registry.set_alias(settings, RISK_MODEL, registry.CHAMPION, champion.version)
