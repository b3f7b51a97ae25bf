"""The reference profile training stores with each model version (``PROFILE_ARTIFACT``).

Drift checks run daily, long after the training rows are gone, so a version keeps a summary
of what it was trained on that is enough for every statistic ``drift.compare`` computes:

- numeric features keep a *sketch*: all values when there are at most ``SKETCH_SIZE``, else
  ``SKETCH_SIZE`` equal-weight quantiles, which stand for the distribution (KS on a small
  reference uses the exact sample; Wasserstein on a large one is accurate to about 1e-3
  reference standard deviations, see tests/unit/monitoring/test_drift.py);
- PSI needs the reference share per bin, kept with the bin edges (the reference deciles);
- categorical features keep their frequencies.

Non-finite numbers are counted as nulls: a profile must be plain JSON (no NaN or inf) and a
feature that is sometimes inf is a data problem the ``nulls`` count should show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

PROFILE_ARTIFACT = "reference_profile.json"
SKETCH_SIZE = 2_000
PSI_BINS = 10


@dataclass(frozen=True)
class NumericProfile:
    count: int  # finite values
    nulls: int  # missing or non-finite values
    mean: float
    std: float  # population std (ddof=0), the Wasserstein norm
    minimum: float
    maximum: float
    sketch: tuple[float, ...]
    psi_edges: tuple[float, ...]  # inner edges; bins are right-closed: (e[i-1], e[i]]
    psi_shares: tuple[float, ...]  # len(psi_edges) + 1 shares


@dataclass(frozen=True)
class CategoricalProfile:
    count: int
    nulls: int
    frequencies: dict[str, int]


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class FeatureProfile:
    feature_service: str
    rows: int
    built_at: str  # ISO 8601, UTC
    features: dict[str, ColumnProfile]
    # The rows the reference describes (column -> minimum, e.g. active users only): the
    # daily check filters current rows by it so it compares like with like.
    population: dict[str, float] = field(default_factory=dict)
    # Feature -> the largest drift distance seen between the reference and its own recent
    # days (``reference.calibrated``): how far a quiet day strays. The daily check flags a
    # distance only above both the default threshold and this times a margin.
    calibration: dict[str, float] = field(default_factory=dict)
    # Rows a current sample needs before it is judged (None: DriftSettings.min_samples). A
    # model whose entities are few (60 symbols a day) sets it lower; its calibration, on
    # days of that size, absorbs the small sample's noise.
    min_samples: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "feature_service": self.feature_service,
            "rows": self.rows,
            "built_at": self.built_at,
            "population": dict(self.population),
            "calibration": dict(self.calibration),
            "min_samples": self.min_samples,
            "features": {name: _column_json(column) for name, column in self.features.items()},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> FeatureProfile:
        try:
            service = str(document["feature_service"])
            columns = document["features"]
            rows = int(document["rows"])
            built_at = str(document["built_at"])
        except KeyError as exc:
            raise ValueError(f"reference profile: missing key {exc}") from None
        features = {}
        for name, column in columns.items():
            try:
                features[str(name)] = _column_from_json(column)
            except KeyError as exc:
                raise ValueError(f"{service} profile, {name!r}: missing key {exc}") from None
            except ValueError as exc:
                raise ValueError(f"{service} profile, {name!r}: {exc}") from None
        population = {str(k): float(v) for k, v in document.get("population", {}).items()}
        calibration = {str(k): float(v) for k, v in document.get("calibration", {}).items()}
        min_samples = document.get("min_samples")
        return cls(
            service,
            rows,
            built_at,
            features,
            population,
            calibration,
            None if min_samples is None else int(min_samples),
        )


def _column_json(column: ColumnProfile) -> dict[str, Any]:
    if isinstance(column, CategoricalProfile):
        return {
            "kind": "categorical",
            "count": column.count,
            "nulls": column.nulls,
            "frequencies": dict(column.frequencies),
        }
    return {
        "kind": "numeric",
        "count": column.count,
        "nulls": column.nulls,
        "mean": column.mean,
        "std": column.std,
        "minimum": column.minimum,
        "maximum": column.maximum,
        "sketch": list(column.sketch),
        "psi_edges": list(column.psi_edges),
        "psi_shares": list(column.psi_shares),
    }


def _column_from_json(document: Mapping[str, Any]) -> ColumnProfile:
    kind = document["kind"]
    if kind == "categorical":
        return CategoricalProfile(
            count=int(document["count"]),
            nulls=int(document["nulls"]),
            frequencies={str(k): int(v) for k, v in document["frequencies"].items()},
        )
    if kind == "numeric":
        return NumericProfile(
            count=int(document["count"]),
            nulls=int(document["nulls"]),
            mean=float(document["mean"]),
            std=float(document["std"]),
            minimum=float(document["minimum"]),
            maximum=float(document["maximum"]),
            sketch=tuple(float(v) for v in document["sketch"]),
            psi_edges=tuple(float(v) for v in document["psi_edges"]),
            psi_shares=tuple(float(v) for v in document["psi_shares"]),
        )
    raise ValueError(f"unknown feature kind {kind!r}")


def finite_values(series: pd.Series, feature: str) -> np.ndarray:
    """The finite values of a numeric column as float64, sorted (nulls and inf dropped)."""
    try:
        values = np.asarray(pd.to_numeric(series), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"feature {feature!r} is numeric in the profile: {exc}") from None
    return np.sort(values[np.isfinite(values)])


def category_values(series: pd.Series) -> pd.Series:
    """A categorical column's non-null values as strings (the profile's frequency keys)."""
    return series.dropna().astype(str)


def psi_bin_counts(values: np.ndarray, edges: np.ndarray | Sequence[float]) -> np.ndarray:
    """Values per right-closed bin (a value on an edge goes to the bin below it, as the
    decile it is: a point mass at an edge stays in one bin)."""
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def numeric_profile(series: pd.Series, feature: str) -> NumericProfile:
    values = finite_values(series, feature)
    if values.size == 0:
        raise ValueError(f"feature {feature!r} has no finite values to profile")
    if values.size <= SKETCH_SIZE:
        sketch = values
    else:
        sketch = np.quantile(values, (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE)
    edges = np.unique(np.quantile(values, np.arange(1, PSI_BINS) / PSI_BINS))
    shares = psi_bin_counts(values, edges) / values.size
    return NumericProfile(
        count=int(values.size),
        nulls=int(len(series) - values.size),
        mean=float(values.mean()),
        std=float(values.std()),
        minimum=float(values[0]),
        maximum=float(values[-1]),
        sketch=tuple(float(v) for v in sketch),
        psi_edges=tuple(float(v) for v in edges),
        psi_shares=tuple(float(v) for v in shares),
    )


def categorical_profile(series: pd.Series, feature: str) -> CategoricalProfile:
    values = category_values(series)
    if values.empty:
        raise ValueError(f"feature {feature!r} has no non-null values to profile")
    counts = values.value_counts(sort=True)
    return CategoricalProfile(
        count=int(values.size),
        nulls=int(len(series) - values.size),
        frequencies={str(k): int(v) for k, v in counts.items()},
    )


def is_categorical(series: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
        or isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(series.dtype)
    )


def build_profile(
    frame: pd.DataFrame,
    feature_service: str,
    categorical: Sequence[str] = (),
    population: Mapping[str, float] | None = None,
) -> FeatureProfile:
    """The profile of every column of ``frame`` (the training rows of one feature service).

    ``categorical`` names the columns to profile as categories whatever their dtype (codes
    stored as integers); object, category, string and bool columns are categorical anyway.
    ``population`` is recorded, not applied: ``frame`` is already the rows trained on."""
    if frame.empty:
        raise ValueError(f"{feature_service}: cannot profile an empty frame")
    unknown = sorted(set(categorical) - set(frame.columns))
    if unknown:
        raise ValueError(f"{feature_service}: categorical columns not in the frame: {unknown}")
    features: dict[str, ColumnProfile] = {}
    for name in frame.columns:
        column = frame[name]
        feature = str(name)
        if name in categorical or is_categorical(column):
            features[feature] = categorical_profile(column, feature)
        elif pd.api.types.is_numeric_dtype(column.dtype):
            features[feature] = numeric_profile(column, feature)
        else:
            raise ValueError(f"feature {feature!r}: cannot profile dtype {column.dtype}")
    return FeatureProfile(
        feature_service=feature_service,
        rows=len(frame),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        features=features,
        population=dict(population or {}),
    )
