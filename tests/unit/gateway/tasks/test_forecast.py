"""The price forecast: validation, windows from Feast, interval answers, batch splitting."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.errors import EntityNotFound, InvalidFeatures, InvalidRequest
from gateway.tasks.base import Prepared
from gateway.tasks.forecast import IntervalForecast
from tests.unit.gateway.fakes import WINDOW, WINDOW_FEATURES, bench, request, unchecked_request
from trademaster.contract.models import ModelName

PRICE = ModelName.PRICE
ADAPTER = IntervalForecast()


def test_overrides_and_explanations_are_refused() -> None:
    model = bench(PRICE).model

    with pytest.raises(InvalidRequest, match=r"takes no feature_overrides"):
        ADAPTER.validate(
            model, unchecked_request(PRICE, symbol="AAA", feature_overrides={"a": 1.0})
        )
    with pytest.raises(InvalidRequest, match=r"no feature_importance"):
        ADAPTER.validate(model, unchecked_request(PRICE, symbol="AAA", explain=True))
    ADAPTER.validate(model, request(model_name=PRICE, symbol="AAA"))
    with pytest.raises(InvalidRequest, match=r"needs symbol"):
        ADAPTER.validate(model, unchecked_request(PRICE))


def test_windows_are_read_once_and_answered_with_the_declared_interval() -> None:
    prices = bench(PRICE)
    requests = [
        request(model_name=PRICE, symbol="AAA"),
        request(model_name=PRICE, symbol="ZZZ"),  # unknown
        request(model_name=PRICE, symbol="SHORT"),  # window of the wrong size
        unchecked_request(PRICE),  # no symbol: fails alone
        request(model_name=PRICE, symbol="BBB"),
    ]

    prepared, answers = prices.prepare_and_infer(ADAPTER, requests)

    assert [type(item) for item in prepared] == [
        Prepared,
        EntityNotFound,
        InvalidFeatures,
        InvalidRequest,
        Prepared,
    ]
    assert "expects 3 x 2" in prepared[2].detail
    assert len(prices.features.reads) == 1
    assert len(prices.features.reads[0][1]) == 4
    first = prepared[0]
    assert isinstance(first, Prepared)
    assert first.inputs["window"].shape == (1, WINDOW, WINDOW_FEATURES)
    # The fake forecasts the mean log return, interval -/+ 0.01; level from the config.
    aaa, bbb = answers
    assert aaa["prediction"] == pytest.approx(0.02)
    assert aaa["confidence"] == {
        "level": 0.9,
        "lower": pytest.approx(0.01),
        "upper": pytest.approx(0.03),
    }
    assert bbb["prediction"] == pytest.approx(-0.01)


def test_more_windows_than_max_batch_size_go_in_several_calls() -> None:
    prices = bench(PRICE, price=2)
    symbols = ["AAA", "BBB", "CCC", "AAA", "CCC"]

    answers = prices.answers(ADAPTER, [request(model_name=PRICE, symbol=s) for s in symbols])

    assert [len(call.inputs["window"]) for call in prices.triton.calls] == [2, 2, 1]
    expected = {"AAA": 0.02, "BBB": -0.01, "CCC": 0.02}
    assert [a["prediction"] for a in answers] == pytest.approx([expected[s] for s in symbols])
    assert all(np.isfinite(a["confidence"]["lower"]) for a in answers)
