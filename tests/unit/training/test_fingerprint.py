"""A training fingerprint changes with the data, the code and the parameters, and only then."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from trademaster import portfolio, risk
from trademaster.training import fingerprint


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "event_timestamp": pd.to_datetime(["2026-01-02", "2026-01-03", "2026-01-05"]),
            "feature": [0.5, 1.5, -2.0],
            "label": [0, 1, 0],
        }
    )


def _code(tmp_path: Path, body: str = "X = 1\n") -> str:
    package = tmp_path / "model"
    package.mkdir(exist_ok=True)
    (package / "train.py").write_text(body)
    return fingerprint.source_digest(package)


def test_the_same_data_code_and_params_give_the_same_fingerprint(tmp_path: Path) -> None:
    code = _code(tmp_path)
    first = fingerprint.training_fingerprint(
        {"examples": fingerprint.frame_digest(_frame())}, code, {"seed": 7, "epochs": 25}
    )
    again = fingerprint.training_fingerprint(
        {"examples": fingerprint.frame_digest(_frame().copy())}, code, {"epochs": 25, "seed": 7}
    )
    assert first == again
    # The index is not data: a frame filtered and re-indexed to the same rows is the same.
    assert fingerprint.frame_digest(_frame().set_index(pd.Index([7, 8, 9]))) == (
        fingerprint.frame_digest(_frame())
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(feature=[0.5, 1.5, -2.000001]),
        lambda f: f.assign(label=[0, 1, 1]),
        lambda f: f.iloc[::-1],
        lambda f: f.iloc[:2],
        lambda f: f.rename(columns={"feature": "other_feature"}),
        lambda f: f.astype({"label": "float64"}),
    ],
    ids=["a value", "a label", "row order", "a row fewer", "a column name", "a dtype"],
)
def test_other_data_change_the_fingerprint(change: object) -> None:
    changed = change(_frame())  # type: ignore[operator]
    assert fingerprint.frame_digest(changed) != fingerprint.frame_digest(_frame())


def test_other_code_or_params_change_the_fingerprint(tmp_path: Path) -> None:
    data = {"examples": fingerprint.frame_digest(_frame())}
    base = fingerprint.training_fingerprint(data, _code(tmp_path), {"seed": 7})
    assert fingerprint.training_fingerprint(data, _code(tmp_path, "X = 2\n"), {"seed": 7}) != base
    assert fingerprint.training_fingerprint(data, _code(tmp_path), {"seed": 8}) != base
    assert fingerprint.training_fingerprint(data, _code(tmp_path), {"seed": "7"}) != base
    assert fingerprint.training_fingerprint(data, _code(tmp_path), {"seed": 7, "x": 1}) != base
    assert fingerprint.training_fingerprint({}, _code(tmp_path), {"seed": 7}) != base


def test_a_model_packages_code_covers_its_own_and_the_shared_training_sources() -> None:
    assert fingerprint.package_code(risk) == fingerprint.package_code(risk)
    assert fingerprint.package_code(risk) != fingerprint.package_code(portfolio)
    risk_folder = Path(risk.__file__ or "").parent
    assert fingerprint.package_code(risk) == fingerprint.source_digest(
        risk_folder, fingerprint.SHARED_TRAINING_CODE
    )
    assert fingerprint.package_code(risk) != fingerprint.source_digest(risk_folder)
