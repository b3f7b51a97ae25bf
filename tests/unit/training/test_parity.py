from __future__ import annotations

import pytest

from trademaster.settings import PipelineSettings
from trademaster.training.parity import PARITY_TOLERANCE, ExportParityError, require_parity


def test_the_default_tolerance_is_the_settings_default() -> None:
    assert PipelineSettings(_env_file=None).parity_tolerance == PARITY_TOLERANCE  # type: ignore[call-arg]


def test_a_difference_at_or_above_the_tolerance_is_refused_naming_it() -> None:
    require_parity({"onnx_parity_max_abs_diff": 3e-7}, "risk v1")
    with pytest.raises(
        ExportParityError,
        match=r"export parity failed \(risk v1\): onnx_parity_max_abs_diff = 3e-07 "
        r"\(tolerance 1e-12\)",
    ):
        require_parity({"onnx_parity_max_abs_diff": 3e-7, "other": 0.0}, "risk v1", 1e-12)
    with pytest.raises(ExportParityError):
        require_parity({"a": PARITY_TOLERANCE}, "exactly at the tolerance")
