from __future__ import annotations

import pytest

from benchmarks.batching_tuning import (
    Trial,
    candidates,
    current_settings,
    decide,
    with_settings,
    without_batching,
)
from exporters.cpu_batching import CpuBatching

CURRENT = CpuBatching(1, 0)
FASTER = CpuBatching(2, 0)
DELAYED = CpuBatching(1, 2000)


def trial(candidate: CpuBatching, throughputs: tuple[float, ...], p99s: tuple[float, ...]) -> Trial:
    return Trial(candidate, throughputs, p99s)


def test_a_faster_candidate_beyond_the_spread_is_chosen() -> None:
    decision = decide(
        [trial(CURRENT, (100, 110), (2, 2)), trial(FASTER, (150, 160), (3, 3))], CURRENT, 10
    )
    assert decision.chosen == FASTER
    assert decision.budget_met
    assert "1.48x" in decision.reason


def test_a_faster_candidate_within_the_spread_keeps_the_current_settings() -> None:
    decision = decide(
        [trial(CURRENT, (100, 140), (2, 2)), trial(FASTER, (130, 150), (3, 3))], CURRENT, 10
    )
    assert decision.chosen == CURRENT
    assert "within the spread" in decision.reason


def test_a_candidate_over_budget_in_any_round_is_not_chosen() -> None:
    decision = decide(
        [trial(CURRENT, (100, 100), (2, 2)), trial(FASTER, (500, 500), (3, 11))], CURRENT, 10
    )
    assert decision.chosen == CURRENT


def test_current_settings_over_budget_give_way_to_the_fastest_within() -> None:
    decision = decide(
        [
            trial(CURRENT, (300, 300), (12, 12)),
            trial(FASTER, (100, 101), (5, 5)),
            trial(DELAYED, (120, 121), (6, 6)),
        ],
        CURRENT,
        10,
    )
    assert decision.chosen == DELAYED
    assert decision.budget_met


def test_with_no_candidate_within_budget_the_lowest_p99_is_chosen_and_flagged() -> None:
    decision = decide([trial(CURRENT, (100,), (30,)), trial(FASTER, (200,), (20,))], CURRENT, 10)
    assert decision.chosen == FASTER
    assert not decision.budget_met
    assert "no candidate" in decision.reason


def test_the_current_settings_must_have_been_measured() -> None:
    with pytest.raises(ValueError, match="not measured"):
        decide([trial(FASTER, (1,), (1,))], CURRENT, 10)
    with pytest.raises(ValueError, match="same number"):
        Trial(CURRENT, (1, 2), (1,))


def test_candidates_put_the_current_settings_first_once() -> None:
    grid = candidates(CpuBatching(1, 500), (0, 500, 2000), (1, 2))
    assert grid[0] == CpuBatching(1, 500)
    assert len(grid) == len(set(grid)) == 6
    outside = candidates(CpuBatching(3, 100), (0,), (1,))
    assert outside == [CpuBatching(3, 100), CpuBatching(1, 0)]


def test_a_model_without_a_batcher_varies_only_its_instances() -> None:
    assert candidates(CpuBatching(2, None), (0, 500), (1, 2)) == [
        CpuBatching(2, None),
        CpuBatching(1, None),
    ]


CONFIG = {
    "name": "risk",
    "max_batch_size": 1024,
    "instance_group": [{"name": "risk", "kind": "KIND_CPU", "count": 1}],
    "dynamic_batching": {"preferred_batch_size": [8], "max_queue_delay_microseconds": "500"},
}


def test_settings_are_read_from_a_served_config() -> None:
    assert current_settings(CONFIG) == CpuBatching(1, 500)
    assert current_settings({"instance_group": [{"count": 2}]}) == CpuBatching(2, None)


def test_overrides_change_only_instances_and_batcher_and_leave_the_config_alone() -> None:
    changed = with_settings(CONFIG, CpuBatching(2, 0))
    assert changed["instance_group"][0] == {"name": "risk", "kind": "KIND_CPU", "count": 2}
    assert changed["dynamic_batching"] == {
        "preferred_batch_size": [8],
        "max_queue_delay_microseconds": 0,
    }
    assert CONFIG["instance_group"][0]["count"] == 1  # type: ignore[index]
    unbatched = with_settings(CONFIG, without_batching(CpuBatching(2, 0)))
    assert "dynamic_batching" not in unbatched
    assert current_settings(unbatched) == CpuBatching(2, None)
