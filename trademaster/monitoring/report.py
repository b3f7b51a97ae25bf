"""One self-contained HTML page per drift check run, for people (the caller keeps it in MLflow).

Prometheus has the numbers; this page is what someone opens when an alert fires: every
comparison's table with drifted rows highlighted and, when the reference profiles and the
current values are passed, the two distributions of the drifted (else the first) features.
The figures are PNGs inlined as base64 so the page is one file, readable offline from the
MLflow UI. matplotlib is imported only to draw them (the scheduler preloads this module),
and without it the page simply has no figures.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trademaster.monitoring.drift import DriftReport, FeatureDrift
from trademaster.monitoring.profile import (
    CategoricalProfile,
    ColumnProfile,
    FeatureProfile,
    category_values,
    finite_values,
)

MAX_PLOTS = 4
MAX_CATEGORIES = 12
COLUMNS = ("feature", "method", "score", "threshold", "PSI", "samples", "reference", "state")

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drift { background: #fdd; }
tr.insufficient_data { color: #888; }
"""


def render_report(
    reports: Mapping[str, DriftReport],
    path: Path,
    *,
    profiles: Mapping[str, FeatureProfile] | None = None,
    current: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Writes the page for ``reports`` (title -> report, e.g. "risk-assessment-model v3
    (served)") to ``path`` and returns it. ``profiles`` and ``current``, by the same titles,
    are only needed for the figures."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Drift report</h1><p>Generated {created}.</p>",
    ]
    for title, report in reports.items():
        profile = (profiles or {}).get(title)
        frame = (current or {}).get(title)
        parts.append(_section(title, report, profile, frame))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _section(
    title: str, report: DriftReport, profile: FeatureProfile | None, frame: pd.DataFrame | None
) -> str:
    share = "n/a" if report.drift_share is None else f"{report.drift_share:.0%}"
    summary = (
        f"Feature service <code>{html.escape(report.feature_service)}</code>; "
        f"{len(report.drifted_features)} of {len(report.features)} features drifted "
        f"(share of checked: {share}; dataset drift: {'yes' if report.dataset_drift else 'no'})."
    )
    header = "".join(f"<th>{name}</th>" for name in COLUMNS)
    rows = "".join(_row(feature) for feature in report.features)
    figure = ""
    if profile is not None and frame is not None:
        image = _figure(report, profile, frame)
        if image:
            figure = f'<img alt="distributions" src="data:image/png;base64,{image}">'
    return (
        f"<h2>{html.escape(title)}</h2><p>{summary}</p>"
        f"<table><tr>{header}</tr>{rows}</table>{figure}"
    )


def _number(value: float | None) -> str:
    return "&mdash;" if value is None else f"{value:.3g}"


def _row(feature: FeatureDrift) -> str:
    cells = (
        html.escape(feature.feature),
        feature.method,
        _number(feature.score),
        _number(feature.threshold),
        _number(feature.psi),
        str(feature.samples),
        str(feature.reference_samples),
        feature.state.replace("_", " "),
    )
    return f'<tr class="{feature.state}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _plotted(report: DriftReport, profile: FeatureProfile, frame: pd.DataFrame) -> list[str]:
    """Drifted features first, then the others in order, that both sides have data for."""
    ordered = [*report.drifted_features, *(f for f in report.features if f.state != "drift")]
    names = [f.feature for f in ordered if f.feature in profile.features and f.feature in frame]
    return names[:MAX_PLOTS]


def _figure(report: DriftReport, profile: FeatureProfile, frame: pd.DataFrame) -> str | None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    names = _plotted(report, profile, frame)
    if not names:
        return None
    figure = Figure(figsize=(4 * len(names), 3), layout="constrained")
    for axes, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names, strict=True):
        _plot(axes, name, profile.features[name], frame[name])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot(axes: Any, name: str, reference: ColumnProfile, current: pd.Series) -> None:
    axes.set_title(name, fontsize=10)
    if isinstance(reference, CategoricalProfile):
        counts = category_values(current).value_counts()
        categories = list(reference.frequencies)[:MAX_CATEGORIES]
        categories += [c for c in counts.index if c not in reference.frequencies]
        categories = categories[:MAX_CATEGORIES]
        x = np.arange(len(categories))
        ref = [reference.frequencies.get(c, 0) / reference.count for c in categories]
        cur = [counts.get(c, 0) / max(counts.sum(), 1) for c in categories]
        axes.bar(x - 0.2, ref, width=0.4, label="reference")
        axes.bar(x + 0.2, cur, width=0.4, label="current")
        axes.set_xticks(x, categories, rotation=45, fontsize=7)
    else:
        sketch = np.asarray(reference.sketch)
        values = finite_values(current, name)
        both = np.concatenate([sketch, values])
        # The central 99% keeps one outlier from squeezing both histograms into a bar.
        low, high = np.quantile(both, [0.005, 0.995])
        bins = np.linspace(low, high, 31) if high > low else 10
        axes.hist(sketch, bins=bins, density=True, alpha=0.5, label="reference")
        if values.size:
            axes.hist(values, bins=bins, density=True, alpha=0.5, label="current")
    axes.legend(fontsize=7)
