"""Each model's outcome join on a small constructed warehouse and prediction log: which
answer judges which outcome, when it is known, and which answers are pending or missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.unit.monitoring.logged import logged, record
from trademaster.contract.models import ModelName
from trademaster.monitoring.outcomes import (
    behavior_outcomes,
    price_outcomes,
    risk_outcomes,
    sentiment_class,
    sentiment_outcomes,
)
from trademaster.risk.labels import adverse_move_labels


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _hours(delta: pd.Timedelta) -> float:
    return delta.total_seconds() / 3600


# --- risk ---------------------------------------------------------------------------------


def _daily() -> pd.DataFrame:
    days = pd.bdate_range("2026-11-02", "2026-11-20")
    low = np.full(len(days), 99.0)
    low[days.get_loc(pd.Timestamp("2026-11-04"))] = 94.0  # -6%: levered 2x, -12%
    return pd.DataFrame(
        {
            "symbol": "SYN001",
            "interval": "1d",
            "ts": days,
            "open": 100.0,
            "high": 101.0,
            "low": low,
            "close": 100.0,
            "volume": 1e6,
        }
    )


def _opens(rows: list[tuple[int, int, str, float]]) -> pd.DataFrame:
    """(trade_id, user_id, opened at, leverage): long SYN001 positions at 100."""
    return pd.DataFrame(
        {
            "trade_id": [row[0] for row in rows],
            "position_id": [row[0] for row in rows],
            "user_id": [row[1] for row in rows],
            "symbol": "SYN001",
            "ts": pd.to_datetime([row[2] for row in rows]),
            "action": "open",
            "side": "buy",
            "direction": "long",
            "quantity": 1.0,
            "price": 100.0,
            "notional_usd": 100.0,
            "leverage": [row[3] for row in rows],
        }
    )


def _risk(user: int, at: str, probability: float, **fields: object) -> dict[str, object]:
    return record(
        ModelName.RISK,
        _at(at),
        entity={"user_id": user, "symbol": "SYN001"},
        feature_timestamps={"user_behavior_fv": _at(at[:10] + "T00:00:00")},
        prediction=probability,
        **fields,
    )


def test_a_risk_answer_is_judged_on_the_position_it_preceded() -> None:
    trades = _opens(
        [
            (1, 1, "2026-11-03 15:00", 2.0),  # lost 12% of margin on the 4th: label 1
            (2, 2, "2026-11-09 15:00", 1.0),  # days after user 2's answer: not assessed
            (3, 3, "2026-11-19 15:00", 1.0),  # its horizon runs past the last bar
            (4, 5, "2026-11-10 15:00", 1.0),  # never down 10%: label 0
        ]
    )
    log = logged(
        [
            _risk(1, "2026-11-03T14:00:00", 0.8),
            _risk(1, "2026-11-03T14:30:00", 0.7),  # the answer in effect at the open
            _risk(1, "2026-11-03T14:30:00", 0.1, route="shadow", model_version=3),
            _risk(2, "2026-11-05T10:00:00", 0.3),
            _risk(3, "2026-11-19T14:00:00", 0.4),
            _risk(4, "2026-11-19T20:00:00", 0.5),  # trades are in up to 15:00 only
            _risk(5, "2026-11-10T09:00:00", 0.2),
        ]
    )

    found = risk_outcomes(
        log, trades, _daily(), adverse_move_labels, 2, 0.10, timedelta(days=1)
    ).set_index("group")

    assert set(found["model_version"]) == {2}  # the shadow answer was not served
    assert found.loc[1, "predicted"] == pytest.approx(0.7)
    assert found.loc[1, "truth"] == 1
    assert found.loc[5, "truth"] == 0
    # Known when the second bar after the opening session has closed.
    assert found.loc[1, "known_at"] == pd.Timestamp("2026-11-06", tz="UTC")
    assert _hours(found.loc[5, "known_at"] - found.loc[5, "logged_at"]) == pytest.approx(63)
    assert bool(found.loc[2, "due"])  # no position followed though trades cover the day
    assert pd.isna(found.loc[2, "known_at"])
    assert not found.loc[3, "due"]  # a position whose outcome is not in yet
    assert not found.loc[4, "due"]  # the warehouse's trades do not cover its window yet


def test_the_risk_join_uses_the_training_label() -> None:
    trades = _opens([(1, 1, "2026-11-03 15:00", 2.0), (2, 2, "2026-11-03 15:00", 1.5)])
    log = logged([_risk(1, "2026-11-03T15:00:00", 0.6), _risk(2, "2026-11-03T12:00:00", 0.4)])

    found = risk_outcomes(log, trades, _daily(), adverse_move_labels, 2, 0.10, timedelta(days=1))
    expected = adverse_move_labels(trades, _daily(), 2, 0.10).set_index("user_id")["label"]

    # 2x -6% is past the threshold, 1.5x -6% (-9%) is not.
    assert found.set_index("group")["truth"].to_dict() == expected.to_dict() == {1: 1, 2: 0}


# --- price-prediction-lstm ------------------------------------------------------------------


def _bars() -> pd.DataFrame:
    days = pd.bdate_range("2026-11-23", "2026-11-27")
    return pd.DataFrame(
        {"symbol": "SYN001", "interval": "1d", "ts": days, "close": [100, 101, 99, 100, 102.0]}
    )


def _forecast(at: str, window_closed: str, symbol: str = "SYN001", **fields: object) -> dict:
    return record(
        ModelName.PRICE,
        _at(at),
        entity={"symbol": symbol},
        feature_timestamps={"price_window_fv": _at(window_closed)},
        prediction=-0.01,
        interval={"level": 0.9, "lower": -0.03, "upper": 0.0},
        **fields,
    )


def test_the_lstm_is_judged_on_the_bar_after_its_window_once_it_has_closed() -> None:
    # The window of the 24th's bar is available at midnight after it.
    log = logged(
        [
            _forecast("2026-11-25T10:00:00", "2026-11-25T00:00:00"),
            _forecast("2026-11-25T11:00:00", "2026-11-25T00:00:00"),  # same window: one
            _forecast("2026-11-25T11:00:00", "2026-11-25T00:00:00", route="shadow"),
            _forecast("2026-11-28T10:00:00", "2026-11-28T00:00:00"),  # the last bar's window
            _forecast("2026-11-25T10:00:00", "2026-11-25T00:00:00", symbol="NOPE"),
        ]
    )

    found = price_outcomes(log, _bars())

    assert len(found) == 3
    labelled = found[found["known_at"].notna()]
    (row,) = labelled.to_dict("records")
    assert row["truth"] == pytest.approx(np.log(99 / 101))
    assert (row["lower"], row["upper"], row["level"]) == (-0.03, 0.0, 0.9)
    # The 25th's bar closes at midnight after it: 13 hours after the kept (latest) answer.
    assert _hours(row["known_at"] - row["logged_at"]) == pytest.approx(13)
    waiting = found[found["known_at"].isna()]
    waiting = waiting.set_index(waiting["logged_at"].dt.day)
    assert not waiting.loc[28, "due"]  # its next bar has not closed
    assert bool(waiting.loc[25, "due"])  # a symbol the warehouse does not have


# --- behavioral-pattern-classifier ------------------------------------------------------------


def test_behaviour_is_judged_against_the_archetype_in_effect_then() -> None:
    users = pd.DataFrame(
        {
            "user_id": [1, 2],
            "archetype": ["day_trader", "swing_trader"],
            "previous_archetype": [None, "long_term_investor"],
            "archetype_since": [pd.NaT, pd.Timestamp("2026-12-01")],  # after the answers
        }
    )
    stamp = {"user_behavior_fv": _at("2026-11-30T00:00:00")}

    def answer(user: int, trades: int, at: str = "2026-11-30T10:00:00") -> dict:
        return record(
            ModelName.BEHAVIOR,
            _at(at),
            entity={"user_id": user},
            features={"trades_in_window": trades},
            feature_timestamps=stamp,
            prediction="swing_trader",
        )

    log = logged(
        [
            answer(1, 5),
            answer(1, 5, "2026-11-30T11:00:00"),  # same snapshot: one observation
            answer(2, 5),
            answer(3, 1),  # inactive: outside the population the holdout had
            answer(99, 7),
        ]
    )

    found = behavior_outcomes(log, users, {"trades_in_window": 3}).set_index("group")

    assert found["truth"].to_dict() == {1: "day_trader", 2: "long_term_investor", 99: None}
    assert (found.loc[[1, 2], "known_at"] == found.loc[[1, 2], "logged_at"]).all()
    assert bool(found.loc[99, "due"])  # a user the warehouse does not know: missing
    assert pd.isna(found.loc[99, "known_at"])


# --- sentiment-analyzer ---------------------------------------------------------------------


def test_sentiment_is_judged_on_the_headline_with_the_same_text() -> None:
    headlines = pd.DataFrame(
        {
            "headline": ["Altavik beats estimates", "Corvane shares slide"],
            "ts": pd.to_datetime(["2026-11-20 10:00", "2026-11-20 12:00"]),
            "label": ["positive", "negative"],
        }
    )

    def answer(text: str, at: str, prediction: object, version: int = 2) -> dict:
        return record(
            ModelName.SENTIMENT,
            _at(at),
            entity={"text": text},
            prediction=prediction,
            model_version=version,
        )

    log = logged(
        [
            answer("Altavik beats estimates", "2026-11-20T11:00:00", "positive"),
            answer("Corvane shares slide", "2026-11-20T11:00:00", {"label": "neutral"}),
            answer("Never published", "2026-11-20T09:00:00", "neutral"),
            answer("Tomorrow's news", "2026-11-21T09:00:00", "neutral"),
            answer("Altavik beats estimates", "2026-11-20T11:00:00", 0.4, version=3),
        ]
    )

    found = sentiment_outcomes(log, headlines)

    v2 = found[found["model_version"] == 2]
    v2.index = pd.Index([entity["text"].split()[0] for entity in v2["entity"]])
    texts = ["Altavik", "Corvane", "Never", "Tomorrow's"]
    assert v2.loc[texts, "truth"].tolist() == ["positive", "negative", None, None]
    assert v2.loc[texts, "predicted"].tolist() == ["positive", "neutral", "neutral", "neutral"]
    # Asked an hour before it was published: known at publication.
    assert _hours(v2.loc["Corvane", "known_at"] - v2.loc["Corvane", "logged_at"]) == 1
    assert v2.loc["Altavik", "known_at"] == v2.loc["Altavik", "logged_at"]
    assert v2.loc[texts, "due"].tolist() == [True, True, True, False]
    (v3,) = found[found["model_version"] == 3].to_dict("records")
    assert v3["truth"] == "positive"
    assert v3["predicted"] is None  # a score alone names no class


@pytest.mark.parametrize(
    ("prediction", "probabilities", "expected"),
    [
        ("negative", None, "negative"),
        ({"label": "positive"}, None, "positive"),
        (0.1, {"negative": 0.2, "neutral": 0.45, "positive": 0.35}, "neutral"),
        ({"probabilities": {"negative": 0.7, "neutral": 0.2, "positive": 0.1}}, None, "negative"),
        (0.1, None, None),
    ],
)
def test_the_predicted_class_comes_from_a_label_or_probabilities(
    prediction: object, probabilities: object, expected: str | None
) -> None:
    assert sentiment_class(prediction, probabilities) == expected
