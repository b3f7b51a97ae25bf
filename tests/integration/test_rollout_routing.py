"""Canary split (sticky per user), shadow comparison and promotion under load, with two
versions of risk-assessment-model loaded in a real Triton."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest

from exporters.risk import export_version
from tests.integration.stack import (
    ADMIN_KEY,
    RISK_MODEL,
    Gateway,
    metric_total,
    risk_gateway,
    wait_for,
)
from trademaster.launchers.deploy import load_into_triton
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.triton import TritonServer
from trademaster.registry import RegisteredVersion
from trademaster.risk.pipeline import train_and_register
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_versions(
    pipeline_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, int]]:
    """Versions 1 and N (a retrain) loaded side by side; a gateway in front of them, with its
    own cache Redis (rollouts are stored there, and must not leak into other tests)."""
    root = tmp_path_factory.mktemp("routing")
    settings = pipeline_settings.model_copy(
        update={"model_repository": root / "model_repository", "seed": 13}
    )
    shutil.copytree(pipeline_settings.model_repository, settings.model_repository)
    with (
        RedisServer(root / "redis") as cache,
        TritonServer(settings.model_repository, root / "triton", models=[RISK_MODEL]) as triton,
    ):
        candidate = train_and_register(settings)
        version = RegisteredVersion(RISK_MODEL, candidate["version"], candidate["run_id"])
        export_version(settings, version)
        load_into_triton(triton.http_url, RISK_MODEL)
        with risk_gateway(settings, cache, triton, root / "gateway.log") as gateway:
            with gateway.client() as client:
                wait_for(
                    lambda: _versions(client) == [1, version.version], 10, "both versions ready"
                )
            yield gateway, version.version


def _versions(client: httpx.Client) -> list[int]:
    models = {entry["name"]: entry for entry in client.get("/models").json()}
    versions: list[int] = models[RISK_MODEL]["versions"]
    return versions


def _set_rollout(gateway: Gateway, **rollout: object) -> httpx.Response:
    with gateway.client(key=ADMIN_KEY) as admin:
        return admin.put(f"/admin/rollouts/{RISK_MODEL}", json=rollout)


def test_canary_share_is_close_to_its_weight_and_sticky_per_user(
    two_versions: tuple[Gateway, int],
) -> None:
    gateway, new = two_versions
    assert _set_rollout(
        gateway, primary_version=1, canary_version=new, canary_weight=0.3
    ).status_code == 200  # fmt: skip
    with gateway.client() as client:
        first = {
            user: client.post("/predict", json={"user_id": user, "symbol": "SYN002"}).json()
            for user in range(1, 201)
        }
        again = {
            user: client.post("/predict", json={"user_id": user, "symbol": "SYN003"}).json()
            for user in range(1, 201)
        }
        metrics = client.get("/metrics").text
    share = sum(answer["model_version"] == new for answer in first.values()) / len(first)
    assert 0.2 <= share <= 0.4
    assert all(first[u]["model_version"] == again[u]["model_version"] for u in first)
    assert metric_total(metrics, "ml_version_predictions_total", route="canary") >= 40
    assert (
        metric_total(metrics, "ml_version_predictions_total", route="primary", model_version="1")
        > 0
    )


def test_shadow_version_is_called_and_compared_but_never_answers(
    two_versions: tuple[Gateway, int],
) -> None:
    gateway, new = two_versions
    assert _set_rollout(gateway, primary_version=new, shadow_version=1).status_code == 200
    with gateway.client() as client:
        answers = [
            client.post("/predict", json={"user_id": u, "symbol": "SYN004"}).json()
            for u in range(1, 31)
        ]

        def compared() -> bool:
            text = client.get("/metrics").text
            return (
                metric_total(text, "ml_shadow_predictions_total", default=0.0, shadow_version="1")
                >= 30
            )

        wait_for(compared, 10, "30 shadow comparisons")
    assert {answer["model_version"] for answer in answers} == {new}
    assert "shadow risk-assessment-model v1" in gateway.log_path.read_text()


def test_promotion_under_load_loses_no_request(two_versions: tuple[Gateway, int]) -> None:
    gateway, new = two_versions
    assert _set_rollout(gateway, primary_version=1).status_code == 200
    statuses: list[int] = []
    versions: list[int] = []
    stop = threading.Event()

    def load(offset: int) -> None:
        with gateway.client() as caller:
            user = offset
            while not stop.is_set():
                user = user % 400 + 1
                response = caller.post("/predict", json={"user_id": user, "symbol": "SYN005"})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.append(response.json()["model_version"])

    threads = [threading.Thread(target=load, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(statuses) > 50, 20, "load to build up")
        promoted = _set_rollout(gateway, primary_version=new)
        wait_for(lambda: versions[-20:].count(new) == 20, 20, "answers from the new version")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert promoted.status_code == 200
    assert len(statuses) > 100
    assert set(statuses) == {200}


def test_a_rollout_to_a_version_that_is_not_loaded_is_refused(
    two_versions: tuple[Gateway, int],
) -> None:
    gateway, _ = two_versions
    response = _set_rollout(gateway, canary_version=99, canary_weight=0.1)
    assert response.status_code == 409  # valid by the schema; conflicts with what is loaded
    assert response.json()["error"] == "version_not_loaded"
    assert "99" in response.json()["detail"]
