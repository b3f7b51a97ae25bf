"""The Kubernetes HorizontalPodAutoscaler's algorithm (autoscaling/v2), replayed on a demand
curve: how many pods it asks for and how many are ready to serve, second by second.

What is modelled, after the controller's documented behaviour
(kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale):

- every ``sync_s`` (15 s) each metric proposes ``ceil(current * observed / target)``, left
  at ``current`` when ``observed / target`` is within the tolerance (0.1) of 1; several
  metrics: the largest proposal. Pods that are not ready yet count as idle (0 usage) when
  scaling up, as the controller treats pods without metrics, so a ramp is not over-answered;
- the metric is what the pods served, averaged over the metric's window (CPU through the
  metrics server: about 30 s; a Prometheus ``rate(...[2m])`` through prometheus-adapter:
  2 minutes), so it lags the demand and never exceeds what ready pods can do (a saturated pod
  shows 100%, not the demand it drops);
- a queue-time metric (Triton's seconds per request in its queues, an External metric with a
  ``Value`` target: the fleet's figure, not a per-pod average) follows the load offered to
  each ready pod through an M/M/1 queue (``QueueTime``): waits grow as ``u / (mu (1 - u))``
  with the pods' utilisation ``u`` and reach a ceiling (the callers' timeout) at saturation.
  Its proposal is ``ceil(current * observed / target)`` with no idle-pod correction, as the
  controller computes it for External Value metrics;
- stabilisation: a scale-down takes the largest proposal of the last
  ``scaleDown.stabilizationWindowSeconds``, a scale-up the smallest of its window;
- rate policies: per ``periodSeconds``, ``Pods`` adds or removes at most ``value`` pods and
  ``Percent`` at most ``value``% of the replicas at the start of the period;
  ``selectPolicy: Max`` (the default) takes the policy allowing the most change;
- min and max replicas; a new pod serves ``start_s`` after the HPA asked for it
  (scheduling, image, start-up, readiness); a removed pod stops serving at once.

Not modelled: node autoscaling (a node is assumed free), pod failures, the per-pod spread of
load (the pods share it evenly).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TOLERANCE = 0.1  # kube-controller-manager --horizontal-pod-autoscaler-tolerance
SYNC_S = 15  # --horizontal-pod-autoscaler-sync-period
# The controller's defaults where a manifest's behavior leaves them out.
DEFAULT_SCALE_DOWN_WINDOW_S = 300


@dataclass(frozen=True)
class Policy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    """One direction's ``behavior`` (scaleUp or scaleDown)."""

    window_s: int
    policies: tuple[Policy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"


@dataclass(frozen=True)
class QueueTime:
    """Mean seconds a request waits in a pod's queue, as an M/M/1 queue of a pod serving
    ``capacity_per_s`` requests a second at most; a saturated pod shows ``ceiling_s`` (the
    callers give up after that long)."""

    capacity_per_s: float
    ceiling_s: float

    def wait_s(self, offered: float) -> float:
        """The wait at ``offered`` load per pod, as a share of its capacity."""
        if offered >= 1.0:
            return self.ceiling_s
        return min(self.ceiling_s, offered / (self.capacity_per_s * (1.0 - offered)))

    def utilization_at(self, wait_s: float) -> float:
        """The utilisation at which the wait is ``wait_s`` (the inverse of ``wait_s``)."""
        scaled = wait_s * self.capacity_per_s
        return scaled / (1.0 + scaled)


@dataclass(frozen=True)
class Metric:
    """One metric of the HPA, in units of a pod's capacity: a pod serving at capacity shows
    ``at_capacity`` (CPU utilisation: 100 (%) of its request; predictions/s: the rate). With
    ``queue``, the metric is the fleet's queue time (a ``Value`` target) instead."""

    name: str
    target: float  # averageUtilization, averageValue or (with queue) value
    at_capacity: float
    window_s: int  # what the metric averages over (its lag)
    queue: QueueTime | None = None

    def observe(self, utilization: Sequence[float], offered: Sequence[float]) -> float:
        """The metric over its window, from per-second utilisation and offered load per pod."""
        if self.queue is not None:
            recent = offered[-self.window_s :]
            return sum(self.queue.wait_s(load) for load in recent) / len(recent)
        recent = utilization[-self.window_s :]
        return sum(recent) / len(recent) * self.at_capacity


@dataclass(frozen=True)
class HpaSpec:
    min_replicas: int
    max_replicas: int
    metrics: tuple[Metric, ...]
    scale_up: Rules
    scale_down: Rules


def _rules(raw: Mapping[str, Any] | None, default_window_s: int, default: Rules) -> Rules:
    if not raw:
        return default
    policies = tuple(
        Policy(policy["type"], int(policy["value"]), int(policy["periodSeconds"]))
        for policy in raw.get("policies", [])
    )
    return Rules(
        int(raw.get("stabilizationWindowSeconds", default_window_s)),
        policies or default.policies,
        raw.get("selectPolicy", "Max"),
    )


# The controller's default behaviour (scale up: 4 pods or 100% per 15 s; down: 100% per 15 s).
DEFAULT_SCALE_UP = Rules(0, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)))
DEFAULT_SCALE_DOWN = Rules(DEFAULT_SCALE_DOWN_WINDOW_S, (Policy("Percent", 100, 15),))


def hpa_spec(
    manifest: Mapping[str, Any],
    capacity: Mapping[str, float],
    windows_s: Mapping[str, int],
    queues: Mapping[str, QueueTime] | None = None,
) -> HpaSpec:
    """An ``autoscaling/v2`` HPA document as an ``HpaSpec``. ``capacity[name]``: what one pod
    at capacity shows for the metric ``name`` ("cpu" for the Resource metric); ``windows_s``:
    how long each metric averages over; ``queues[name]``: the queue model of a queue-time
    metric with a ``Value`` target (the only Value targets replayed)."""
    spec = manifest["spec"]
    metrics = []
    for entry in spec["metrics"]:
        queue = None
        if entry["type"] == "Resource":
            name, target = entry["resource"]["name"], entry["resource"]["target"]
            value = float(target["averageUtilization"])
        elif entry["type"] in ("Pods", "External") and _averaged(entry):
            # An External AverageValue proposes ceil(total / target): what a Pods metric
            # proposes when pods not ready count as idle (only ready pods serve).
            source = entry[entry["type"].lower()]
            name, value = source["metric"]["name"], quantity(source["target"]["averageValue"])
        elif entry["type"] == "External" and entry["external"]["metric"]["name"] in (queues or {}):
            name = entry["external"]["metric"]["name"]
            value, queue = quantity(entry["external"]["target"]["value"]), (queues or {})[name]
        else:
            raise ValueError(
                f"metric {entry!r} is not simulated (average targets are, and Value targets of "
                "a metric given a queue model)"
            )
        if queue is not None:
            metrics.append(Metric(name, value, queue.ceiling_s, int(windows_s[name]), queue))
            continue
        if name not in capacity or name not in windows_s:
            raise ValueError(f"no capacity or window given for the HPA's metric {name!r}")
        metrics.append(Metric(name, value, float(capacity[name]), int(windows_s[name])))
    behavior = spec.get("behavior", {})
    return HpaSpec(
        int(spec.get("minReplicas", 1)),
        int(spec["maxReplicas"]),
        tuple(metrics),
        _rules(behavior.get("scaleUp"), 0, DEFAULT_SCALE_UP),
        _rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN_WINDOW_S, DEFAULT_SCALE_DOWN),
    )


def quantity(value: object) -> float:
    """A Kubernetes quantity as a number: ``5m`` is 0.005, ``400`` is 400."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _averaged(entry: Mapping[str, Any]) -> bool:
    source = entry[str(entry["type"]).lower()]
    return bool(source["target"].get("type", "AverageValue") == "AverageValue")


def proposal(current: int, ready: int, observed: float, target: float) -> int:
    """One metric's replica count: ``observed`` is the mean over the ``ready`` pods; the
    not-ready ones (``current - ready``) count as idle when that would scale up."""
    if ready == 0:
        return current
    ratio = observed / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    if ratio > 1.0 and current > ready:
        # Recomputed with the starting pods at 0 usage; no scale-up if that flips the sign.
        ratio = observed * ready / current / target
        if ratio <= 1.0 + TOLERANCE:
            return current
    # The controller works in milli-units: 10 pods at 7% of a 70% target are 1 pod, not
    # the 2 that float rounding (1.0000000000000002) would give.
    return _ceil(ready * ratio) if ratio < 1.0 else _ceil(current * ratio)


def value_proposal(current: int, observed: float, target: float) -> int:
    """An External ``Value`` metric's replica count: ``ceil(current * observed / target)``
    outside the tolerance; the fleet's figure, so no pod counts as idle."""
    ratio = observed / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return _ceil(current * ratio)


def _ceil(value: float) -> int:
    return math.ceil(round(value, 6))


def _limit(
    rules: Rules, history: Sequence[tuple[float, int]], now: float, current: int, sign: int
) -> int:
    """The farthest the policies let replicas move from ``current`` (``sign`` +1: up, -1:
    down), as a replica count, given the changes made within each policy's period."""
    allowed = []
    for policy in rules.policies:
        start = current - sum(delta for at, delta in history if now - at < policy.period_s)
        if policy.kind == "Pods":
            allowed.append(start + sign * policy.value)
        elif sign > 0:
            allowed.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            allowed.append(math.floor(start * (1 - policy.value / 100)))
    # Max: the policy that allows the most change (the most replicas up, the fewest down).
    most = max if (rules.select == "Max") == (sign > 0) else min
    return most(allowed)


@dataclass
class Timeline:
    """Per second: the demand, the replicas the HPA set, the ready ones, what they served,
    and each metric as the HPA last saw it (from its first sync)."""

    demand: list[float] = field(default_factory=list)
    desired: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    served: list[float] = field(default_factory=list)
    observed: dict[str, list[float]] = field(default_factory=dict)

    def summary(self, capacity_per_pod: float) -> dict[str, float]:
        unmet = [d - s for d, s in zip(self.demand, self.served, strict=True)]
        return {
            "seconds": len(self.demand),
            "peak_demand_per_s": max(self.demand),
            "max_replicas": max(self.desired),
            "seconds_short_of_capacity": sum(1 for u in unmet if u > 1e-9),
            "unserved_share": sum(unmet) / max(sum(self.demand), 1e-9),
            "worst_shortfall_per_s": max(unmet),
            "pod_seconds": float(sum(self.ready)),
            "mean_utilization": sum(self.served)
            / max(sum(r * capacity_per_pod for r in self.ready), 1e-9),
        }


def simulate(
    spec: HpaSpec,
    demand: Sequence[float],
    capacity_per_pod: float,
    start_s: int,
    initial_replicas: int | None = None,
    sync_s: int = SYNC_S,
) -> Timeline:
    """Replays ``demand`` (requests/s, one value a second) through the HPA ``spec``; a pod
    serves at most ``capacity_per_pod`` and becomes ready ``start_s`` after it is asked for."""
    replicas = max(spec.min_replicas, initial_replicas or spec.min_replicas)
    ready_at: list[float] = [-math.inf] * replicas  # one entry per pod, oldest first
    longest = max(m.window_s for m in spec.metrics)
    served_per_pod: deque[float] = deque(maxlen=longest)
    offered_per_pod: deque[float] = deque(maxlen=longest)
    last_seen = {metric.name: 0.0 for metric in spec.metrics}
    recommendations: deque[tuple[float, int]] = deque()
    changes: deque[tuple[float, int]] = deque()
    horizon = max(p.period_s for p in (*spec.scale_up.policies, *spec.scale_down.policies))
    keep = max(spec.scale_down.window_s, spec.scale_up.window_s)
    timeline = Timeline()
    for second, wanted in enumerate(demand):
        now = float(second)
        ready = sum(1 for at in ready_at if at <= now)
        served = min(wanted, ready * capacity_per_pod)
        served_per_pod.append(served / ready / capacity_per_pod if ready else 0.0)
        offered_per_pod.append(wanted / ready / capacity_per_pod if ready else math.inf)
        if second % sync_s == 0 and second > 0:
            proposals = []
            for metric in spec.metrics:
                observed = metric.observe(list(served_per_pod), list(offered_per_pod))
                last_seen[metric.name] = observed
                proposals.append(
                    value_proposal(replicas, observed, metric.target)
                    if metric.queue is not None
                    else proposal(replicas, ready, observed, metric.target)
                )
            wanted_replicas = max(proposals)
            recommendations.append((now, wanted_replicas))
            while recommendations and now - recommendations[0][0] > keep:
                recommendations.popleft()
            target = _stabilized(spec, recommendations, now, replicas, wanted_replicas)
            while changes and now - changes[0][0] >= horizon:
                changes.popleft()
            if target > replicas:
                target = min(target, _limit(spec.scale_up, changes, now, replicas, +1))
            elif target < replicas:
                target = max(target, _limit(spec.scale_down, changes, now, replicas, -1))
            target = min(max(target, spec.min_replicas), spec.max_replicas)
            if target != replicas:
                changes.append((now, target - replicas))
                if target > replicas:
                    ready_at.extend([now + start_s] * (target - replicas))
                else:
                    # The controller removes the newest pods first (unready ones included).
                    ready_at = sorted(ready_at)[:target]
                replicas = target
        timeline.demand.append(float(wanted))
        timeline.desired.append(replicas)
        timeline.ready.append(ready)
        timeline.served.append(served)
        for name, value in last_seen.items():
            timeline.observed.setdefault(name, []).append(value)
    return timeline


def _stabilized(
    spec: HpaSpec,
    recommendations: Sequence[tuple[float, int]],
    now: float,
    current: int,
    wanted: int,
) -> int:
    """As the controller's ``stabilizeRecommendationWithBehaviors``: the replicas rise to the
    smallest proposal of the scale-up window and fall to the largest of the scale-down
    window, so they move only as far as every proposal in the window agrees."""
    up = min([wanted, *(r for at, r in recommendations if now - at <= spec.scale_up.window_s)])
    down = max([wanted, *(r for at, r in recommendations if now - at <= spec.scale_down.window_s)])
    return min(max(current, up), down)
