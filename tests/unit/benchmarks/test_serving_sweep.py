from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import serving_sweep
from benchmarks.batching_tuning import current_settings
from benchmarks.inprocess_floor import (
    FloorRow,
    batches,
    entry_array,
    measure_floor,
    portfolio_runner,
)
from benchmarks.serving_sweep import Plan, merged_tuning, sweep, tune, tuned_document
from exporters.cpu_batching import CpuBatching, parse_tuning
from trademaster.launchers.perf_analyzer import PerfAnalyzerError, PerfRow
from trademaster.portfolio.optimizer import solve_portfolio

PLAN = Plan(
    models=("risk-assessment-model",),
    concurrency=(1, 32),
    batch_sizes=(1, 64),
    delays_us=(0, 2000),
    instance_counts=(1, 2),
    rounds=2,
)


class FakeTriton:
    """Serves one config; records every config it is loaded with."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.loads: list[CpuBatching] = []

    def model_config(self, name: str) -> dict[str, Any]:
        return self.config

    def load_model(self, name: str, config: Mapping[str, Any] | None = None) -> None:
        assert config is not None
        self.loads.append(current_settings(config))


def row(throughput: float, p99_ms: float) -> PerfRow:
    us = p99_ms * 1e3
    return PerfRow(1, throughput, us / 2, us, us, us)


def fake_measure(triton: FakeTriton, speeds: Mapping[CpuBatching, float]) -> Any:
    def measure(model: str, concurrency: int, batch_size: int = 1, *_: object) -> PerfRow:
        return row(speeds.get(triton.loads[-1], 100.0), 2.0)

    return measure


CONFIG = {
    "name": "risk-assessment-model",
    "max_batch_size": 1024,
    "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
    "dynamic_batching": {"max_queue_delay_microseconds": 0},
}


def test_tuning_interleaves_rounds_and_leaves_the_choice_loaded() -> None:
    triton = FakeTriton(CONFIG)
    speeds = {CpuBatching(2, 0): 300.0, CpuBatching(1, None): 40.0, CpuBatching(2, None): 50.0}
    result = tune(triton, fake_measure(triton, speeds), "risk-assessment-model", PLAN)
    grid = [CpuBatching(1, 0), CpuBatching(2, 0), CpuBatching(1, 2000), CpuBatching(2, 2000)]
    assert triton.loads[: 2 * len(grid)] == grid + grid  # round 1, then round 2
    assert result.decision is not None
    assert result.decision.chosen == CpuBatching(2, 0)
    assert triton.loads[-1] == CpuBatching(2, 0)
    assert result.batching_per_s == [300.0, 300.0]
    assert result.no_batching_per_s == [50.0, 50.0]
    assert serving_sweep.gain(result) == (6.0, 6.0, 6.0)


def test_a_candidate_that_failed_a_round_is_not_compared() -> None:
    triton = FakeTriton(CONFIG)

    def measure(model: str, concurrency: int, *_: object) -> PerfRow:
        if triton.loads[-1] == CpuBatching(2, 2000):
            raise PerfAnalyzerError("not stable")
        return row(100.0, 2.0)

    result = tune(triton, measure, "risk-assessment-model", PLAN)
    assert CpuBatching(2, 2000) not in {t.candidate for t in result.trials}
    assert len(result.errors) == 2
    assert "not stable" in result.errors[0]
    assert result.decision is not None
    assert result.decision.chosen == CpuBatching(1, 0)


def test_the_sweep_skips_what_triton_would_refuse_or_the_gateway_would_time_out() -> None:
    calls: list[tuple[int, int]] = []

    def measure(model: str, concurrency: int, batch_size: int = 1, *_: object) -> PerfRow:
        calls.append((concurrency, batch_size))
        if (concurrency, batch_size) == (32, 1):
            raise PerfAnalyzerError("perf_analyzer exited with code 2\nFailed to obtain stable")
        return row(100.0, 5.0)  # 100 inferences/s: 64 rows at c=32 expect 20 s

    points = sweep(measure, "m", 32, PLAN)
    status = {(p.concurrency, p.batch_size): p.status for p in points}
    assert status[(1, 1)] == "measured"
    assert status[(32, 1)] == "perf_analyzer failed: Failed to obtain stable"
    assert status[(1, 64)] == "above max_batch_size 32"
    assert calls == [(1, 1), (32, 1)]
    wide = {(p.concurrency, p.batch_size): p.status for p in sweep(measure, "m", 64, PLAN)}
    assert wide[(1, 64)] == "measured"
    assert wide[(32, 64)] == "expected latency 20.5 s > 2 s deadline"


def test_the_tuned_file_holds_the_choices_with_their_figures_and_keeps_others(
    tmp_path: Path,
) -> None:
    triton = FakeTriton(CONFIG)
    result = tune(
        triton, fake_measure(triton, {CpuBatching(2, 0): 300.0}), "risk-assessment-model", PLAN
    )
    document = tuned_document([result], PLAN, "2026-12-04T00:00:00")
    entry = document["models"]["risk-assessment-model"]
    assert entry["instance_count"] == 2
    assert entry["max_queue_delay_us"] == 0
    assert len(entry["evidence"]["trials"]) == 4
    assert entry["evidence"]["trials"][1]["inferences_per_s_c32"] == (300.0, 300.0)
    path = tmp_path / "cpu_batching.json"
    path.write_text(
        json.dumps(
            {"models": {"sentiment-encoder": {"instance_count": 1, "max_queue_delay_us": 500}}}
        )
    )
    merged = merged_tuning(document, path)
    assert parse_tuning(json.loads(json.dumps(merged)), path) == {
        "sentiment-encoder": CpuBatching(1, 500),
        "risk-assessment-model": CpuBatching(2, 0),
    }


def test_reports_show_every_candidate_and_the_floor(tmp_path: Path) -> None:
    triton = FakeTriton(CONFIG)
    result = tune(triton, fake_measure(triton, {}), "risk-assessment-model", PLAN)
    result.sweep = sweep(lambda *a: row(1000.0, 1.0), "risk-assessment-model", 1024, PLAN)
    result.floor = [FloorRow("risk-assessment-model", 1, 50, 2000.0, 0.1, 0.2)]
    text = serving_sweep.markdown([result], PLAN, "2026-12-04T00:00:00")
    assert text.count("| risk-assessment-model | risk-assessment-model |") == 4
    assert (
        "| risk-assessment-model | 1 | 2,000 | 0.10 | 1,000 (1.0) | 1,000 (1.0) | 0.50x |" in text
    )
    serving_sweep.write_csvs([result], PLAN, tmp_path)
    with (tmp_path / "serving_sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert rows[0]["floor_inferences_per_s"] == "2000"
    with (tmp_path / "serving_tuning.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 8


def test_floor_inputs_are_perf_analyzer_entries() -> None:
    entry = {"features": [1, 2], "covariance": {"content": [1, 0, 0, 1], "shape": [2, 2]}}
    assert entry_array(entry, "features", np.float32).dtype == np.float32
    assert entry_array(entry, "covariance", np.float64).shape == (2, 2)
    groups = batches([{"i": i} for i in range(5)], 4)
    assert groups == [[{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}]]
    assert [e["i"] for e in batches([{"i": 0}, {"i": 1}], 3)[0]] == [0, 1, 0]


def record(into: list[int], size: int) -> list[np.ndarray]:
    into.append(size)
    return []


def test_the_floor_counts_inferences_of_its_calls() -> None:
    sizes: list[int] = []
    floor = measure_floor(
        "m",
        lambda batch: record(sizes, len(batch)),
        [{}] * 10,
        8,
        seconds=0.0,
        min_calls=7,
        warm_up_calls=2,
    )
    assert floor.calls == 7
    assert floor.batch_size == 8
    assert sizes == [8] * 9
    assert floor.inferences_per_s > 0
    assert floor.p99_ms >= floor.p50_ms


def test_the_portfolio_floor_solves_as_the_served_model_does() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.02, size=(60, 4))
    mu, sigma = rng.normal(0.001, 0.002, 4), np.cov(returns.T)
    config = {
        "parameters": {
            k: {"string_value": v}
            for k, v in {"default_max_weight": "0.35", "default_risk_aversion": "3"}.items()
        }
    }
    entry = {
        "expected_returns": {"content": mu.tolist(), "shape": [4]},
        "covariance": {"content": sigma.ravel().tolist(), "shape": [4, 4]},
    }
    (weights,) = portfolio_runner(config)([entry, entry])
    expected = solve_portfolio(mu, sigma, 0.35, 3.0).weights
    assert weights.shape == (2, 4)
    np.testing.assert_allclose(weights[1], expected, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -1])
def test_cpu_batching_rejects_impossible_settings(bad: int) -> None:
    with pytest.raises(ValueError, match="instance_count"):
        CpuBatching(bad, 0)
    with pytest.raises(ValueError, match="max_queue_delay_us"):
        CpuBatching(1, bad - 1)
