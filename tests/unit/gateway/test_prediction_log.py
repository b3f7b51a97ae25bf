"""The prediction log: what every model's answer leaves in a real SQLite file, sampling, a full
queue, a store that fails and comes back, the flush at shutdown. The service runs over the
usual fakes (tests/unit/gateway/fakes.py) with a real ``PredictionLog``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from gateway.prediction_log import PredictionLog, Record
from gateway.schemas import PredictRequest
from gateway.service import Outcome, Prediction
from gateway.settings import Rollout
from tests.unit.gateway.fakes import (
    PRICE_SERVICE,
    RISK_SERVICE,
    FakeFeatures,
    FakeTriton,
    default_features,
    default_triton,
    entry,
    request,
    risk_config,
    service,
)
from trademaster.contract.models import ModelName
from trademaster.contract.prediction_log import read_predictions

RISK = ModelName.RISK
USER_VIEW_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MARKET_VIEW_AT = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
PRICE_VIEW_AT = datetime(2024, 5, 2, 21, 0, tzinfo=UTC)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def url_in(folder: Path) -> str:
    return f"sqlite:///{folder / 'prediction_log.sqlite'}"


def timestamped_features() -> FakeFeatures:
    features = default_features()
    features.event_timestamps = {
        RISK_SERVICE: {"user_fv": USER_VIEW_AT, "market_fv": MARKET_VIEW_AT},
        PRICE_SERVICE: {"price_window_fv": PRICE_VIEW_AT},
    }
    return features


def logged(url: str) -> pd.DataFrame:
    return read_predictions(url, EPOCH)


def dropped(reason: str) -> float:
    value = REGISTRY.get_sample_value("ml_prediction_log_dropped_total", {"reason": reason})
    return value or 0.0


def written() -> float:
    return REGISTRY.get_sample_value("ml_prediction_log_records_total") or 0.0


async def serve(
    prediction_log: PredictionLog,
    calls: Sequence[tuple[Sequence[PredictRequest], str | None]],
    triton: FakeTriton | None = None,
    rollouts: dict[str, Rollout] | None = None,
) -> list[list[Outcome]]:
    """Each call is ``predict_many(requests, request_id)``; the log is started before and
    stopped (flushed) after, like the app's lifespan does."""
    await prediction_log.start()
    predictions, _ = await service(
        timestamped_features(), triton or default_triton(), rollouts, prediction_log
    )
    outcomes = [await predictions.predict_many(rows, request_id) for rows, request_id in calls]
    await predictions.drain()
    await prediction_log.stop()
    return outcomes


def a_record(index: int) -> Record:
    return {
        "request_id": f"r{index}",
        "logged_at": datetime.now(UTC),
        "model_name": RISK,
        "model_version": 1,
        "route": "primary",
        "feature_service": RISK_SERVICE,
        "entity": {"user_id": index},
        "features": {"a": 1.0},
        "feature_timestamps": {},
        "stale_views": (),
        "prediction": 0.5,
        "confidence": 0.5,
        "interval": None,
        "cache_hit": False,
    }


def test_a_miss_and_a_hit_are_logged_with_every_field(tmp_path: Path) -> None:
    url = url_in(tmp_path / "not-yet-there")  # the folder is created on the first write
    before = datetime.now(UTC)
    row = request(model_name=RISK, user_id=1, symbol="AAA")
    what_if = request(model_name=RISK, user_id=1, symbol="AAA", feature_overrides={"a": 2.0})

    asyncio.run(serve(PredictionLog(url), [([row], "first"), ([row, what_if], "second")]))

    rows = logged(url)
    assert list(rows["request_id"]) == ["first:0", "second:0", "second:1"]
    first = rows.iloc[0].to_dict()
    assert before <= first["logged_at"].to_pydatetime() <= datetime.now(UTC)
    assert {key: first[key] for key in ("model_name", "model_version", "route")} == {
        "model_name": RISK,
        "model_version": 1,
        "route": "primary",
    }
    assert first["feature_service"] == RISK_SERVICE
    assert first["entity"] == {"user_id": 1, "symbol": "AAA"}
    assert first["features"] == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert first["feature_timestamps"] == {
        "user_fv": "2024-05-01T12:00:00Z",
        "market_fv": "2024-05-01T13:30:00Z",
    }
    assert first["stale_views"] == []
    assert first["prediction"] == pytest.approx(0.44)
    assert first["confidence"] == pytest.approx(0.56)
    assert first["interval"] is None
    assert list(rows["cache_hit"]) == [False, True, False]
    assert rows.iloc[1]["prediction"] == pytest.approx(0.44)  # the hit knows its inputs too
    assert rows.iloc[1]["features"] == first["features"]
    assert rows.iloc[2]["features"] == {"a": 2.0, "b": 2.0, "c": 3.0}  # after the override


def test_every_model_logs_what_identifies_its_request_and_what_it_was_fed(
    tmp_path: Path,
) -> None:
    url = url_in(tmp_path)
    rows = [
        request(model_name=ModelName.BEHAVIOR, user_id=2),
        request(model_name=ModelName.PRICE, symbol="AAA"),
        request(model_name=ModelName.SENTIMENT, text="rates up"),
        request(model_name=ModelName.PORTFOLIO, symbols=["AAA", "BBB"], max_weight=0.8),
        request(model_name=RISK, user_id=9, symbol="AAA"),  # unknown user: no answer, no row
    ]

    (outcomes,) = asyncio.run(serve(PredictionLog(url), [(rows, "b7")]))

    assert [isinstance(outcome, Prediction) for outcome in outcomes] == [True] * 4 + [False]
    by_model = logged(url).set_index("model_name")
    assert sorted(by_model["request_id"]) == ["b7:0", "b7:1", "b7:2", "b7:3"]
    behaviour = by_model.loc[ModelName.BEHAVIOR]
    assert behaviour["entity"] == {"user_id": 2}
    assert behaviour["features"] == pytest.approx({"a": -0.2, "b": 0.9})
    assert behaviour["prediction"] in ("saver", "trader", "hodler")
    price = by_model.loc[ModelName.PRICE]
    assert price["entity"] == {"symbol": "AAA"}
    assert price["features"] == {"price_window_last_bar": pytest.approx([0.03, 1.0])}
    assert price["feature_timestamps"] == {"price_window_fv": "2024-05-02T21:00:00Z"}
    assert price["confidence"] is None or pd.isna(price["confidence"])
    assert price["interval"] == {
        "level": 0.9,
        "lower": pytest.approx(0.01),
        "upper": pytest.approx(0.03),
    }
    sentiment = by_model.loc[ModelName.SENTIMENT]
    assert (sentiment["entity"], sentiment["features"]) == ({"text": "rates up"}, {})
    assert sentiment["confidence"] == pytest.approx(0.8)
    portfolio = by_model.loc[ModelName.PORTFOLIO]
    assert portfolio["entity"] == {"symbols": ["AAA", "BBB"]}
    assert portfolio["feature_service"] is None
    assert set(portfolio["features"]["expected_returns"]) == {"AAA", "BBB"}
    assert portfolio["features"]["max_weight"] == pytest.approx(0.8)
    assert portfolio["feature_timestamps"] == {"price_window_fv": "2024-05-02T21:00:00Z"}
    assert portfolio["prediction"] == pytest.approx({"AAA": 0.5, "BBB": 0.5})


@pytest.mark.parametrize(
    ("rollout", "routes"),
    [
        (Rollout(primary_version=1, shadow_version=2), [("primary", 1), ("shadow", 2)]),
        (Rollout(primary_version=1, canary_version=2, canary_weight=1.0), [("canary", 2)]),
    ],
)
def test_canary_and_shadow_answers_are_logged_under_the_request_id(
    tmp_path: Path, rollout: Rollout, routes: list[tuple[str, int]]
) -> None:
    url = url_in(tmp_path)
    triton = default_triton()
    triton.entries[0] = entry(RISK, risk_config(), versions=(1, 2))
    rows = [request(model_name=RISK, user_id=1, symbol="AAA")]

    asyncio.run(serve(PredictionLog(url), [(rows, "s1")], triton, {RISK: rollout}))

    logged_rows = logged(url).sort_values("route")
    assert list(zip(logged_rows["route"], logged_rows["model_version"], strict=True)) == routes
    assert set(logged_rows["request_id"]) == {"s1:0"}
    assert all(entity == {"user_id": 1, "symbol": "AAA"} for entity in logged_rows["entity"])


def test_sampling_zero_logs_nothing_and_still_answers(tmp_path: Path) -> None:
    url = url_in(tmp_path)
    rows = [request(model_name=RISK, user_id=1, symbol="AAA")]

    (outcomes,) = asyncio.run(serve(PredictionLog(url, sample_rate=0.0), [(rows, "x")]))

    assert isinstance(outcomes[0], Prediction)
    assert logged(url).empty


def test_sampling_half_logs_about_half_the_requests_whole(tmp_path: Path) -> None:
    prediction_log = PredictionLog(url_in(tmp_path), sample_rate=0.5)
    ids = [f"req-{i}" for i in range(4000)]
    chosen = [prediction_log.sampled(request_id) for request_id in ids]
    assert 0.46 < sum(chosen) / len(ids) < 0.54
    # Decided by the id: the same for every row of the request and for its shadow answers.
    assert chosen == [prediction_log.sampled(request_id) for request_id in ids]

    rows = [request(model_name=RISK, user_id=u, symbol="AAA") for u in (1, 2)]
    calls = [(rows, request_id) for request_id in ids[:40]]
    asyncio.run(serve(prediction_log, calls))

    kept = [rid for rid, keep in zip(ids[:40], chosen[:40], strict=True) if keep]
    expected = sorted(f"{rid}:{row}" for rid in kept for row in (0, 1))
    assert sorted(logged(url_in(tmp_path))["request_id"]) == expected


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    prediction_log = PredictionLog(url_in(tmp_path), queue_size=10)  # no writer running
    before = dropped("queue_full")

    prediction_log.record([a_record(i) for i in range(4)])
    prediction_log.record([a_record(i) for i in range(8)])  # 6 fit
    prediction_log.record([a_record(0)])

    assert prediction_log.queued == 10
    assert dropped("queue_full") - before == 3


def test_shutdown_flushes_what_is_queued(tmp_path: Path) -> None:
    url = url_in(tmp_path)
    # Neither a full batch nor the flush interval would write these before the stop.
    prediction_log = PredictionLog(url, batch_rows=1000, flush_interval_s=60)
    before = written()

    async def scenario() -> None:
        await prediction_log.start()
        prediction_log.record([a_record(i) for i in range(3)])
        await asyncio.sleep(0)
        await prediction_log.stop()

    asyncio.run(scenario())

    assert list(logged(url)["request_id"]) == ["r0", "r1", "r2"]
    assert written() - before == 3


async def wait_for(condition: Any, deadline_s: float = 10.0) -> None:
    """Until ``condition()`` holds (the writer runs in the background); fails after the
    deadline, which only a hung writer reaches."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        assert loop.time() < end, "the writer did not get there"
        await asyncio.sleep(0.01)


def test_a_failing_store_costs_its_batches_only_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "prediction_log.sqlite"
    store.mkdir()  # a folder where the database file should be: SQLite cannot open it
    url = url_in(tmp_path)
    prediction_log = PredictionLog(url, batch_rows=2, flush_interval_s=0.01)
    rows = [request(model_name=RISK, user_id=u, symbol="AAA") for u in (1, 2)]
    before = dropped("sink_error")

    async def scenario() -> list[list[Outcome]]:
        await prediction_log.start()
        predictions, _ = await service(
            timestamped_features(), default_triton(), None, prediction_log
        )
        outcomes = [await predictions.predict_many(rows, "down-1")]
        await wait_for(lambda: dropped("sink_error") - before >= 2)
        outcomes.append(await predictions.predict_many(rows, "down-2"))
        await wait_for(lambda: dropped("sink_error") - before >= 4)
        store.rmdir()  # the store is back
        outcomes.append(await predictions.predict_many(rows, "up"))
        await prediction_log.stop()
        return outcomes

    with caplog.at_level(logging.WARNING, logger="gateway.prediction_log"):
        outcomes = asyncio.run(scenario())

    assert all(isinstance(o, Prediction) for call in outcomes for o in call)
    assert dropped("sink_error") - before == 4
    assert sorted(logged(url)["request_id"]) == ["up:0", "up:1"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("store failing" in message for message in messages) == 1  # once per outage
    assert sum("store recovered" in message for message in messages) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_store_at_start_is_counted_not_raised() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://tm:tm@127.0.0.1:{_closed_port()}/predictions"
    prediction_log = PredictionLog(url, batch_rows=5)
    before = dropped("sink_error")

    async def scenario() -> None:
        await prediction_log.start()
        prediction_log.record([a_record(i) for i in range(5)])
        await wait_for(lambda: dropped("sink_error") - before >= 5)
        await prediction_log.stop()

    asyncio.run(scenario())

    assert dropped("sink_error") - before == 5


def test_a_disabled_log_samples_nothing_and_ignores_records() -> None:
    prediction_log = PredictionLog(None)
    prediction_log.record([a_record(0)])
    assert not prediction_log.enabled
    assert not prediction_log.sampled("any")
    assert prediction_log.queued == 0
