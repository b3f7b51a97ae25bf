"""The gateway against real Redis, Feast (Redis online store) and Triton processes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import sqlalchemy as sa

from tests.integration.stack import RISK_MODEL, Gateway, metric_total
from trademaster.features.store import feature_service_columns, open_feature_store
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema

pytestmark = pytest.mark.integration


def _recent_pairs(settings: PipelineSettings, n: int) -> list[tuple[int, str]]:
    engine = sa.create_engine(settings.resolved_warehouse_url)
    query = (
        sa.select(schema.trades.c.user_id, schema.trades.c.symbol)
        .where(schema.trades.c.action == "open")
        .order_by(schema.trades.c.ts.desc())
        .limit(n)
    )
    with engine.connect() as connection:
        pairs = [(int(u), str(s)) for u, s in connection.execute(query)]
    engine.dispose()
    return pairs


def test_prediction_equals_onnxruntime_on_the_same_online_features(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    store = open_feature_store(
        pipeline_settings.feature_store_root, pipeline_settings.online_store_redis
    )
    service = store.get_feature_service("risk_model_v1")
    names = feature_service_columns(service)
    session = ort.InferenceSession(
        str(pipeline_settings.model_repository / RISK_MODEL / "1" / "model.onnx")
    )
    pairs = _recent_pairs(pipeline_settings, 8)
    online = store.get_online_features(
        features=service, entity_rows=[{"user_id": u, "symbol": s} for u, s in pairs]
    ).to_dict()
    rows = np.array([[online[name][i] for name in names] for i in range(len(pairs))], np.float32)
    expected = session.run(None, {"features": rows})[0][:, 0]

    with gateway.client() as client:
        for (user_id, symbol), want in zip(pairs, expected, strict=True):
            response = client.post(
                "/predict",
                json={"user_id": user_id, "symbol": symbol, "model_name": RISK_MODEL},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert abs(body["prediction"] - float(want)) < 1e-5
            assert body["model_version"] == 1
            assert body["confidence"] == pytest.approx(
                max(body["prediction"], 1 - body["prediction"])
            )
            assert set(body) >= {"prediction", "confidence", "model_version", "timestamp"}


def test_repeated_request_is_answered_from_redis(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    (user_id, symbol), *_ = _recent_pairs(pipeline_settings, 1)
    body = {"user_id": user_id, "symbol": symbol, "feature_overrides": {"avg_leverage": 2.5}}
    with gateway.client() as client:
        misses_before = metric_total(
            client.get("/metrics").text,
            "ml_prediction_cache_lookups_total",
            default=0.0,
            model_name=RISK_MODEL,
            result="miss",
        )
        first = client.post("/predict", json=body)
        second = client.post("/predict", json=body)
        metrics = client.get("/metrics").text

    cache_lines = [line for line in metrics.splitlines() if "cache" in line and line[0] != "#"]
    assert first.headers["X-Cache"] == "miss"
    assert second.headers["X-Cache"] == "hit", cache_lines
    assert second.json()["cached"] is True
    assert second.json()["prediction"] == first.json()["prediction"]
    hits = metric_total(
        metrics, "ml_prediction_cache_lookups_total", model_name=RISK_MODEL, result="hit"
    )
    misses = metric_total(
        metrics, "ml_prediction_cache_lookups_total", model_name=RISK_MODEL, result="miss"
    )
    assert hits >= 1, cache_lines
    assert misses == misses_before + 1


def test_overrides_change_the_answer_and_do_not_share_cache_entries(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    (user_id, symbol), *_ = _recent_pairs(pipeline_settings, 1)
    with gateway.client() as client:
        low = client.post(
            "/predict",
            json={"user_id": user_id, "symbol": symbol, "feature_overrides": {"avg_leverage": 1}},
        )
        high = client.post(
            "/predict",
            json={"user_id": user_id, "symbol": symbol, "feature_overrides": {"avg_leverage": 5}},
        )
    assert low.status_code == high.status_code == 200
    assert high.headers["X-Cache"] == "miss"
    assert high.json()["prediction"] > low.json()["prediction"]


@pytest.mark.parametrize(
    ("body", "status", "error", "named"),
    [
        ({"user_id": 1, "symbol": "SYN001", "model_name": "no-such-model"}, 404,
         "model_not_found", "no-such-model"),
        ({"user_id": 987654, "symbol": "SYN001"}, 404, "entity_not_found", "987654"),
        ({"user_id": 1, "symbol": "NOPE"}, 404, "entity_not_found", "NOPE"),
        ({"symbol": "SYN001"}, 422, "invalid_request", "user_id"),
        ({"user_id": "one", "symbol": "SYN001"}, 422, "invalid_request", "user_id"),
        ({"user_id": 1, "symbol": "syn 001"}, 422, "invalid_request", "symbol"),
        ({"user_id": 1, "symbol": "SYN001", "extra": 1}, 422, "invalid_request", "extra"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"bogus": 1.0}}, 422,
         "invalid_features", "bogus"),
        ({"user_id": 1, "symbol": "SYN001", "feature_overrides": {"rsi_14": "high"}}, 422,
         "invalid_request", "rsi_14"),
    ],
)  # fmt: skip
def test_errors_are_json_with_a_stable_code_naming_the_problem(
    gateway: Gateway, body: dict[str, object], status: int, error: str, named: str
) -> None:
    with gateway.client() as client:
        response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert named in response.json()["detail"]


def test_non_finite_and_oversized_bodies_are_refused(gateway: Gateway) -> None:
    with gateway.client() as client:
        nan = client.post(
            "/predict",
            content=b'{"user_id": 1, "symbol": "SYN001", "feature_overrides": {"rsi_14": NaN}}',
            headers={"content-type": "application/json"},
        )
        huge = client.post(
            "/predict", content=b"[" + b"1," * 100_000 + b"1]",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        broken = client.post(
            "/predict", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert nan.status_code == 422
    assert nan.json()["error"] == "invalid_request"
    assert huge.status_code == 413
    assert huge.json()["error"] == "payload_too_large"
    assert broken.status_code == 422


def test_operational_endpoints(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.post("/predict", json={"user_id": 1, "symbol": "SYN001"})
        health = client.get("/health")
        ready = client.get("/ready")
        models = client.get("/models")
        metrics = client.get("/metrics").text
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["models"][RISK_MODEL] is True
    assert all(ready.json()["models"].values())
    model = next(entry for entry in models.json() if entry["name"] == RISK_MODEL)
    assert model["version"] == 1
    assert len(model["features"]) == 15
    for name in ("ml_prediction_requests_total", "ml_prediction_duration_seconds_count"):
        assert metric_total(metrics, name, model_name=RISK_MODEL) >= 1
    assert "ml_prediction_errors_total" in metrics
    assert 'model_name="no-such-model"' not in metrics  # client input never becomes a label


def test_a_sentiment_batch_larger_than_the_models_max_batch_size_succeeds(
    gateway: Gateway,
) -> None:
    # The ensemble's max_batch_size is 128: the gateway splits 1,000 rows into several calls.
    # Distinct texts, so the cache answers none of them.
    rows = [
        {"model_name": "sentiment-analyzer", "text": f"Acme {i} beats estimates"}
        for i in range(1000)
    ]
    with gateway.client() as client:
        batch = client.post("/batch_predict", json={"rows": rows}, timeout=120)
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    failed = [(i, r["detail"]) for i, r in enumerate(results) if not r["ok"]]
    assert batch.json()["errors"] == 0, failed[:3]
    assert len(results) == 1000
    assert all(r["ok"] and -1.0 <= r["prediction"] <= 1.0 for r in results)
    assert {r["cached"] for r in results} == {False}
