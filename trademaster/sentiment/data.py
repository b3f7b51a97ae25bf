"""Headlines for sentiment-analyzer: reading them from the warehouse, checking them, and the
split by template (training templates vs held-out templates)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from trademaster.sentiment.model import CLASS_LABELS
from trademaster.settings import PipelineSettings
from trademaster.warehouse import schema
from trademaster.warehouse.headlines import COLUMNS, is_held_out

HEADLINES_TABLE = "headlines"


class HeadlinesUnavailable(RuntimeError):
    """The warehouse has no headlines table (yet)."""


class InvalidHeadlines(ValueError):
    """Headlines that break the contract of ``trademaster.warehouse.headlines``."""


def load_headlines(settings: PipelineSettings) -> pd.DataFrame:
    """The warehouse's ``headlines`` table (written during extract by ``generate_headlines``)."""
    from trademaster.warehouse.read import read_table

    table = getattr(schema, HEADLINES_TABLE, None)
    if not isinstance(table, sa.Table):
        raise HeadlinesUnavailable(
            "trademaster.warehouse.schema defines no `headlines` table: add it and write "
            "generate_headlines(...) output during extract before training sentiment-analyzer"
        )
    engine = sa.create_engine(settings.resolved_warehouse_url)
    try:
        exists = sa.inspect(engine).has_table(table.name)
    finally:
        engine.dispose()
    if not exists:
        raise HeadlinesUnavailable(
            f"the warehouse at {engine.url.render_as_string(hide_password=True)} has no "
            f"`{table.name}` table: run the extract step first"
        )
    return validate_headlines(read_table(settings, table))


def validate_headlines(frame: pd.DataFrame) -> pd.DataFrame:
    """Returns ``frame`` if it has the generator's columns, known labels and some rows."""
    missing = [column for column in COLUMNS if column not in frame.columns]
    problems = [f"missing columns {missing}"] if missing else []
    if "label" in frame.columns:
        unknown = sorted(set(frame["label"].dropna().astype(str)) - set(CLASS_LABELS))
        if unknown:
            problems.append(f"unknown labels {unknown} (expected {list(CLASS_LABELS)})")
    if "headline" in frame.columns and frame["headline"].isna().any():
        problems.append(f"{int(frame['headline'].isna().sum())} headlines are null")
    if frame.empty:
        problems.append("no rows")
    if problems:
        raise InvalidHeadlines("invalid headlines: " + "; ".join(problems))
    return frame


def label_indices(frame: pd.DataFrame) -> np.ndarray:
    """Class index (position in ``CLASS_LABELS``) per row."""
    return frame["label"].map({label: i for i, label in enumerate(CLASS_LABELS)}).to_numpy(np.int64)


@dataclass(frozen=True)
class TemplateSplit:
    train: pd.DataFrame
    holdout: pd.DataFrame

    def check(self) -> TemplateSplit:
        """Both sides must hold every class, or macro-F1 means nothing."""
        for name, part in (("training", self.train), ("held-out", self.holdout)):
            absent = sorted(set(CLASS_LABELS) - set(part["label"]))
            if absent:
                raise InvalidHeadlines(
                    f"the {name} templates have no {absent} headlines ({len(part)} rows)"
                )
        return self


def template_split(frame: pd.DataFrame) -> TemplateSplit:
    """Rows of held-out templates form the holdout; no held-out template is ever trained on."""
    held = is_held_out(frame["template_id"]).to_numpy()
    return TemplateSplit(
        frame[~held].reset_index(drop=True), frame[held].reset_index(drop=True)
    ).check()
