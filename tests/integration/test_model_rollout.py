"""Readiness before a model is loaded, and a new version replacing the old one under load."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from exporters.risk import export_version
from tests.integration.stack import RISK_MODEL, risk_gateway, wait_for
from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.launchers.deploy import load_into_triton
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.triton import TritonServer
from trademaster.registry import RegisteredVersion
from trademaster.risk.pipeline import train_and_register
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration

USER_ID, SYMBOL = 1, "SYN001"


@pytest.fixture
def private_repository(pipeline_settings: PipelineSettings, tmp_path: Path) -> PipelineSettings:
    """A copy of the model repository, so deploying here does not touch other tests' Triton."""
    copy = tmp_path / "model_repository"
    shutil.copytree(pipeline_settings.model_repository, copy)
    return pipeline_settings.model_copy(update={"model_repository": copy})


@pytest.fixture
def empty_triton(private_repository: PipelineSettings, tmp_path: Path) -> Iterator[TritonServer]:
    with TritonServer(private_repository.model_repository, tmp_path / "triton", models=[]) as t:
        yield t


def _served_version(client: httpx.Client) -> int | None:
    models = {entry["name"]: entry for entry in client.get("/models").json()}
    version: int | None = models[RISK_MODEL]["version"]
    return version


def _onnx_prediction(settings: PipelineSettings, version: int) -> float:
    store = open_feature_store(settings.feature_store_root, settings.online_store_redis)
    service = store.get_feature_service("risk_model_v1")
    online = store.get_online_features(
        features=service, entity_rows=[{"user_id": USER_ID, "symbol": SYMBOL}]
    ).to_dict()
    row = np.array([[online[name][0] for name in feature_service_columns(service)]], np.float32)
    path = settings.model_repository / RISK_MODEL / str(version) / "model.onnx"
    return float(ort.InferenceSession(str(path)).run(None, {"features": row})[0][0, 0])


def test_ready_is_503_until_the_model_is_loaded(
    private_repository: PipelineSettings,
    empty_triton: TritonServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    with (
        risk_gateway(
            private_repository,
            redis_server,
            empty_triton,
            tmp_path / "gateway.log",
            wait_for_ready=False,
        ) as gateway,
        gateway.client() as client,
    ):
        not_ready = client.get("/ready")
        refused = client.post("/predict", json={"user_id": USER_ID, "symbol": SYMBOL})
        empty_triton.load_model(RISK_MODEL)
        wait_for(lambda: client.get("/ready").status_code == 200, 10, "/ready to turn 200")
        served = client.post("/predict", json={"user_id": USER_ID, "symbol": SYMBOL})

    assert not_ready.status_code == 503
    assert not_ready.json()["models"] == {RISK_MODEL: False}
    assert refused.status_code == 503
    assert refused.json()["error"] == "model_not_ready"
    assert served.status_code == 200


def test_new_version_is_served_and_the_cache_never_returns_the_old_answer(
    private_repository: PipelineSettings,
    empty_triton: TritonServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    empty_triton.load_model(RISK_MODEL)
    body = {"user_id": USER_ID, "symbol": SYMBOL}
    with (
        risk_gateway(
            private_repository, redis_server, empty_triton, tmp_path / "gateway.log"
        ) as gateway,
        gateway.client() as client,
    ):
        before = client.post("/predict", json=body).json()
        assert client.post("/predict", json=body).headers["X-Cache"] == "hit"

        # A new version: retrained with another seed, exported and loaded while clients call.
        candidate = train_and_register(private_repository.model_copy(update={"seed": 12}))
        version = RegisteredVersion(RISK_MODEL, candidate["version"], candidate["run_id"])
        answers: list[httpx.Response] = []
        stop = threading.Event()

        def keep_calling() -> None:
            with gateway.client() as caller:
                while not stop.is_set():
                    answers.append(caller.post("/predict", json=body))

        caller = threading.Thread(target=keep_calling)
        caller.start()
        try:
            export_version(private_repository, version)
            load_into_triton(empty_triton.http_url, RISK_MODEL)
            wait_for(
                lambda: _served_version(client) == version.version,
                10,
                "the gateway to see the new version",
            )
            after = client.post("/predict", json=body)
        finally:
            stop.set()
            caller.join()

    assert before["model_version"] == 1
    assert after.status_code == 200
    assert after.json()["model_version"] == version.version
    assert after.json()["prediction"] == pytest.approx(
        _onnx_prediction(private_repository, version.version), abs=1e-5
    )
    assert after.json()["prediction"] != pytest.approx(before["prediction"], abs=1e-6)

    assert answers, "the background client made no request"
    assert all(answer.status_code == 200 for answer in answers), [
        a.text for a in answers if a.status_code != 200
    ][:3]
    versions = [answer.json()["model_version"] for answer in answers]
    assert version.version in versions
    first_new = versions.index(version.version)
    assert answers[first_new].headers["X-Cache"] == "miss", "a v2 answer came from v1's cache"
    assert all(v == version.version for v in versions[first_new:]), "old answer after the new one"
