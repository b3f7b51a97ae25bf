"""Realized quality from joined observations: the metrics against sklearn, the shortfall's
direction, the minimum-rows rule, label coverage and delay, and the published series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import f1_score, mean_absolute_error, roc_auc_score

from tests.unit.monitoring.logged import logged, record, write_log
from trademaster.contract.models import ModelName
from trademaster.monitoring import realized
from trademaster.monitoring.metrics import batch_registry
from trademaster.monitoring.realized import (
    BEHAVIOR_CLASSES,
    LabelStatus,
    RealizedResult,
    RealizedSettings,
    VersionReference,
    WarehouseFrames,
    evaluate,
    label_status,
    record_metrics,
    shortfall,
    summary,
    version_results,
)
from trademaster.risk.labels import adverse_move_labels
from trademaster.settings import PipelineSettings

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
FAST = RealizedSettings.from_settings(PipelineSettings(environment="test"), bootstrap_resamples=200)


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def _observations(n: int, rng: np.random.Generator, **columns: object) -> pd.DataFrame:
    """``n`` labelled observations of version 2, an hour to a day after their answers."""
    logged_at = pd.Timestamp(NOW) - pd.to_timedelta(rng.integers(2, 20, n), unit="D")
    frame = pd.DataFrame(
        {
            "model_version": 2,
            "route": "primary",
            "entity": [{"user_id": int(u)} for u in rng.integers(0, 40, n)],
            "logged_at": logged_at,
            "known_at": logged_at + pd.to_timedelta(rng.integers(1, 25, n), unit="h"),
            "due": True,
        }
    )
    frame["group"] = [entity["user_id"] for entity in frame["entity"]]
    for name, values in columns.items():
        frame[name] = values
    return frame


def _risk(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    return _observations(n, rng, truth=truth, predicted=np.clip(0.3 * truth + rng.random(n), 0, 1))


def _price(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 0.02, n)
    truth[:5] = 0.0  # no move: not scored for direction
    predicted = 0.3 * truth + rng.normal(0, 0.01, n)
    predicted[5:8] = 0.0  # calls no direction: half a hit
    return _observations(
        n,
        rng,
        truth=truth,
        predicted=predicted,
        lower=predicted - 0.03,
        upper=predicted + 0.03,
        level=0.9,
    )


def _one(results: list[RealizedResult], metric: str) -> RealizedResult:
    (found,) = [result for result in results if result.metric == metric]
    return found


def test_auc_is_sklearns_with_a_bootstrap_interval_around_it() -> None:
    frame = _risk(300)
    reference = VersionReference({"holdout_auc": 0.80})

    result = _one(version_results(ModelName.RISK, 2, frame, reference, FAST, NOW), "auc")

    value = result.value
    assert value == pytest.approx(roc_auc_score(frame["truth"], frame["predicted"]))
    assert value is not None
    assert result.interval is not None
    low, high = result.interval
    assert low < value < high
    assert result.validated == 0.80
    assert result.shortfall == pytest.approx(0.80 - value)  # higher is better
    assert result.margin == FAST.margins["auc"]
    assert result.metric_rows == result.rows == 300


def test_macro_f1_is_sklearns_over_every_class() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(BEHAVIOR_CLASSES, 200)
    predicted = np.where(rng.random(200) < 0.7, truth, rng.choice(BEHAVIOR_CLASSES, 200))
    frame = _observations(200, rng, truth=truth, predicted=predicted)

    result = _one(
        version_results(ModelName.BEHAVIOR, 2, frame, VersionReference(), FAST, NOW), "macro_f1"
    )

    assert result.value == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert result.interval is not None
    assert result.validated is None
    assert result.shortfall is None  # nothing to fall short of


def test_the_lstms_metrics() -> None:
    frame = _price(200)
    truth, predicted = frame["truth"].to_numpy(), frame["predicted"].to_numpy()
    reference = VersionReference({"overall_coverage": 0.91, "overall_directional_accuracy": 0.5})

    results = version_results(ModelName.PRICE, 2, frame, reference, FAST, NOW)

    mae = _one(results, "mae")
    assert mae.value == pytest.approx(mean_absolute_error(truth, predicted))
    assert mae.validated is None  # the walk-forward logs RMSE, not MAE
    assert mae.shortfall is None
    assert mae.note == "no validated counterpart"
    coverage = _one(results, "interval_coverage")
    inside = (truth >= predicted - 0.03) & (truth <= predicted + 0.03)
    assert coverage.value == pytest.approx(inside.mean())
    assert coverage.shortfall == pytest.approx(abs(inside.mean() - 0.9) - 0.01)
    direction = _one(results, "directional_accuracy")
    moved = truth != 0
    hits = np.where(predicted == 0, 0.5, np.sign(predicted) == np.sign(truth))[moved]
    assert direction.value == pytest.approx(hits.mean())
    assert direction.metric_rows == 195


def test_shortfall_is_positive_when_worse() -> None:
    assert shortfall("lower", 0.03, 0.02) == pytest.approx(0.01)  # MAE grew
    assert shortfall("lower", 0.01, 0.02) == pytest.approx(-0.01)
    assert shortfall("higher", 0.70, 0.75) == pytest.approx(0.05)
    # Coverage is judged by its distance from the nominal level, on either side.
    assert shortfall("nominal", 0.96, 0.91, 0.9) == pytest.approx(0.05)
    assert shortfall("nominal", 0.84, 0.91, 0.9) == pytest.approx(0.05)
    assert shortfall("nominal", 0.89, 0.91, 0.9) == pytest.approx(0.0)


def test_too_few_labelled_rows_publish_rows_but_no_value() -> None:
    reference = VersionReference({"holdout_auc": 0.8})
    few = _risk(FAST.min_labelled - 1, seed=1)
    enough = _risk(FAST.min_labelled, seed=1)

    (under,) = version_results(ModelName.RISK, 2, few, reference, FAST, NOW)
    (at,) = version_results(ModelName.RISK, 2, enough, reference, FAST, NOW)

    assert under.value is None
    assert under.interval is None
    assert under.shortfall is None
    assert under.note.startswith("insufficient data")
    assert under.rows == FAST.min_labelled - 1
    assert at.value is not None


def test_pending_answers_are_left_out_of_coverage_and_missing_ones_count() -> None:
    logged_at = pd.Timestamp(NOW) - pd.Timedelta(days=3)
    frame = pd.DataFrame(
        {
            "logged_at": [logged_at] * 5,
            "known_at": [
                logged_at + pd.Timedelta(hours=2),
                logged_at + pd.Timedelta(hours=6),
                pd.NaT,  # due: missing
                pd.NaT,  # not due yet: pending
                pd.Timestamp(NOW) + pd.Timedelta(hours=1),  # known only after now: pending
            ],
            "due": [True, True, True, False, True],
        }
    )

    status = label_status(frame, NOW)

    assert (status.labelled, status.pending, status.missing) == (2, 2, 1)
    assert status.coverage == pytest.approx(2 / 3)
    assert status.delay_s == pytest.approx(4 * 3600)  # median of 2 h and 6 h


def test_sentiment_without_a_logged_class_says_so() -> None:
    rng = np.random.default_rng(0)
    frame = _observations(80, rng, truth="positive", predicted=None)

    (result,) = version_results(
        ModelName.SENTIMENT, 1, frame, VersionReference({"holdout_macro_f1": 0.9}), FAST, NOW
    )

    assert result.value is None
    assert result.note == "the prediction log holds no predicted class"
    assert result.rows == 80


def test_margins_and_sample_rules_come_from_the_pipelines_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEMASTER_REALIZED_MARGIN", "0.02")
    monkeypatch.setenv("TRADEMASTER_REALIZED_MARGIN_BY_METRIC", '{"interval_coverage": 0.08}')
    monkeypatch.setenv("TRADEMASTER_REALIZED_MIN_LABELLED", "200")
    config = RealizedSettings.from_settings(PipelineSettings(environment="test"))

    assert config.margins == {
        "auc": 0.02,
        "directional_accuracy": 0.02,
        "interval_coverage": 0.08,
        "macro_f1": 0.02,
    }
    assert config.min_labelled == 200
    (result,) = version_results(
        ModelName.RISK, 2, _risk(150, seed=1), VersionReference({"holdout_auc": 0.9}), config, NOW
    )
    assert result.value is None  # 150 < 200
    assert "200 needed" in (result.note or "")


def test_a_margin_for_a_metric_that_is_never_compared_is_refused() -> None:
    settings = PipelineSettings(environment="test", realized_margin_by_metric={"mae": 0.01})
    with pytest.raises(ValueError, match=r"names \['mae'\]"):
        RealizedSettings.from_settings(settings)


def _result(**fields: object) -> RealizedResult:
    values: dict[str, object] = {
        "model_name": ModelName.BEHAVIOR.value,
        "model_version": 4,
        "metric": "macro_f1",
        "value": 0.70,
        "interval": (0.65, 0.75),
        "validated": 0.80,
        "validated_metric": "holdout_macro_f1",
        "shortfall": 0.10,
        "margin": 0.05,
        "metric_rows": 120,
        "labels": LabelStatus(120, 10, 30, 0.0),
        "routes": ("primary",),
    }
    return RealizedResult(**{**values, **fields})  # type: ignore[arg-type]


def test_published_series_carry_version_and_metric() -> None:
    metrics = batch_registry()

    record_metrics(metrics, [_result()])

    text = generate_latest(metrics.registry).decode()
    quality = {"model_name": ModelName.BEHAVIOR.value, "model_version": "4", "metric": "macro_f1"}
    version = {"model_name": ModelName.BEHAVIOR.value, "model_version": "4"}
    assert _value(text, "ml_realized_quality", **quality) == pytest.approx(0.70)
    assert _value(text, "ml_validated_quality", **quality) == pytest.approx(0.80)
    assert _value(text, "ml_realized_quality_shortfall", **quality) == pytest.approx(0.10)
    assert _value(text, "ml_realized_quality_margin", **quality) == pytest.approx(0.05)
    assert _value(text, "ml_realized_predictions", **version) == 120
    assert _value(text, "ml_label_coverage", **version) == pytest.approx(120 / 150)
    assert _value(text, "ml_label_delay_seconds", **version) == 0.0


def test_a_metric_without_a_value_publishes_only_its_rows_and_coverage() -> None:
    metrics = batch_registry()
    thin = _result(
        value=None,
        interval=None,
        shortfall=None,
        margin=None,
        metric_rows=12,
        labels=LabelStatus(12, 3, 0, None),
    )

    record_metrics(metrics, [thin])

    text = generate_latest(metrics.registry).decode()
    quality = {"model_name": ModelName.BEHAVIOR.value, "model_version": "4", "metric": "macro_f1"}
    version = {"model_name": ModelName.BEHAVIOR.value, "model_version": "4"}
    assert _value(text, "ml_realized_quality", **quality) is None
    assert _value(text, "ml_realized_quality_shortfall", **quality) is None
    assert _value(text, "ml_validated_quality", **quality) == pytest.approx(0.80)
    assert _value(text, "ml_realized_predictions", **version) == 12
    assert _value(text, "ml_label_coverage", **version) == 1.0
    assert _value(text, "ml_label_delay_seconds", **version) is None


def test_the_summary_marks_a_breach() -> None:
    (entry,) = summary([_result()]).values()

    assert entry["breached"] is True
    assert entry["interval"] == [0.65, 0.75]
    assert (entry["labelled"], entry["pending"], entry["missing"]) == (120, 10, 30)


# --- end to end: the log, the warehouse frames, the registry's figures -----------------------


def _behaviour_log(n_users: int) -> list[dict[str, object]]:
    """Every user asked about twice (one snapshot), right for two thirds of them, and a
    shadow version that is always right (it must not count)."""
    stamp = {"user_behavior_fv": NOW.replace(hour=0)}
    records = []
    for user in range(n_users):
        archetype = BEHAVIOR_CLASSES[user % len(BEHAVIOR_CLASSES)]
        wrong = BEHAVIOR_CLASSES[(user + 1) % len(BEHAVIOR_CLASSES)]
        answer = archetype if user % 3 else wrong
        for minute, route, version, prediction in (
            (1, "primary", 2, answer),
            (2, "primary", 2, answer),
            (2, "shadow", 3, archetype),
        ):
            records.append(
                record(
                    ModelName.BEHAVIOR,
                    NOW - timedelta(hours=1, minutes=minute),
                    model_version=version,
                    route=route,
                    request_id=f"{user}-{minute}",
                    entity={"user_id": user},
                    features={"trades_in_window": 5},
                    feature_timestamps=stamp,
                    prediction=prediction,
                )
            )
    return records


def _users(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": range(n),
            "archetype": [BEHAVIOR_CLASSES[user % len(BEHAVIOR_CLASSES)] for user in range(n)],
            "previous_archetype": None,
            "archetype_since": pd.NaT,
        }
    )


def test_realized_quality_reads_the_log_and_judges_each_served_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = write_log(tmp_path / "log.sqlite", _behaviour_log(60))
    settings = PipelineSettings(environment="test", data_dir=tmp_path, prediction_log_url=url)
    asked: list[tuple[str, int]] = []

    def reference(_: PipelineSettings, model: str, version: int) -> VersionReference:
        asked.append((model, version))
        return VersionReference({"holdout_macro_f1": 0.95}, {"trades_in_window": 3})

    monkeypatch.setattr(realized, "version_reference", reference)
    monkeypatch.setattr(realized, "read_frames", lambda *_: WarehouseFrames(users=_users(60)))

    (result,) = realized.realized_quality(
        settings, now=NOW, risk_labels=adverse_move_labels, config=FAST
    )

    truth = [BEHAVIOR_CLASSES[u % 5] for u in range(60)]
    predicted = [truth[u] if u % 3 else BEHAVIOR_CLASSES[(u + 1) % 5] for u in range(60)]
    expected = f1_score(truth, predicted, labels=list(BEHAVIOR_CLASSES), average="macro")
    assert asked == [(ModelName.BEHAVIOR, 2)]  # the shadow version was never served
    assert (result.model_name, result.model_version) == (ModelName.BEHAVIOR.value, 2)
    assert result.rows == 60  # one per user and snapshot, not one per request
    assert result.value == pytest.approx(expected)
    assert result.shortfall == pytest.approx(0.95 - expected)
    assert result.breached
    assert result.label_coverage == 1.0
    assert result.label_delay_s == 0.0  # generated ground truth: known at once


def test_sentiment_is_judged_on_the_class_of_its_logged_probabilities() -> None:
    """As the gateway logs it: the score as the prediction, the class probabilities beside
    it. The argmax is the predicted class; the score alone could not say it."""
    rng = np.random.default_rng(3)
    classes = ["negative", "neutral", "positive"]
    truth = [classes[i % 3] for i in range(90)]
    headlines = pd.DataFrame(
        {
            "headline": [f"headline {i}" for i in range(90)],
            "ts": pd.Timestamp(NOW - timedelta(days=2)).tz_localize(None),
            "label": truth,
        }
    )
    records, predicted = [], []
    for i, label in enumerate(truth):
        guess = label if rng.random() < 0.7 else classes[(i + 1) % 3]
        p = dict.fromkeys(classes, 0.15) | {guess: 0.7}
        predicted.append(guess)
        records.append(
            record(
                ModelName.SENTIMENT,
                NOW - timedelta(hours=3),
                request_id=f"s{i}",
                entity={"text": f"headline {i}"},
                prediction=p["positive"] - p["negative"],  # the score
                confidence=0.7,
                probabilities=p,
            )
        )

    (result,) = evaluate(
        logged(records),
        WarehouseFrames(headlines=headlines),
        {(ModelName.SENTIMENT.value, 2): VersionReference({"holdout_macro_f1": 0.9})},
        risk_labels=adverse_move_labels,
        risk_horizon_days=10,
        risk_loss_threshold=0.1,
        config=FAST,
        now=NOW,
    )

    expected = f1_score(truth, predicted, labels=classes, average="macro")
    assert result.metric == "macro_f1"
    assert result.value == pytest.approx(expected)
    assert result.shortfall == pytest.approx(0.9 - expected)
    assert result.label_coverage == 1.0
    assert result.label_delay_s == 0.0  # asked after publication: known at once


def test_models_without_outcomes_are_not_judged() -> None:
    portfolio = record(
        ModelName.PORTFOLIO, NOW - timedelta(hours=1), entity={"symbols": ["SYN001"]}
    )
    predictions = logged([*_behaviour_log(60), portfolio])

    results = evaluate(
        predictions,
        WarehouseFrames(users=_users(60)),
        {},
        risk_labels=adverse_move_labels,
        risk_horizon_days=10,
        risk_loss_threshold=0.1,
        config=FAST,
        now=NOW,
    )

    assert [(r.model_name, r.model_version, r.metric) for r in results] == [
        (ModelName.BEHAVIOR.value, 2, "macro_f1")
    ]
    assert results[0].validated is None  # a version the registry does not know
