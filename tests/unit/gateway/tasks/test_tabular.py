"""Tabular classifiers: validation, one Feast read, occlusion importances, batch splitting."""

from __future__ import annotations

import math

import pytest

from gateway.errors import EntityNotFound, InvalidFeatures, InvalidRequest
from gateway.tasks.base import Prepared
from gateway.tasks.tabular import TabularClassifier
from tests.unit.gateway.fakes import (
    BEHAVIOUR_LABELS,
    RISK_SERVICE,
    bench,
    request,
    unchecked_request,
)
from trademaster.contract.models import ModelName

RISK = ModelName.RISK
BINARY = TabularClassifier(multiclass=False)
MULTICLASS = TabularClassifier(multiclass=True)


def test_an_unknown_override_is_refused_naming_the_features() -> None:
    model = bench(RISK).model

    with pytest.raises(InvalidFeatures, match=r"unknown feature.*zzz.*uses: a, b, c"):
        BINARY.validate(
            model, request(model_name=RISK, user_id=1, symbol="AAA", feature_overrides={"zzz": 1.0})
        )


def test_an_override_outside_the_training_range_is_refused() -> None:
    model = bench(RISK).model
    # c was trained on [0, 6]: with the 50% margin, [-3, 9] is plausible.
    BINARY.validate(
        model, request(model_name=RISK, user_id=1, symbol="AAA", feature_overrides={"c": 8.9})
    )
    with pytest.raises(InvalidRequest, match=r"feature_overrides.c: 9.5 .*\[-3, 9\]"):
        BINARY.validate(
            model, request(model_name=RISK, user_id=1, symbol="AAA", feature_overrides={"c": 9.5})
        )


def test_probabilities_of_a_linear_model_one_feast_read_for_all_rows() -> None:
    risks = bench(RISK)
    requests = [
        request(model_name=RISK, user_id=1, symbol="AAA"),
        request(model_name=RISK, user_id=2, symbol="AAA", feature_overrides={"b": 1.0}),
    ]

    first, second = risks.answers(BINARY, requests)  # each request prepares

    assert len(risks.features.reads) == 1
    assert risks.features.reads[0] == (
        RISK_SERVICE,
        [{"user_id": 1, "symbol": "AAA"}, {"user_id": 2, "symbol": "AAA"}],
    )
    # 0.1 a + 0.05 b - 0.02 c + 0.3
    assert first["prediction"] == pytest.approx(0.44)
    assert first["confidence"] == pytest.approx(0.56)
    assert second["prediction"] == pytest.approx(0.2 + 0.05 - 0.02 + 0.3)  # b overridden to 1
    assert "feature_importance" not in first
    assert "_class" not in first
    assert len(risks.triton.calls) == 1
    assert len(risks.triton.calls[0].inputs["features"]) == 2


def test_occlusion_importances_of_a_linear_model_are_weight_times_distance_to_median() -> None:
    (answer,) = bench(RISK).answers(
        BINARY, [request(model_name=RISK, user_id=1, symbol="AAA", explain=True)]
    )

    # x = (1, 2, 3), medians (0.5, 1.5, 1), weights (0.1, 0.05, -0.02): w_i (x_i - m_i).
    importance = answer["feature_importance"]
    assert importance == {
        "a": pytest.approx(0.05, abs=1e-6),
        "b": pytest.approx(0.025, abs=1e-6),
        "c": pytest.approx(-0.04, abs=1e-6),
    }


def test_multiclass_importances_follow_the_predicted_class() -> None:
    (answer,) = bench(ModelName.BEHAVIOR).answers(
        MULTICLASS, [request(model_name=ModelName.BEHAVIOR, user_id=2, explain=True)]
    )

    # Logits (a, b, a + b) at (-0.2, 0.9): "trader" (b) wins.
    assert answer["prediction"] == "trader"
    assert set(answer["probabilities"]) == set(BEHAVIOUR_LABELS)
    assert answer["confidence"] == pytest.approx(max(answer["probabilities"].values()))

    # P(trader) at (a, b) is e^b / (e^a + e^b + e^(a+b)); medians are (0, 0).
    def p_trader(a: float, b: float) -> float:
        return math.exp(b) / (math.exp(a) + math.exp(b) + math.exp(a + b))

    base = p_trader(-0.2, 0.9)
    assert answer["feature_importance"] == {
        "a": pytest.approx(base - p_trader(0.0, 0.9), abs=1e-6),  # 0.0492
        "b": pytest.approx(base - p_trader(-0.2, 0.0), abs=1e-6),  # 0.0856
    }


def test_a_batch_longer_than_max_batch_size_goes_in_several_calls() -> None:
    risks = bench(RISK, risk=4)
    requests = [
        request(model_name=RISK, user_id=1, symbol="AAA", explain=True),
        request(model_name=RISK, user_id=2, symbol="AAA"),
        request(model_name=RISK, user_id=2, symbol="AAA", explain=True),
    ]
    answers = risks.answers(BINARY, requests)

    # 3 rows + 2 x 3 occlusions = 9 rows: calls of 4, 4 and 1.
    assert [len(call.inputs["features"]) for call in risks.triton.calls] == [4, 4, 1]
    assert answers[0]["feature_importance"]["c"] == pytest.approx(-0.04, abs=1e-6)
    # x = (2, 0, 1): w_i (x_i - m_i) = (0.15, -0.075, 0).
    assert answers[2]["feature_importance"] == {
        "a": pytest.approx(0.15, abs=1e-6),
        "b": pytest.approx(-0.075, abs=1e-6),
        "c": pytest.approx(0.0, abs=1e-6),
    }
    assert answers[1]["prediction"] == pytest.approx(0.2 - 0.02 + 0.3)


def test_a_row_missing_its_join_key_fails_alone() -> None:
    risks = bench(RISK)
    requests = [
        request(model_name=RISK, user_id=1, symbol="AAA"),
        unchecked_request(RISK, symbol="AAA"),  # no user_id
        request(model_name=RISK, user_id=9, symbol="AAA"),  # unknown user
        request(model_name=RISK, user_id=3, symbol="BBB"),  # c has no value
    ]

    prepared = risks.prepare(BINARY, requests)

    assert isinstance(prepared[0], Prepared)
    assert isinstance(prepared[1], InvalidRequest)
    assert "needs user_id" in prepared[1].detail
    assert isinstance(prepared[2], EntityNotFound)
    assert isinstance(prepared[3], InvalidFeatures)
    assert "c" in prepared[3].detail
    # The keyless row is not sent to Feast; the others are, in one read.
    assert [len(rows) for _, rows in risks.features.reads] == [3]


def test_same_effective_features_share_a_cache_key() -> None:
    requests = [
        request(model_name=RISK, user_id=1, symbol="AAA"),
        request(
            model_name=RISK,
            user_id=2,
            symbol="AAA",
            feature_overrides={"a": 1.0, "b": 2.0, "c": 3.0},
        ),
        request(model_name=RISK, user_id=1, symbol="AAA", explain=True),
    ]

    digests = [
        item.cache_digest()
        for item in bench(RISK).prepare(BINARY, requests)
        if isinstance(item, Prepared)
    ]

    assert digests[0] == digests[1] != digests[2]
