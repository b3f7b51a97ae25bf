"""Choosing a model's CPU batching settings from measurements: the candidates, the Triton config
each one is loaded with, and the decision (best throughput under a p99 budget, kept only when
it beats the current settings by more than the round-to-round spread).

Pure logic; `benchmarks/serving_sweep.py` measures and calls it.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporters.cpu_batching import CpuBatching


@dataclass(frozen=True)
class Trial:
    """Every round's measurements of one candidate: throughput at the tuning concurrency and
    p99 latency at the budget concurrency."""

    candidate: CpuBatching
    throughput_per_s: tuple[float, ...]
    p99_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.throughput_per_s or len(self.throughput_per_s) != len(self.p99_ms):
            raise ValueError("a trial needs the same number (>= 1) of throughputs and p99s")

    @property
    def mean_throughput(self) -> float:
        return statistics.fmean(self.throughput_per_s)

    @property
    def worst_p99_ms(self) -> float:
        return max(self.p99_ms)

    def beats(self, other: Trial) -> bool:
        """Faster in every round than ``other`` in any: the gap is larger than the spread."""
        return min(self.throughput_per_s) > max(other.throughput_per_s)


@dataclass(frozen=True)
class Decision:
    chosen: CpuBatching
    budget_met: bool
    reason: str


def decide(trials: Sequence[Trial], current: CpuBatching, budget_ms: float) -> Decision:
    """The settings to write: the fastest candidate whose worst p99 is within ``budget_ms``,
    if it beats ``current`` by more than the spread between rounds; otherwise ``current``
    (when it meets the budget). With no candidate within budget: the lowest-p99 one."""
    if not trials:
        raise ValueError("no trials to decide from")
    by_candidate = {trial.candidate: trial for trial in trials}
    if current not in by_candidate:
        raise ValueError(f"the current settings {current.label} were not measured")
    within = [trial for trial in trials if trial.worst_p99_ms <= budget_ms]
    if not within:
        lowest = min(trials, key=lambda trial: trial.worst_p99_ms)
        return Decision(
            lowest.candidate,
            False,
            f"no candidate within the {budget_ms:g} ms p99 budget; lowest p99 "
            f"{lowest.worst_p99_ms:.2f} ms ({lowest.candidate.label})",
        )
    best = max(within, key=lambda trial: trial.mean_throughput)
    baseline = by_candidate[current]
    if best.candidate == current:
        return Decision(current, True, "the current settings are the fastest within budget")
    if baseline.worst_p99_ms > budget_ms:
        return Decision(
            best.candidate,
            True,
            f"the current settings miss the budget (p99 {baseline.worst_p99_ms:.2f} ms)",
        )
    gain = best.mean_throughput / baseline.mean_throughput
    if best.beats(baseline):
        return Decision(
            best.candidate,
            True,
            f"{gain:.2f}x the current settings' throughput, beyond the spread between rounds",
        )
    return Decision(
        current,
        True,
        f"the fastest ({best.candidate.label}, {gain:.2f}x) is within the spread between "
        "rounds of the current settings: kept",
    )


def candidates(
    current: CpuBatching, delays_us: Iterable[int], instance_counts: Iterable[int]
) -> list[CpuBatching]:
    """The grid, and ``current`` first. A model without a dynamic batcher varies only its
    instance count."""
    counts = list(instance_counts)
    if current.max_queue_delay_us is None:
        grid = [CpuBatching(count, None) for count in counts]
    else:
        grid = [CpuBatching(count, delay) for delay in delays_us for count in counts]
    return [current, *(candidate for candidate in grid if candidate != current)]


def current_settings(config: Mapping[str, Any]) -> CpuBatching:
    """The batching settings in a Triton model config (JSON, as `/v2/models/<m>/config`)."""
    groups = config.get("instance_group") or [{"count": 1}]
    count = int(groups[0].get("count", 1))
    batching = config.get("dynamic_batching")
    if batching is None:
        return CpuBatching(count, None)
    return CpuBatching(count, int(batching.get("max_queue_delay_microseconds", 0)))


def with_settings(config: Mapping[str, Any], settings: CpuBatching) -> dict[str, Any]:
    """``config`` changed to ``settings``: the override a model is loaded with."""
    changed = copy.deepcopy(dict(config))
    groups = changed.get("instance_group") or [{"kind": "KIND_CPU"}]
    groups[0]["count"] = settings.instance_count
    changed["instance_group"] = groups[:1]
    if settings.max_queue_delay_us is None:
        changed.pop("dynamic_batching", None)
    else:
        batching = dict(changed.get("dynamic_batching") or {})
        batching["max_queue_delay_microseconds"] = settings.max_queue_delay_us
        changed["dynamic_batching"] = batching
    return changed


def without_batching(settings: CpuBatching) -> CpuBatching:
    """The same instances with no dynamic batcher: requests run one by one per instance."""
    return CpuBatching(settings.instance_count, None)
