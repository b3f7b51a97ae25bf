"""The HTML drift report: one self-contained page, every feature's numbers, drifted rows
marked, and the distributions inlined when the data for them is given."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trademaster.monitoring.drift import DriftReport, DriftSettings, compare
from trademaster.monitoring.profile import FeatureProfile, build_profile
from trademaster.monitoring.report import render_report

TITLE = "risk-assessment-model v3 (served)"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Rows(HTMLParser):
    """Table rows as (class, cells); image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        elif tag == "td":
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs)["src"] or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell))
            self._cell = None


def _parsed(path: Path) -> _Rows:
    parser = _Rows()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture
def checked() -> tuple[FeatureProfile, pd.DataFrame, DriftReport]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "amount": rng.normal(size=3_000),
            "<script>": rng.normal(size=3_000),
            "tier": rng.choice(["gold", "silver"], size=3_000),
        }
    )
    current = pd.DataFrame(
        {
            "amount": rng.normal(1.0, 1, size=600),
            "<script>": rng.normal(size=600),
            "tier": rng.choice(["gold", "silver"], size=600),
        }
    )
    profile = build_profile(reference, "risk_model_v1")
    return profile, current, compare(profile, current, DriftSettings())


def test_every_feature_has_a_row_and_drifted_rows_are_marked(
    tmp_path: Path, checked: tuple[FeatureProfile, pd.DataFrame, DriftReport]
) -> None:
    _, _, report = checked
    short = compare(checked[0], checked[1].iloc[:10], DriftSettings())

    path = render_report({TITLE: report, "short": short}, tmp_path / "out" / "drift.html")

    parsed = _parsed(path)
    body = [(kind, cells) for kind, cells in parsed.rows if cells]
    assert [cells[0] for _, cells in body] == ["amount", "<script>", "tier"] * 2
    assert [kind for kind, _ in body] == [
        "drift", "no_drift", "no_drift", *["insufficient_data"] * 3
    ]  # fmt: skip
    amount = body[0][1]
    assert amount[1:3] == ["wasserstein", f"{report.features[0].score:.3g}"]
    assert amount[-1] == "drift"
    assert body[3][1][2] == "\N{EM DASH}"  # no score without data
    text = path.read_text(encoding="utf-8")
    assert TITLE in text
    assert "<script>" not in text  # names are escaped
    assert parsed.images == []  # no figures without the data


def test_the_distributions_are_inlined_as_a_png(
    tmp_path: Path, checked: tuple[FeatureProfile, pd.DataFrame, DriftReport]
) -> None:
    pytest.importorskip("matplotlib")
    profile, current, report = checked

    path = render_report(
        {TITLE: report},
        tmp_path / "drift.html",
        profiles={TITLE: profile},
        current={TITLE: current},
    )

    (image,) = _parsed(path).images
    match = re.fullmatch(r"data:image/png;base64,(.+)", image)
    assert match is not None
    assert base64.b64decode(match.group(1)).startswith(PNG_MAGIC)
