from __future__ import annotations

import numpy as np
import pytest

from trademaster.price_lstm.evaluation import SeriesForecasts
from trademaster.price_lstm.pipeline import (
    BOOTSTRAP_BLOCK,
    COVERAGE_TOLERANCE,
    GATE_RULES,
    decide,
    pooled_with_blocks,
)
from trademaster.settings import PipelineSettings
from trademaster.training import gates

SETTINGS = PipelineSettings(environment="test")
# RMSE relative to the zero-return forecast, in favour of the model: a harmless model.
HARMLESS = {"vs_zero_rmse": (0.0001, -0.004, 0.004)}


def _metrics(coverage: float = 0.903, **intervals: tuple[float, float, float]) -> dict[str, float]:
    values = {**HARMLESS, **intervals}
    recorded = gates.record(GATE_RULES, {k: gates.Interval(*v) for k, v in values.items()})
    return {**recorded, "overall_coverage": coverage}


def test_a_harmless_well_calibrated_model_without_champion_is_promoted() -> None:
    promoted, reason = decide(_metrics(), SETTINGS)

    assert promoted, reason
    assert "RMSE vs the zero-return forecast (relative): +0.0001 [-0.0040, +0.0040]" in reason
    assert "90.3%" in reason
    assert "no champion yet" in reason


def test_possibly_losing_more_than_one_percent_to_zero_returns_is_rejected() -> None:
    promoted, reason = decide(_metrics(vs_zero_rmse=(-0.005, -0.011, 0.001)), SETTINGS)

    assert not promoted
    assert reason.startswith("RMSE vs the zero-return forecast")
    assert "may trail by at most 0.0100" in reason


@pytest.mark.parametrize("coverage", [0.86, 0.935])
def test_miscalibrated_intervals_are_rejected(coverage: float) -> None:
    promoted, reason = decide(_metrics(coverage=coverage), SETTINGS)

    assert not promoted
    assert reason.startswith(f"90% interval covered {100 * coverage:.1f}%")
    assert f"90 +- {100 * COVERAGE_TOLERANCE:.0f}%" in reason


@pytest.mark.parametrize(("low", "promoted"), [(-0.012, False), (-0.008, True)])
def test_the_champion_comparison_on_the_last_blocks_is_judged_on_its_interval(
    low: float, promoted: bool
) -> None:
    decision, reason = decide(_metrics(vs_champion_rmse=(0.0, low, 0.01)), SETTINGS)

    assert decision is promoted
    assert "RMSE on the last test blocks vs the champion" in reason


def test_rows_are_resampled_in_blocks_of_consecutive_returns_per_series() -> None:
    def series(n: int, symbol: str) -> SeriesForecasts:
        return SeriesForecasts(symbol, np.zeros(n), np.zeros((n, 3)), np.zeros(n), np.ones(n))

    pooled, groups = pooled_with_blocks([series(45, "A"), series(10, "B")])

    assert len(pooled.actual) == len(groups) == 55
    # A: 20 + 20 + 5 rows; B: one block of 10; no block spans two series.
    assert np.unique(groups[:45], return_counts=True)[1].tolist() == [BOOTSTRAP_BLOCK] * 2 + [5]
    assert len(set(groups[45:])) == 1
    assert not set(groups[:45]) & set(groups[45:])
