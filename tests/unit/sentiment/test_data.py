from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from trademaster.sentiment.data import (
    HeadlinesUnavailable,
    InvalidHeadlines,
    label_indices,
    load_headlines,
    template_split,
    validate_headlines,
)
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.headlines import HELD_OUT_TEMPLATE_IDS, generate_headlines
from trademaster.warehouse.market import business_calendar, generate_symbols


def _headlines(n_symbols: int = 6, n_days: int = 40) -> pd.DataFrame:
    calendar = business_calendar(pd.Timestamp("2026-06-30").date(), n_days)
    bars, _ = generate_symbols(n_symbols, calendar, np.random.default_rng(0))
    return generate_headlines(bars, np.random.default_rng(1))


def _headlines_table() -> sa.Table:
    return sa.Table(
        "headlines",
        sa.MetaData(),
        sa.Column("headline_id", sa.Integer, primary_key=True),
        sa.Column("symbol", sa.String(16)),
        sa.Column("ts", sa.DateTime),
        sa.Column("headline", sa.String(256)),
        sa.Column("template_id", sa.Integer),
        sa.Column("label", sa.String(8)),
    )


def _settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(environment="test", data_dir=tmp_path)


def test_held_out_templates_are_never_in_training() -> None:
    frame = _headlines()

    split = template_split(frame)

    assert not split.train["template_id"].isin(HELD_OUT_TEMPLATE_IDS).any()
    assert split.holdout["template_id"].isin(HELD_OUT_TEMPLATE_IDS).all()
    assert len(split.train) + len(split.holdout) == len(frame)
    assert not set(split.train["headline"]) & set(split.holdout["headline"])


def test_a_split_without_every_class_on_both_sides_is_refused() -> None:
    frame = _headlines()
    no_negative_holdout = frame[
        ~(frame["template_id"].isin(HELD_OUT_TEMPLATE_IDS) & (frame["label"] == "negative"))
    ]

    with pytest.raises(InvalidHeadlines, match=r"held-out templates have no \['negative'\]"):
        template_split(no_negative_holdout)


def test_label_indices_follow_the_class_order() -> None:
    frame = pd.DataFrame({"label": ["positive", "negative", "neutral"]})

    assert label_indices(frame).tolist() == [2, 0, 1]


def test_invalid_headlines_are_refused_with_every_problem_listed() -> None:
    frame = _headlines().drop(columns=["template_id"])
    frame.loc[0, "label"] = "bullish"
    frame.loc[1, "headline"] = None

    with pytest.raises(InvalidHeadlines) as info:
        validate_headlines(frame)

    message = str(info.value)
    assert "missing columns ['template_id']" in message
    assert "unknown labels ['bullish']" in message
    assert "1 headlines are null" in message


def test_no_headlines_table_in_the_schema_says_what_to_wire(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(schema, "headlines", raising=False)

    with pytest.raises(HeadlinesUnavailable, match="schema defines no `headlines` table"):
        load_headlines(_settings(tmp_path))


def test_a_warehouse_without_the_table_says_to_run_extract(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(schema, "headlines", _headlines_table(), raising=False)

    with pytest.raises(HeadlinesUnavailable, match="run the extract step"):
        load_headlines(_settings(tmp_path))


def test_headlines_are_read_from_the_warehouse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    table = _headlines_table()
    monkeypatch.setattr(schema, "headlines", table, raising=False)
    settings = _settings(tmp_path)
    frame = _headlines()
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.begin() as connection:
        table.metadata.create_all(connection)
        connection.execute(table.insert(), frame.to_dict(orient="records"))
    engine.dispose()

    loaded = load_headlines(settings)

    pd.testing.assert_frame_equal(loaded[frame.columns], frame, check_dtype=False)
