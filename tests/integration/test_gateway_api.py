"""Auth, batch predictions, explanations and the OpenAPI contract, on the real stack."""

from __future__ import annotations

import httpx
import pytest

from gateway.schemas import PredictResponse
from tests.integration.stack import ADMIN_KEY, RISK_MODEL, Gateway, metric_total
from tests.integration.test_gateway_predict import _recent_pairs
from trademaster.launchers.triton import TritonServer
from trademaster.settings import PipelineSettings

pytestmark = pytest.mark.integration

BEHAVIOR_MODEL = "behavioral-pattern-classifier"


def test_prediction_endpoints_need_a_valid_key(gateway: Gateway) -> None:
    body = {"user_id": 1, "symbol": "SYN001"}
    with gateway.client(key=None) as anonymous, gateway.client(key="wrong") as wrong:
        missing = anonymous.post("/predict", json=body)
        unknown = wrong.post("/predict", json=body)
        batch = anonymous.post("/batch_predict", json={"rows": [body]})
        open_endpoints = [anonymous.get(path).status_code for path in ("/health", "/metrics")]
    assert missing.status_code == unknown.status_code == batch.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert "X-API-Key" in missing.json()["detail"]
    assert missing.headers["WWW-Authenticate"] == "ApiKey"
    assert open_endpoints == [200, 200]


def test_admin_needs_the_admin_scope(gateway: Gateway) -> None:
    with gateway.client() as client, gateway.client(key=ADMIN_KEY) as admin:
        refused = client.get("/admin/rollouts")
        allowed = admin.get("/admin/rollouts")
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert allowed.status_code == 200


def test_batch_answers_every_row_in_order_with_per_row_errors(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    pairs = _recent_pairs(pipeline_settings, 40)
    rows: list[dict[str, object]] = [{"user_id": u, "symbol": s} for u, s in pairs]
    rows.insert(5, {"user_id": 999_999, "symbol": "SYN001"})
    rows.insert(9, {"user_id": 1, "symbol": "NOPE"})
    rows.append({"model_name": BEHAVIOR_MODEL, "user_id": pairs[0][0]})
    with gateway.client() as client:
        batch = client.post("/batch_predict", json={"rows": rows})
        singles = [client.post("/predict", json=row).json() for row in rows[:4]]
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert len(results) == len(rows)
    errors = [(i, r["detail"]) for i, r in enumerate(results) if not r["ok"]]
    assert batch.json()["errors"] == 2, errors
    assert results[5]["ok"] is False
    assert "999999" in results[5]["detail"]
    assert results[9]["error"] == "entity_not_found"
    assert "NOPE" in results[9]["detail"]
    for single, result in zip(singles, results[:4], strict=True):
        assert result["prediction"] == pytest.approx(single["prediction"], abs=1e-6)
    assert results[-1]["model_name"] == BEHAVIOR_MODEL


def test_batch_of_a_thousand_rows_and_the_row_limit(gateway: Gateway) -> None:
    rows = [{"user_id": 1 + i % 400, "symbol": f"SYN{1 + i % 10:03d}"} for i in range(1000)]
    with gateway.client() as client:
        full = client.post("/batch_predict", json={"rows": rows})
        over = client.post("/batch_predict", json={"rows": [*rows, rows[0]]})
    assert full.status_code == 200
    assert full.json()["errors"] == 0
    assert over.status_code == 413
    assert over.json()["error"] == "payload_too_large"
    assert "1000" in over.json()["detail"]


def test_behavior_classifier_returns_class_probabilities(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    (user_id, _), *_ = _recent_pairs(pipeline_settings, 1)
    with gateway.client() as client:
        response = client.post("/predict", json={"model_name": BEHAVIOR_MODEL, "user_id": user_id})
        no_user = client.post("/predict", json={"model_name": BEHAVIOR_MODEL, "symbol": "SYN001"})
    assert response.status_code == 200, response.text
    body = response.json()
    probabilities = body["probabilities"]
    assert set(probabilities) == {
        "day_trader", "swing_trader", "long_term_investor", "momentum_chaser", "panic_seller"
    }  # fmt: skip
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert body["prediction"] == max(probabilities, key=probabilities.__getitem__)
    assert body["confidence"] == pytest.approx(max(probabilities.values()))
    assert no_user.status_code == 422
    assert "user_id" in no_user.json()["detail"]


def test_explanations_cover_every_feature(
    gateway: Gateway, pipeline_settings: PipelineSettings
) -> None:
    (user_id, symbol), *_ = _recent_pairs(pipeline_settings, 1)
    with gateway.client() as client:
        plain = client.post("/predict", json={"user_id": user_id, "symbol": symbol}).json()
        explained = client.post(
            "/predict", json={"user_id": user_id, "symbol": symbol, "explain": True}
        ).json()
    importance = explained["feature_importance"]
    assert plain["feature_importance"] is None
    assert len(importance) == 15
    assert any(abs(value) > 1e-4 for value in importance.values())
    assert explained["prediction"] == pytest.approx(plain["prediction"], abs=1e-6)


def test_out_of_range_override_is_refused_naming_the_field(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post(
            "/predict",
            json={"user_id": 1, "symbol": "SYN001", "feature_overrides": {"avg_leverage": 1e9}},
        )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert "avg_leverage" in response.json()["detail"]


def test_stale_features_are_flagged_and_counted(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/predict", json={"user_id": 2, "symbol": "GOOG"})
        metrics = client.get("/metrics").text
    assert response.status_code == 200
    assert response.json()["stale_features"] == ["market_features_fv"]
    assert (
        metric_total(metrics, "ml_stale_features_total", model_name=RISK_MODEL,
                feature_view="market_features_fv") >= 1
    )  # fmt: skip


def test_openapi_documents_errors_and_the_api_key(gateway: Gateway) -> None:
    with gateway.client() as client:
        spec = client.get("/openapi.json").json()
    # /batch_predict answers a dependency failure in the rows it concerns, never with 503.
    documented = {"/predict": {"503"}, "/batch_predict": set()}
    for path, extra in documented.items():
        responses = spec["paths"][path]["post"]["responses"]
        assert {"200", "401", "403", "404", "413", "422", *extra} <= set(responses)
        assert spec["paths"][path]["post"]["security"]
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_price_forecast_comes_with_its_conformal_interval(gateway: Gateway) -> None:
    with gateway.client() as client:
        forecast = client.post(
            "/predict", json={"model_name": "price-prediction-lstm", "symbol": "SYN001"}
        )
        real = client.post(
            "/predict", json={"model_name": "price-prediction-lstm", "symbol": "EURUSD"}
        )
        no_symbol = client.post("/predict", json={"model_name": "price-prediction-lstm"})
    assert forecast.status_code == 200, forecast.text
    body = forecast.json()
    interval = body["confidence"]
    assert interval["level"] == 0.9
    assert interval["lower"] < body["prediction"] < interval["upper"]
    assert real.status_code == 200
    assert real.json()["stale_features"] == ["price_window_fv"]  # real EURUSD bars end in 2018
    assert no_symbol.status_code == 422
    assert "symbol" in no_symbol.json()["detail"]


def test_sentiment_scores_raw_text(gateway: Gateway) -> None:
    with gateway.client() as client:
        good = client.post(
            "/predict",
            json={
                "model_name": "sentiment-analyzer",
                "text": "Acme beats estimates, raises outlook",
            },
        )
        bad = client.post(
            "/predict",
            json={
                "model_name": "sentiment-analyzer",
                "text": "Acme misses estimates, cuts outlook",
            },
        )
        blank = client.post("/predict", json={"model_name": "sentiment-analyzer", "text": "   "})
        models = [entry["name"] for entry in client.get("/models").json()]
    assert good.status_code == bad.status_code == 200, good.text
    for answer in (good.json(), bad.json()):
        assert -1.0 <= answer["prediction"] <= 1.0
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert answer["confidence"] == pytest.approx(max(answer["probabilities"].values()))
    assert good.json()["prediction"] > bad.json()["prediction"]
    assert blank.status_code == 422
    assert "sentiment-tokenizer" not in models  # ensemble steps are not client models


def test_portfolio_weights_are_long_only_capped_and_fully_invested(gateway: Gateway) -> None:
    holdings = ["SYN001", "SYN002", "SYN003", "SYN004", "SYN005"]
    with gateway.client() as client:
        answer = client.post(
            "/predict",
            json={"model_name": "portfolio-optimizer", "symbols": holdings, "max_weight": 0.4},
        )
        infeasible = client.post(
            "/predict",
            json={"model_name": "portfolio-optimizer", "symbols": holdings, "max_weight": 0.1},
        )
        stale = client.post(
            "/predict", json={"model_name": "portfolio-optimizer", "symbols": ["SYN001", "GOOG"]}
        )
        unknown = client.post(
            "/predict", json={"model_name": "portfolio-optimizer", "symbols": ["SYN001", "NOPE"]}
        )
    assert answer.status_code == 200, answer.text
    weights = answer.json()["prediction"]
    assert set(weights) == set(holdings)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(-1e-6 <= w <= 0.4 + 1e-5 for w in weights.values())
    interval = answer.json()["confidence"]
    assert interval["lower"] < interval["upper"]
    assert infeasible.status_code == 422
    assert "1/5" in infeasible.json()["detail"]
    assert stale.status_code == 422
    assert "GOOG" in stale.json()["detail"]
    assert unknown.status_code == 404


def test_a_batch_of_portfolios_is_one_forecast_and_one_optimizer_call(
    gateway: Gateway, triton: TritonServer
) -> None:
    """20 portfolios of 2 to 6 holdings: Triton counts one forecaster and one optimizer
    request (padded rows), and every portfolio is long only, capped and fully invested."""
    symbols = [f"SYN{i:03d}" for i in range(1, 9)]
    holdings = [symbols[i % 3 : i % 3 + 2 + i % 5] for i in range(20)]
    caps = [0.9 - i / 100 for i in range(20)]  # distinct rows: no answer from the cache
    rows = [
        {"model_name": "portfolio-optimizer", "symbols": held, "max_weight": cap}
        for held, cap in zip(holdings, caps, strict=True)
    ]

    def requests() -> dict[str, float]:
        text = httpx.get(f"{triton.metrics_url}", timeout=10).text
        return {
            model: metric_total(text, "nv_inference_request_success", 0.0, model=model)
            for model in ("portfolio-optimizer", "price-prediction-lstm")
        }

    before = requests()
    with gateway.client() as client:
        batch = client.post("/batch_predict", json={"rows": rows})
    after = requests()

    assert batch.status_code == 200, batch.text
    answers = batch.json()["results"]
    assert [answer["cached"] for answer in answers] == [False] * len(rows)
    for held, cap, answer in zip(holdings, caps, answers, strict=True):
        weights = answer["prediction"]
        assert list(weights) == held
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert all(-1e-6 <= w <= cap + 1e-5 for w in weights.values())
    assert {model: after[model] - before[model] for model in after} == {
        "portfolio-optimizer": 1,
        "price-prediction-lstm": 1,
    }


def test_every_answer_matches_the_documented_schema(gateway: Gateway) -> None:
    bodies = [
        {"user_id": 3, "symbol": "SYN001", "explain": True},
        {"model_name": BEHAVIOR_MODEL, "user_id": 3},
        {"model_name": "price-prediction-lstm", "symbol": "SYN001"},
        {"model_name": "sentiment-analyzer", "text": "Shares slide after guidance cut"},
        {"model_name": "portfolio-optimizer", "symbols": ["SYN001", "SYN002", "SYN003"]},
    ]
    with gateway.client() as client:
        answers = [client.post("/predict", json=body) for body in bodies]
        repeated = [client.post("/predict", json=body) for body in bodies]  # from the cache
        batch = client.post("/batch_predict", json={"rows": [*bodies, {"user_id": 0}]})
    for answer in [*answers, *repeated]:
        assert answer.status_code == 200, answer.text
        PredictResponse.model_validate(answer.json())
    assert [a.json()["cached"] for a in repeated] == [True] * len(bodies)
    assert batch.status_code == 422  # user_id 0 fails validation of the whole body
