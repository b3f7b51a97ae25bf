"""Text sentiment: validation, scores and probabilities, batches beyond max_batch_size."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.tasks.base import Prepared
from gateway.tasks.sentiment import TextSentiment
from tests.unit.gateway.fakes import SENTIMENT_LABELS, bench, request, unchecked_request
from trademaster.contract.models import ModelName

SENTIMENT = ModelName.SENTIMENT
ADAPTER = TextSentiment()


def test_only_text_is_accepted() -> None:
    model = bench(SENTIMENT).model

    with pytest.raises(InvalidRequest, match=r"takes only text"):
        ADAPTER.validate(model, unchecked_request(SENTIMENT, text="up", explain=True))
    with pytest.raises(InvalidRequest, match=r"needs text"):
        ADAPTER.validate(model, unchecked_request(SENTIMENT))


def test_a_thousand_texts_succeed_in_calls_of_max_batch_size() -> None:
    sentiments = bench(SENTIMENT, sentiment=128)
    texts = ["shares up" if i % 2 else "shares down" for i in range(1000)]

    answers = sentiments.answers(ADAPTER, [request(model_name=SENTIMENT, text=t) for t in texts])

    assert [len(call.inputs["text"]) for call in sentiments.triton.calls] == [128] * 7 + [104]
    assert len(answers) == 1000
    down, up = answers[0], answers[1]
    assert down["prediction"] == pytest.approx(-0.7)
    assert up["prediction"] == pytest.approx(0.7)
    assert up["confidence"] == pytest.approx(0.8)
    assert list(up["probabilities"]) == list(SENTIMENT_LABELS)
    assert up["probabilities"]["positive"] == pytest.approx(0.8)
    # Order is kept across the calls: the last one is text 999 ("up").
    assert answers[999]["prediction"] == pytest.approx(0.7)


def test_a_row_without_text_fails_alone() -> None:
    prepared = bench(SENTIMENT).prepare(
        ADAPTER, [request(model_name=SENTIMENT, text="up"), unchecked_request(SENTIMENT)]
    )

    assert isinstance(prepared[0], Prepared)
    assert isinstance(prepared[1], InvalidRequest)
