from __future__ import annotations

import re
from datetime import date
from functools import cache

import numpy as np
import pandas as pd
import pytest

from trademaster.warehouse.headlines import (
    COLUMNS,
    HELD_OUT_TEMPLATE_IDS,
    LABELS,
    TEMPLATE_BY_ID,
    TEMPLATES,
    company_names,
    daily_returns,
    generate_headlines,
    is_held_out,
)
from trademaster.warehouse.market import business_calendar, generate_symbols

END_DATE = date(2026, 6, 30)
KNOWN_FIELDS = {
    "company",
    "company_s",
    "ticker",
    "sector",
    "product",
    "pct",
    "pct2",
    "amount",
    "quarter",
    "region",
    "broker",
    "peer",
}


@cache
def _market(n_symbols: int, n_days: int) -> tuple[pd.DataFrame, dict[str, str]]:
    calendar = business_calendar(END_DATE, n_days)
    bars, table = generate_symbols(n_symbols, calendar, np.random.default_rng(3))
    return bars, dict(zip(table["symbol"], table["sector"], strict=True))


def _headlines(seed: int = 0, n_symbols: int = 20, n_days: int = 120) -> pd.DataFrame:
    bars, sectors = _market(n_symbols, n_days)
    return generate_headlines(bars, np.random.default_rng(seed), sectors)


@cache
def _default_size_headlines() -> pd.DataFrame:
    """60 symbols over the 252-day trade window, the pipeline's default sizes."""
    bars, sectors = _market(60, 320)
    window = bars[bars["ts"] >= np.sort(bars["ts"].unique())[-252]]
    return generate_headlines(window, np.random.default_rng(7), sectors)


def test_templates_are_many_distinct_and_cover_every_label() -> None:
    ids = [t.template_id for t in TEMPLATES]

    assert len(TEMPLATES) >= 40
    assert len(set(ids)) == len(ids)
    assert len({t.text for t in TEMPLATES}) == len(TEMPLATES)
    for label in LABELS:
        assert sum(t.label == label for t in TEMPLATES) >= 15
    assert all(t.fields <= KNOWN_FIELDS for t in TEMPLATES)


def test_templates_include_hedges_and_negations() -> None:
    texts = " ".join(t.text for t in TEMPLATES)

    for phrase in ("despite", "fails to", "no longer", "does not"):
        assert phrase in texts


def test_every_held_out_template_rephrases_a_concept_that_is_trained() -> None:
    trained = {(t.label, t.concept) for t in TEMPLATES if not t.held_out}

    for label in LABELS:
        held = [t for t in TEMPLATES if t.held_out and t.label == label]
        assert len(held) >= 4, label
        for template in held:
            assert (template.label, template.concept) in trained, template.text
    assert 0.2 <= len(HELD_OUT_TEMPLATE_IDS) / len(TEMPLATES) <= 0.4


def test_same_seed_gives_the_same_headlines_and_another_seed_does_not() -> None:
    first, again, other = _headlines(seed=1), _headlines(seed=1), _headlines(seed=2)

    pd.testing.assert_frame_equal(first, again)
    assert not first["headline"].equals(other["headline"])


def test_rows_follow_the_contract() -> None:
    frame = _headlines()
    bars, _ = _market(20, 120)
    bar_days = set(zip(bars["symbol"], bars["ts"].dt.normalize(), strict=True))

    assert tuple(frame.columns) == COLUMNS
    assert frame["headline_id"].tolist() == list(range(1, len(frame) + 1))
    assert frame["ts"].is_monotonic_increasing
    assert set(frame["label"]) == set(LABELS)
    assert frame["template_id"].map(lambda i: TEMPLATE_BY_ID[i].label).equals(frame["label"])
    assert all(
        (symbol, ts.normalize()) in bar_days
        for symbol, ts in zip(frame["symbol"], frame["ts"], strict=True)
    )
    assert (
        (frame["ts"] - frame["ts"].dt.normalize())
        .between(pd.Timedelta(hours=6), pd.Timedelta(hours=21))
        .all()
    )
    assert not frame["headline"].str.contains(r"[{}]").any()
    assert not frame["headline"].str.contains("s's").any()


def test_sentiment_follows_the_days_return() -> None:
    frame = _headlines(n_symbols=30, n_days=200)
    days = daily_returns(_market(30, 200)[0])
    joined = frame.assign(day=frame["ts"].dt.normalize()).merge(
        days.assign(day=days["ts"]), on=["symbol", "day"]
    )

    mean_z = joined.groupby("label")["z"].mean()
    assert mean_z["negative"] < -0.4 < mean_z["neutral"] < 0.4 < mean_z["positive"]
    strongly_up = joined[joined["z"] > 1.5]["label"].value_counts(normalize=True)
    strongly_down = joined[joined["z"] < -1.5]["label"].value_counts(normalize=True)
    assert strongly_up["positive"] > 0.7
    assert strongly_down["negative"] > 0.7


def test_big_moves_bring_more_headlines() -> None:
    frame = _headlines(n_symbols=30, n_days=200)
    days = daily_returns(_market(30, 200)[0])
    counts = frame.groupby(["symbol", frame["ts"].dt.normalize()]).size().rename("n")
    joined = days.set_index(["symbol", "ts"]).join(counts)

    quiet = joined[joined["z"].abs() < 0.5]["n"].mean()
    big = joined[joined["z"].abs() > 2.0]["n"].mean()
    assert big > quiet + 1


def test_a_stated_move_matches_the_days_return() -> None:
    frame = _headlines(n_symbols=30, n_days=200)
    days = daily_returns(_market(30, 200)[0])
    joined = frame.assign(day=frame["ts"].dt.normalize()).merge(
        days.assign(day=days["ts"]), on=["symbol", "day"]
    )
    moves = joined["template_id"].map(lambda i: TEMPLATE_BY_ID[i].move)

    assert (joined[moves == "up"]["ret"] > 0).all()
    assert (joined[moves == "down"]["ret"] < 0).all()
    assert (joined[moves == "flat"]["z"].abs() < 0.5).all()
    stated = joined[joined["headline"].str.contains(r"\d+\.\d%")]
    assert len(stated) > 50
    for headline, ret in zip(stated["headline"], stated["ret"], strict=True):
        percent = float(re.search(r"(\d+\.\d)%", headline).group(1))  # type: ignore[union-attr]
        assert percent == pytest.approx(max(abs(ret) * 100, 0.1), abs=0.051)


def test_a_company_does_not_get_the_same_story_twice_in_a_day() -> None:
    frame = _headlines(n_symbols=30, n_days=200)
    frame = frame.assign(day=frame["ts"].dt.normalize())

    assert not frame.duplicated(["symbol", "day", "template_id"]).any()


def test_default_sizes_give_a_few_headlines_per_symbol_and_day() -> None:
    frame = _default_size_headlines()

    assert 20_000 <= len(frame) <= 50_000
    per_day = frame.groupby(["symbol", frame["ts"].dt.normalize()]).size()
    assert len(per_day) == 60 * 252
    assert 1.5 <= per_day.mean() <= 3.0
    assert is_held_out(frame["template_id"]).mean() == pytest.approx(0.3, abs=0.1)
    # Many headlines repeat word for word, which the embedding cache relies on.
    assert frame["headline"].nunique() < 0.7 * len(frame)


def test_company_names_are_unique_for_many_symbols() -> None:
    symbols = [f"SYN{i:03d}" for i in range(1, 201)]
    names = company_names(symbols, {s: "technology" for s in symbols})

    assert len(set(names.values())) == len(symbols)
    assert all(name.split()[1] in {"Systems", "Networks"} for name in names.values())


def test_unknown_sectors_get_generic_words() -> None:
    bars, _ = _market(5, 60)

    frame = generate_headlines(bars, np.random.default_rng(0))

    assert frame["headline"].str.contains("Holdings|Group").any()


def test_no_bars_no_headlines() -> None:
    bars, _ = _market(5, 60)

    frame = generate_headlines(bars.iloc[:0], np.random.default_rng(0))

    assert tuple(frame.columns) == COLUMNS
    assert frame.empty
