from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fingerprints import forget_fingerprint
from trademaster import registry
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.sentiment.pipeline import (
    GATE_RULES,
    MODEL_NAME,
    NoChampion,
    daily_sentiment,
    decide,
    parity_headlines,
    score_headlines,
    train_and_register,
)
from trademaster.settings import PipelineSettings
from trademaster.training import gates
from trademaster.training.promotion import validate_candidate
from trademaster.warehouse.headlines import HELD_OUT_TEMPLATE_IDS, generate_headlines
from trademaster.warehouse.market import business_calendar, generate_symbols

DEFINITION = catalog_definition(MODEL_NAME)


RULES = {rule.name: rule for rule in GATE_RULES}


def _metrics(**intervals: tuple[float, float, float]) -> dict[str, float]:
    values = {"vs_majority_macro_f1": (0.5, 0.4, 0.6), "vs_bow_macro_f1": (0.15, 0.08, 0.2)}
    values.update(intervals)
    return gates.record(GATE_RULES, {k: gates.Interval(*v) for k, v in values.items()})


def _settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(
        environment="test", data_dir=tmp_path / "var", model_repository=tmp_path / "repo"
    )


def test_promotes_a_model_that_beats_both_baselines() -> None:
    promoted, reason = decide(_metrics(), _settings(Path("/nonexistent")))

    assert promoted
    assert "macro-F1 vs bag of words: +0.1500 [+0.0800, +0.2000]" in reason
    assert "macro-F1 vs the champion: no champion yet" in reason


@pytest.mark.parametrize("gate", ["vs_bow_macro_f1", "vs_majority_macro_f1"])
def test_rejects_a_model_whose_lift_over_a_baseline_is_not_shown(gate: str) -> None:
    lift = RULES[gate].margin
    metrics = _metrics(**{gate: (lift + 0.05, lift - 0.001, lift + 0.1)})

    promoted, reason = decide(metrics, _settings(Path("/nonexistent")))

    assert not promoted
    assert reason.startswith(RULES[gate].description)
    assert f"needs lower bound > {lift:+.4f}" in reason


def test_rejects_a_model_that_may_trail_the_champion_beyond_the_tolerance() -> None:
    settings = _settings(Path("/nonexistent"))
    tolerance = RULES["vs_champion_macro_f1"].margin

    promoted, reason = decide(_metrics(vs_champion_macro_f1=(0, -tolerance - 0.001, 0)), settings)

    assert not promoted
    assert reason.startswith("macro-F1 vs the champion")
    assert decide(_metrics(vs_champion_macro_f1=(0, -tolerance / 2, 0)), settings)[0]


def test_daily_sentiment_is_the_mean_score_per_symbol_and_day() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B"],
            "ts": pd.to_datetime(
                ["2026-06-01 09:00", "2026-06-01 17:30", "2026-06-02 08:00", "2026-06-01 12:00"]
            ),
            "sentiment_score": [0.5, -0.1, 0.9, -0.4],
        }
    )

    daily = daily_sentiment(frame)

    assert list(daily.columns) == ["symbol", "bar_date", "sentiment_score"]
    assert daily["bar_date"].tolist() == list(
        pd.to_datetime(["2026-06-01", "2026-06-02", "2026-06-01"])
    )
    np.testing.assert_allclose(daily["sentiment_score"], [0.2, 0.9, -0.4])


def _small_headlines() -> pd.DataFrame:
    calendar = business_calendar(pd.Timestamp("2026-06-30").date(), 60)
    bars, table = generate_symbols(8, calendar, np.random.default_rng(5))
    sectors = dict(zip(table["symbol"], table["sector"], strict=True))
    return generate_headlines(bars, np.random.default_rng(6), sectors)


def test_train_register_promote_and_score(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    headlines = _small_headlines()
    with pytest.raises(NoChampion, match="no champion version"):
        score_headlines(settings, headlines)

    first = train_and_register(settings, headlines)
    decision = validate_candidate(settings, DEFINITION.name, DEFINITION.training.decide, first)
    assert train_and_register(settings, headlines) == first  # same data and code: reused
    forget_fingerprint(settings, MODEL_NAME, first["version"])
    second = train_and_register(settings, headlines)

    metrics = first["metrics"]
    assert (first["model_name"], first["version"], second["version"]) == (MODEL_NAME, 1, 2)
    assert not any(key.startswith("champion_") for key in metrics)
    assert metrics["holdout_macro_f1"] > metrics["bow_macro_f1"] > metrics["majority_macro_f1"]
    assert metrics["holdout_rows"] == headlines["template_id"].isin(HELD_OUT_TEMPLATE_IDS).sum()
    assert decision["promoted"], decision["reason"]
    # The champion (version 1) scored on the same held-out rows, with the same embeddings.
    assert second["metrics"]["champion_macro_f1"] == pytest.approx(metrics["holdout_macro_f1"])
    # Same data, same seed: the same head, so the paired difference is exactly zero.
    assert second["metrics"]["gate_vs_champion_macro_f1_diff"] == 0.0
    assert second["metrics"]["gate_vs_champion_macro_f1_low"] == 0.0
    assert decide(second["metrics"], settings)[0]
    assert second["metrics"]["embedded_unique_texts"] == 0

    version = registry.RegisteredVersion(MODEL_NAME, 1, first["run_id"])
    tags = registry.version_tags(settings, version)
    assert tags["task"] == "text_sentiment"
    assert tags["class_labels"] == "negative,neutral,positive"
    assert len(tags["encoder_sha256"]) == 64
    stored = parity_headlines(settings, version)
    held_out = headlines[headlines["template_id"].isin(HELD_OUT_TEMPLATE_IDS)]["headline"]
    assert 0 < len(stored) <= 256
    assert set(stored) <= set(held_out)

    sample = headlines.sample(40, random_state=0)
    scores = score_headlines(settings, sample)
    assert scores.name == "sentiment_score"
    assert scores.index.equals(sample.index)
    assert scores.between(-1, 1).all()
    by_label = scores.groupby(sample["label"]).mean()
    assert by_label["negative"] < by_label["neutral"] < by_label["positive"]
