"""The reference profile: what it keeps of the training rows, and that it survives MLflow
(plain JSON, read back equal)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trademaster.monitoring.profile import (
    PSI_BINS,
    SKETCH_SIZE,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    build_profile,
)


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, size=rows),
            "tier": rng.choice(["gold", "silver", "bronze"], size=rows, p=[0.2, 0.3, 0.5]),
            "segment_code": rng.integers(0, 4, size=rows),
            "is_pro": rng.random(rows) < 0.1,
        }
    )


def _numeric(profile: FeatureProfile, name: str) -> NumericProfile:
    column = profile.features[name]
    assert isinstance(column, NumericProfile)
    return column


def test_columns_are_profiled_by_kind() -> None:
    profile = build_profile(_frame(500), "risk_model_v1", categorical=["segment_code"])

    kinds = {name: type(column).__name__ for name, column in profile.features.items()}
    assert kinds == {
        "amount": "NumericProfile",
        "tier": "CategoricalProfile",
        "segment_code": "CategoricalProfile",
        "is_pro": "CategoricalProfile",
    }
    assert profile.rows == 500
    assert profile.feature_service == "risk_model_v1"
    assert profile.built_at.endswith("+00:00")


def test_a_small_reference_keeps_every_value() -> None:
    frame = _frame(SKETCH_SIZE)
    amount = _numeric(build_profile(frame, "svc"), "amount")

    assert amount.sketch == tuple(np.sort(frame["amount"].to_numpy()))
    assert amount.count == SKETCH_SIZE
    assert amount.mean == pytest.approx(frame["amount"].mean())
    assert amount.std == pytest.approx(frame["amount"].std(ddof=0))
    assert (amount.minimum, amount.maximum) == (frame["amount"].min(), frame["amount"].max())


def test_a_large_reference_keeps_equal_weight_quantiles() -> None:
    frame = _frame(SKETCH_SIZE * 5)
    amount = _numeric(build_profile(frame, "svc"), "amount")

    levels = (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE
    assert len(amount.sketch) == SKETCH_SIZE
    np.testing.assert_allclose(amount.sketch, np.quantile(frame["amount"], levels))
    assert list(amount.sketch) == sorted(amount.sketch)


def test_psi_bins_are_the_reference_deciles() -> None:
    frame = _frame(1_000)
    amount = _numeric(build_profile(frame, "svc"), "amount")

    assert len(amount.psi_edges) == PSI_BINS - 1
    assert len(amount.psi_shares) == PSI_BINS
    np.testing.assert_allclose(amount.psi_shares, 0.1, atol=0.002)
    assert sum(amount.psi_shares) == pytest.approx(1.0)


def test_a_point_mass_gives_fewer_psi_bins_and_keeps_its_share() -> None:
    values = np.r_[np.zeros(700), np.arange(1, 301)]
    zeros = _numeric(build_profile(pd.DataFrame({"x": values}), "svc"), "x")

    assert zeros.psi_edges[0] == 0.0
    assert len(zeros.psi_edges) == len(set(zeros.psi_edges)) < PSI_BINS - 1
    assert zeros.psi_shares[0] == pytest.approx(0.7)


def test_non_finite_values_count_as_nulls() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 2.0, 3.0]})
    x = _numeric(build_profile(frame, "svc"), "x")

    assert (x.count, x.nulls) == (3, 3)
    assert x.sketch == (1.0, 2.0, 3.0)


def test_categories_are_counted_as_strings() -> None:
    frame = pd.DataFrame(
        {"tier": ["gold", "gold", None, "silver"], "flag": [True, False, True, True]}
    )
    profile = build_profile(frame, "svc")

    assert profile.features["tier"] == CategoricalProfile(3, 1, {"gold": 2, "silver": 1})
    assert profile.features["flag"] == CategoricalProfile(4, 0, {"True": 3, "False": 1})


def test_json_round_trip_is_exact_and_plain() -> None:
    frame = _frame(SKETCH_SIZE * 2)
    frame.loc[::7, "amount"] = np.nan
    frame.loc[3, "amount"] = np.inf
    profile = build_profile(
        frame, "risk_model_v1", categorical=["segment_code"], population={"trades": 1.0}
    )

    text = json.dumps(profile.to_json(), allow_nan=False)  # raises on NaN or inf
    back = FeatureProfile.from_json(json.loads(text))

    assert back == profile
    assert back.population == {"trades": 1.0}
    assert isinstance(back.features["amount"], NumericProfile)
    assert isinstance(back.features["amount"].sketch, tuple)


def test_from_json_names_what_is_wrong() -> None:
    document = build_profile(_frame(50), "svc").to_json()
    document["features"]["amount"]["kind"] = "histogram"
    with pytest.raises(ValueError, match="svc profile, 'amount': unknown feature kind 'histogram'"):
        FeatureProfile.from_json(document)
    document["features"]["amount"]["kind"] = "numeric"
    del document["features"]["amount"]["std"]
    with pytest.raises(ValueError, match="svc profile, 'amount': missing key 'std'"):
        FeatureProfile.from_json(document)
    del document["feature_service"]
    with pytest.raises(ValueError, match="reference profile: missing key 'feature_service'"):
        FeatureProfile.from_json(document)


def test_an_empty_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="svc: cannot profile an empty frame"):
        build_profile(pd.DataFrame({"x": []}), "svc")


def test_a_feature_without_values_is_refused_by_name() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.inf]})
    with pytest.raises(ValueError, match="'empty' has no finite values"):
        build_profile(frame, "svc")
    with pytest.raises(ValueError, match="'tier' has no non-null values"):
        build_profile(pd.DataFrame({"tier": [None, None]}, dtype=object), "svc")


def test_unknown_categorical_columns_are_refused() -> None:
    with pytest.raises(ValueError, match=r"not in the frame: \['missing'\]"):
        build_profile(_frame(10), "svc", categorical=["missing"])
