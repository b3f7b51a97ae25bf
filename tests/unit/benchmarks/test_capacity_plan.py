"""The capacity plan's arithmetic and inputs: pods at the target share of capacity, the
ramp's shape, the measured rows it reads, the production HPA it replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import capacity_plan
from benchmarks.capacity_plan import (
    DESIGN_SECONDS_PER_REQUEST,
    PLATEAU_END_S,
    STORY_PREDICTIONS_PER_MIN,
    STORY_USERS,
    market_open_ramp,
    measured,
    pods_for,
    production_hpa,
    spec_for,
    triton_measured,
    triton_spec_for,
)


def test_pods_keep_each_at_the_target_share_of_its_capacity() -> None:
    assert pods_for(700, per_pod=100) == 10  # 700 / (100 * 0.7)
    assert pods_for(701, per_pod=100) == 11
    assert pods_for(10, per_pod=100, floor=3) == 3


def test_the_ramp_climbs_from_the_storys_rate_to_the_design_point() -> None:
    ramp = market_open_ramp()
    assert ramp[0] == pytest.approx(STORY_PREDICTIONS_PER_MIN / 60)
    assert ramp[PLATEAU_END_S] == pytest.approx(STORY_USERS / DESIGN_SECONDS_PER_REQUEST)
    assert ramp[-1] == pytest.approx(ramp[PLATEAU_END_S] / 3)
    assert max(ramp) == ramp[PLATEAU_END_S]


def test_per_pod_throughput_is_the_benchmarks_per_worker(tmp_path: Path) -> None:
    rows = [
        {"path": "gateway_miss", "concurrency": 8, "requests_per_s": 1200.0},
        {"path": "triton_direct", "concurrency": 8, "requests_per_s": 7000.0},
    ]
    path = tmp_path / "load.json"
    path.write_text(
        json.dumps(
            {
                "measured_at": "2026-12-01T00:00",
                "machine": "m",
                "gateway_workers": 2,
                "results": rows,
            }
        )
    )
    found = measured(path)
    assert (found.gateway_per_pod, found.triton_per_replica) == (600.0, 7000.0)
    path.write_text(json.dumps({**json.loads(path.read_text()), "results": rows[:1]}))
    with pytest.raises(SystemExit, match="gateway_load"):
        measured(path)


def test_the_production_hpa_is_replayed_with_both_metrics() -> None:
    spec = spec_for(production_hpa(), per_pod=600)
    assert (spec.min_replicas, spec.max_replicas) == (3, 20)
    assert {m.name: m.target for m in spec.metrics} == {
        "cpu": 70,
        "gateway_predictions_per_second": 400,
    }


def test_a_replica_serving_every_model_alike_costs_each_its_share(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    rows = [{"model": "a", "triton_c8_per_s": 1000.0}, {"model": "b", "triton_c8_per_s": 250.0}]
    path.write_text(json.dumps({"measured_at": "2026-12-01T00:00", "results": rows}))

    found = triton_measured(path)

    # Half the requests at 1 ms, half at 4 ms: 2.5 ms each on average, 400 a second.
    assert found.mixed_per_replica == pytest.approx(400.0)
    path.write_text(json.dumps({"measured_at": "x", "results": [{"model": "a"}]}))
    with pytest.raises(SystemExit, match=r"benchmarks\.models"):
        triton_measured(path)


def test_the_production_triton_hpa_is_replayed_on_queue_time() -> None:
    spec = triton_spec_for(production_hpa("triton"), per_replica=1000)
    (metric,) = spec.metrics
    assert (spec.min_replicas, spec.max_replicas) == (3, 20)
    assert metric.name == "triton_queue_seconds_per_request"
    assert metric.target == 0.005
    assert metric.queue is not None
    assert metric.queue.capacity_per_s == 1000


def test_the_plan_writes_its_page_and_plots(tmp_path: Path) -> None:
    capacity_plan.main(["--out", str(tmp_path)])
    text = (tmp_path / "CAPACITY_PLAN.md").read_text()
    assert "| 100K concurrent users, one request each per 30 s | 3,333 |" in text
    assert "## The Triton HPA on the same ramp (simulated)" in text
    assert (tmp_path / "capacity_plan.png").stat().st_size > 10_000
    assert (tmp_path / "capacity_plan_triton.png").stat().st_size > 10_000
