from __future__ import annotations

import pytest

from trademaster.settings import PipelineSettings
from trademaster.training.price_pipeline import decide, promotion_decision

GOOD = {
    "overall_rmse_z": 1.1056,
    "overall_zero_rmse_z": 1.1058,
    "overall_rmse_ratio_zero": 1.1056 / 1.1058,
    "overall_coverage": 0.903,
    "overall_directional_accuracy": 0.509,
    "final_block_rmse_z": 1.1066,
}


def _with(**changes: float) -> dict[str, float]:
    return {**GOOD, **changes}


def test_a_harmless_well_calibrated_model_without_champion_is_promoted() -> None:
    promoted, reason = promotion_decision(GOOD, None)

    assert promoted
    assert "1.1056" in reason
    assert "1.1058" in reason
    assert "90.3%" in reason
    assert "no champion yet" in reason


def test_losing_to_the_zero_return_forecast_by_more_than_one_percent_is_rejected() -> None:
    promoted, reason = promotion_decision(
        _with(overall_rmse_z=1.13, overall_rmse_ratio_zero=1.13 / 1.1058), None
    )

    assert not promoted
    assert "2.19% above the zero-return baseline's 1.1058" in reason


def test_losing_by_less_than_the_margin_is_tolerated() -> None:
    promoted, _ = promotion_decision(_with(overall_rmse_ratio_zero=1.009), None)

    assert promoted


@pytest.mark.parametrize("coverage", [0.86, 0.935])
def test_miscalibrated_intervals_are_rejected(coverage: float) -> None:
    promoted, reason = promotion_decision(_with(overall_coverage=coverage), None)

    assert not promoted
    assert f"covered {100 * coverage:.1f}%" in reason
    assert "90 +- 3%" in reason


def test_trailing_the_champion_on_the_last_blocks_is_rejected() -> None:
    promoted, reason = promotion_decision(_with(final_block_rmse_z=1.13), champion_rmse_z=1.1066)

    assert not promoted
    assert "1.1300" in reason
    assert "champion's 1.1066" in reason


def test_matching_the_champion_within_the_margin_is_promoted() -> None:
    promoted, reason = promotion_decision(GOOD, champion_rmse_z=1.1)

    assert promoted
    assert "vs champion 1.1000" in reason


def test_decide_reads_the_champions_last_block_rmse() -> None:
    settings = PipelineSettings(environment="test")

    assert decide(_with(champion_final_block_rmse_z=1.05), settings)[0] is False
    assert decide(_with(champion_final_block_rmse_z=1.1066), settings)[0] is True
    assert decide(GOOD, settings)[0] is True
