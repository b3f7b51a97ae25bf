"""The HPA replay against the controller's documented arithmetic: the proposal and its
tolerance, starting pods counted idle, the rate policies, the stabilisation windows, the
replica bounds, and the gateway's own manifest."""

from __future__ import annotations

import math

import pytest
import yaml

from benchmarks.hpa_simulation import (
    HpaSpec,
    Metric,
    Policy,
    QueueTime,
    Rules,
    hpa_spec,
    proposal,
    quantity,
    simulate,
    value_proposal,
)
from trademaster.settings import PROJECT_ROOT

CPU = Metric("cpu", target=70, at_capacity=100, window_s=1)
FAST_UP = Rules(0, (Policy("Percent", 1000, 15),))
FAST_DOWN = Rules(0, (Policy("Percent", 100, 15),))


def _spec(**fields: object) -> HpaSpec:
    values: dict[str, object] = {
        "min_replicas": 1,
        "max_replicas": 50,
        "metrics": (CPU,),
        "scale_up": FAST_UP,
        "scale_down": FAST_DOWN,
    }
    return HpaSpec(**{**values, **fields})  # type: ignore[arg-type]


def test_the_proposal_is_the_ceiling_of_replicas_times_the_ratio() -> None:
    assert proposal(current=4, ready=4, observed=90, target=70) == math.ceil(4 * 90 / 70)  # 6
    assert proposal(current=4, ready=4, observed=30, target=70) == math.ceil(4 * 30 / 70)  # 2


def test_within_the_tolerance_nothing_moves() -> None:
    assert proposal(current=10, ready=10, observed=76.9, target=70) == 10  # ratio 1.099
    assert proposal(current=10, ready=10, observed=63.1, target=70) == 10  # ratio 0.901
    assert proposal(current=10, ready=10, observed=77.1, target=70) == 12  # ratio 1.101


def test_starting_pods_count_idle_when_scaling_up() -> None:
    # 4 ready at 140% of the target, 4 more starting: 4 * 140 / 8 = 70%, no further scale-up.
    assert proposal(current=8, ready=4, observed=98, target=70) == 8
    # 4 ready at 147%: the 8 would average 73.5%, within the tolerance of 70%: no change.
    assert proposal(current=8, ready=4, observed=147, target=70) == 8
    # 4 ready at 210%: the 8 would average 105%, ratio 1.5 -> 12.
    assert proposal(current=8, ready=4, observed=210, target=70) == 12


def test_a_step_in_demand_is_answered_after_the_pods_start() -> None:
    demand = [100.0] * 60 + [800.0] * 240
    timeline = simulate(_spec(), demand, capacity_per_pod=100, start_s=30)

    # At 75 s (the first sync after the step) the HPA asks for ceil(1 * 100 / 70) = 2: the
    # pod serves at capacity, which is all the metric can show, then more as each arrives.
    assert timeline.desired[59] == 2  # 100/s on one pod: 100% > 70% * 1.1 from the start
    assert timeline.ready[60 + 30] <= timeline.desired[60 + 30]
    need = math.ceil(800 / 70)  # 12 pods keep 800/s at 70%
    assert timeline.desired[-1] == need
    assert timeline.ready[-1] == need
    assert timeline.served[-1] == 800
    assert 0 < timeline.summary(100)["seconds_short_of_capacity"] < 240


def test_rate_policies_bound_each_period() -> None:
    up = Rules(0, (Policy("Pods", 2, 60), Policy("Percent", 100, 60)), "Max")
    # A target of 1% of capacity: every proposal is far above what the policies allow.
    eager = Metric("cpu", target=1, at_capacity=100, window_s=1)
    timeline = simulate(
        _spec(scale_up=up, metrics=(eager,)), [10_000.0] * 200, capacity_per_pod=100, start_s=0
    )

    # Per 60 s at most max(start + 2, start * 2) pods: 1 -> 3 at 15 s, then no more in that
    # period; 3 -> 6 at 75 s; 6 -> 12 at 135 s; 12 -> 24 at 195 s.
    assert timeline.desired[15] == 3
    assert timeline.desired[74] == 3
    assert timeline.desired[75] == 6
    assert timeline.desired[135] == 12
    assert timeline.desired[195] == 24


def test_the_scale_down_window_keeps_the_largest_recent_proposal() -> None:
    down = Rules(300, (Policy("Percent", 100, 15),))
    demand = [700.0] * 120 + [70.0] * 600
    timeline = simulate(_spec(scale_down=down), demand, capacity_per_pod=100, start_s=0)

    high = timeline.desired[119]
    assert high == 10
    # Demand fell at 120 s; the 10-pod proposals leave the 300 s window only after 405 s.
    assert set(timeline.desired[120:405]) == {high}
    assert timeline.desired[-1] == 1


def test_replicas_stay_within_their_bounds() -> None:
    timeline = simulate(
        _spec(min_replicas=3, max_replicas=5), [0.0] * 100 + [5_000.0] * 200, 100, start_s=0
    )
    assert min(timeline.desired) == 3
    assert max(timeline.desired) == 5
    assert timeline.served[-1] == 500  # 5 pods at capacity: the rest is dropped


def test_the_gateways_manifest_is_read_as_written() -> None:
    manifest = yaml.safe_load((PROJECT_ROOT / "k8s/base/gateway/hpa.yaml").read_text())

    spec = hpa_spec(manifest, capacity={"cpu": 100}, windows_s={"cpu": 30})

    assert (spec.min_replicas, spec.max_replicas) == (2, 10)
    assert spec.metrics == (Metric("cpu", 70, 100, 30),)
    assert spec.scale_up == Rules(0, (Policy("Pods", 2, 60), Policy("Percent", 100, 60)), "Max")
    assert spec.scale_down == Rules(300, (Policy("Percent", 50, 60),), "Max")
    with pytest.raises(ValueError, match="no capacity or window"):
        hpa_spec(manifest, capacity={}, windows_s={})


def test_an_external_average_is_replayed_per_pod() -> None:
    """The production gateway's predictions/s is an External AverageValue (total / replicas)."""
    gateway = yaml.safe_load(
        (PROJECT_ROOT / "k8s/overlays/production/gateway-hpa.yaml").read_text()
    )
    gateway["spec"]["maxReplicas"] = 20
    spec = hpa_spec(
        gateway,
        capacity={"cpu": 100, "gateway_predictions_per_second": 600},
        windows_s={"cpu": 30, "gateway_predictions_per_second": 120},
    )
    assert Metric("gateway_predictions_per_second", 400, 600, 120) in spec.metrics


def test_tritons_queue_time_is_a_value_target_replayed_through_its_queue_model() -> None:
    triton = yaml.safe_load((PROJECT_ROOT / "k8s/base/triton/hpa.yaml").read_text())
    with pytest.raises(ValueError, match="Value targets of a metric given a queue model"):
        hpa_spec(triton, capacity={}, windows_s={})

    queue = QueueTime(capacity_per_s=1000, ceiling_s=2.0)
    spec = hpa_spec(
        triton,
        capacity={},
        windows_s={"triton_queue_seconds_per_request": 60},
        queues={"triton_queue_seconds_per_request": queue},
    )

    (metric,) = spec.metrics
    assert (metric.target, metric.window_s, metric.queue) == (0.005, 60, queue)
    assert (spec.min_replicas, spec.max_replicas) == (3, 20)
    assert spec.scale_down.window_s == 600


def test_quantities_read_as_kubernetes_writes_them() -> None:
    assert quantity("5m") == 0.005
    assert quantity("400") == 400
    assert quantity(70) == 70


def test_the_queue_waits_as_an_mm1_queue_up_to_its_ceiling() -> None:
    queue = QueueTime(capacity_per_s=1000, ceiling_s=2.0)
    assert queue.wait_s(0.5) == pytest.approx(0.001)  # 0.5 / (1000 * 0.5)
    assert queue.wait_s(0.9) == pytest.approx(0.009)
    assert queue.wait_s(1.0) == queue.wait_s(math.inf) == 2.0
    assert queue.wait_s(0.99999) == 2.0  # 100 s, past the ceiling
    assert queue.utilization_at(queue.wait_s(0.85)) == pytest.approx(0.85)


def test_a_value_proposal_scales_the_whole_fleet_by_the_ratio() -> None:
    assert value_proposal(current=3, observed=0.0355, target=0.005) == 22  # ceil(3 * 7.1)
    assert value_proposal(current=3, observed=0.0054, target=0.005) == 3  # within 10%
    assert value_proposal(current=10, observed=0.0002, target=0.005) == 1


def test_queue_time_drives_replicas_up_when_pods_saturate_and_down_after_the_window() -> None:
    queue = QueueTime(capacity_per_s=100, ceiling_s=2.0)
    spec = _spec(
        min_replicas=2,
        max_replicas=20,
        metrics=(Metric("queue", target=0.005, at_capacity=2.0, window_s=15, queue=queue),),
        scale_down=Rules(60, (Policy("Percent", 100, 15),)),
    )
    demand = [50.0] * 120 + [190.0] * 300 + [50.0] * 300  # 2 pods: 25%, then 95%, then 25%

    timeline = simulate(spec, demand, capacity_per_pod=100, start_s=10)

    assert timeline.desired[119] == 2  # 1.7 ms at 25%: scaled down to the floor
    assert max(timeline.desired[120:420]) > 2  # 95%: 95 ms, far above 5 ms
    # The sync at 120 s saw the window's 14 s at 25% and its first second at 95%.
    seen = (14 * queue.wait_s(0.25) + queue.wait_s(0.95)) / 15
    assert timeline.observed["queue"][125] == pytest.approx(seen)
    assert timeline.desired[-1] == 2  # back to the floor once the window has passed
