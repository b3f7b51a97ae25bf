"""Capacity plan: pods for the story's load from measured per-pod throughput, and the
production HPA replayed on a market-open ramp (``benchmarks.hpa_simulation``).

    python -m benchmarks.capacity_plan            # docs/CAPACITY_PLAN.md and its plot

Inputs, nothing typed in twice: per-pod throughput from the load benchmark's last results
(``benchmarks/results/gateway_load.json``: cache misses, the costly path, per uvicorn worker,
since a pod runs one), Triton's per-replica throughput per model from the per-model benchmark
(``benchmarks/results/models.json``), and the gateway's and Triton's HPAs as the production
overlay renders them (``kubectl kustomize k8s/overlays/production``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.hpa_simulation import HpaSpec, QueueTime, Timeline, hpa_spec, simulate
from benchmarks.report import RESULTS
from trademaster.launchers.tools import kubectl
from trademaster.settings import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
PRODUCTION = PROJECT_ROOT / "k8s" / "overlays" / "production"
LOAD_RESULTS = RESULTS / "gateway_load.json"
CONCURRENCY = 8  # the benchmark's row used: several requests in flight per worker

# The story: 10K predictions per minute, 100K concurrent users.
STORY_PREDICTIONS_PER_MIN = 10_000
STORY_USERS = 100_000
# Seconds between two predictions of one active user: a glance (60 s), an active session
# (30 s: the plan's design point) and a burst such as the market open (10 s).
SECONDS_PER_REQUEST = (60, 30, 10)
DESIGN_SECONDS_PER_REQUEST = 30
TARGET_UTILIZATION = 0.70  # the HPA's CPU target: the share of a pod's capacity used
TRITON_MIN_REPLICAS = 3  # the story's floor for model serving
# What the HPA sees: CPU through the metrics server (about 30 s), predictions/s through
# prometheus-adapter's rate over 2 minutes, Triton's queue time per request through the
# 1-minute recording rule (monitoring/rules/triton.yml).
METRIC_WINDOWS_S = {
    "cpu": 30,
    "gateway_predictions_per_second": 120,
    "triton_queue_seconds_per_request": 60,
}
MODELS_RESULTS = RESULTS / "models.json"
QUEUE_METRIC = "triton_queue_seconds_per_request"
# Assumed, not measured here (no cluster): scheduling on a node with the image cached plus
# the gateway's start-up until its readiness probe passes. Its imports alone (Feast, torch)
# took 15 s on this 2-core machine (`python -c "import gateway.app"`). Measure the whole in
# the cluster with kube_pod_status_ready and pass --pod-start-s.
POD_START_S = 45
# Assumed likewise for a Triton pod: a GPU node with the image cached, then loading the five
# models until the serving agent's readiness passes (about 20 s for the CPU configs here).
TRITON_POD_START_S = 90


@dataclass(frozen=True)
class Measured:
    gateway_per_pod: float  # cache-miss requests/s of one uvicorn worker
    triton_per_replica: float  # inferences/s of one Triton (CPU), tabular model
    measured_at: str
    machine: str


@dataclass(frozen=True)
class TritonMeasured:
    """Inferences/s of one Triton replica per model (CPU, concurrency 8)."""

    per_model: dict[str, float]
    measured_at: str

    @property
    def mixed_per_replica(self) -> float:
        """Requests/s of one replica when requests spread evenly over the models: each costs
        its model's ``1 / throughput`` seconds of the replica."""
        cost = sum(1 / rate for rate in self.per_model.values()) / len(self.per_model)
        return 1 / cost


def triton_measured(path: Path = MODELS_RESULTS) -> TritonMeasured:
    payload = json.loads(path.read_text())
    rates = {
        str(row["model"]): float(row["triton_c8_per_s"])
        for row in payload["results"]
        if row.get("triton_c8_per_s")
    }
    if not rates:
        raise SystemExit(f"{path} has no Triton throughput: run `python -m benchmarks.models`")
    return TritonMeasured(rates, str(payload["measured_at"]))


def measured(path: Path = LOAD_RESULTS) -> Measured:
    payload = json.loads(path.read_text())
    rows = {(r["path"], r["concurrency"]): r for r in payload["results"]}
    try:
        miss = rows[("gateway_miss", CONCURRENCY)]["requests_per_s"]
        triton = rows[("triton_direct", CONCURRENCY)]["requests_per_s"]
    except KeyError as exc:
        raise SystemExit(
            f"{path} has no {exc.args[0]} row: run `python -m benchmarks.gateway_load` first"
        ) from exc
    return Measured(
        float(miss) / int(payload["gateway_workers"]),
        float(triton),
        str(payload["measured_at"]),
        str(payload["machine"]),
    )


def production_hpa(name: str = "gateway") -> dict[str, Any]:
    """The HPA ``name`` as the production overlay renders it."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(PRODUCTION)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl kustomize {PRODUCTION} failed:\n{result.stderr}")
    for doc in yaml.safe_load_all(result.stdout):
        if doc and doc["kind"] == "HorizontalPodAutoscaler" and doc["metadata"]["name"] == name:
            return dict(doc)
    raise SystemExit(f"the production overlay renders no HorizontalPodAutoscaler {name}")


def pods_for(rate_per_s: float, per_pod: float, floor: int = 1) -> int:
    """Pods serving ``rate_per_s`` with each at the target share of its capacity."""
    return max(floor, math.ceil(rate_per_s / (per_pod * TARGET_UTILIZATION)))


def market_open_ramp() -> list[float]:
    """Requests/s a second for 50 minutes: the story's 10K predictions/min overnight, a
    5-minute climb to the design point (every user each 30 s) at the open, 20 minutes
    there, a 10-minute ease to a third of it, 10 minutes more."""
    night = STORY_PREDICTIONS_PER_MIN / 60
    peak = STORY_USERS / DESIGN_SECONDS_PER_REQUEST
    day = peak / 3
    curve = [night] * 300
    curve += [night + (peak - night) * s / 300 for s in range(300)]
    curve += [peak] * 1200
    curve += [peak + (day - peak) * s / 600 for s in range(600)]
    curve += [day] * 600
    return curve


# The last second of the plateau at the design point (``market_open_ramp``).
PLATEAU_END_S = 300 + 300 + 1200 - 1


def spec_for(manifest: dict[str, Any], per_pod: float) -> HpaSpec:
    return hpa_spec(
        manifest,
        capacity={"cpu": 100.0, "gateway_predictions_per_second": per_pod},
        windows_s=METRIC_WINDOWS_S,
    )


def triton_queue(per_replica: float) -> QueueTime:
    """A replica's queue at ``per_replica`` requests/s at most; a saturated one shows the
    gateway's Triton timeout (its calls give up then)."""
    from gateway.settings import GatewaySettings

    timeout_s = GatewaySettings.model_fields["triton_timeout_s"].default
    return QueueTime(per_replica, float(timeout_s))


def triton_spec_for(manifest: dict[str, Any], per_replica: float) -> HpaSpec:
    return hpa_spec(
        manifest,
        capacity={},
        windows_s=METRIC_WINDOWS_S,
        queues={QUEUE_METRIC: triton_queue(per_replica)},
    )


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _load_panel(axis: Any, timeline: Timeline, per_pod: float, unit: str, title: str) -> None:
    minutes = _minutes(timeline)
    axis.plot(minutes, timeline.demand, label="demand", color="black")
    axis.plot(minutes, [r * per_pod for r in timeline.ready], label="capacity of ready pods")
    axis.plot(minutes, timeline.served, label="served", linestyle="--")
    axis.set_ylabel(unit)
    axis.legend(loc="upper right")
    axis.set_title(title)


def _pods_panel(axis: Any, timeline: Timeline, label: str) -> None:
    minutes = _minutes(timeline)
    axis.step(minutes, timeline.desired, where="post", label="replicas set by the HPA")
    axis.step(minutes, timeline.ready, where="post", label="ready pods")
    axis.set_ylabel(label)
    axis.set_xlabel("minutes")
    axis.legend(loc="upper right")


def _minutes(timeline: Timeline) -> list[float]:
    return [s / 60 for s in range(len(timeline.demand))]


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot(timeline: Timeline, per_pod: float, path: Path) -> None:
    fig, (load, pods) = _pyplot().subplots(2, 1, figsize=(9, 6), sharex=True)
    _load_panel(
        load,
        timeline,
        per_pod,
        "requests / s",
        "Production gateway HPA on a market-open ramp (simulated)",
    )
    _pods_panel(pods, timeline, "pods")
    _save(fig, path)


def plot_triton(timeline: Timeline, spec: HpaSpec, per_replica: float, path: Path) -> None:
    fig, (load, queue, pods) = _pyplot().subplots(3, 1, figsize=(9, 8), sharex=True)
    _load_panel(
        load,
        timeline,
        per_replica,
        "inferences / s",
        "Production Triton HPA (queue time per request) on the ramp (simulated)",
    )
    target = spec.metrics[0].target
    seen_ms = [v * 1000 for v in timeline.observed[QUEUE_METRIC]]
    queue.plot(_minutes(timeline), seen_ms, label="HPA sees")
    queue.axhline(target * 1000, color="grey", linestyle=":", label=f"target {target * 1e3:g} ms")
    queue.set_yscale("log")
    queue.set_ylabel("queue ms / request")
    queue.legend(loc="upper right")
    _pods_panel(pods, timeline, "Triton pods")
    _save(fig, path)


@dataclass(frozen=True)
class Replay:
    """One HPA replayed on the ramp: its spec, the timeline, the pod start time assumed."""

    spec: HpaSpec
    timeline: Timeline
    start_s: int


def report(found: Measured, triton: TritonMeasured, gateway: Replay, serving: Replay) -> str:
    per_pod, mixed = found.gateway_per_pod, triton.mixed_per_replica
    story = STORY_PREDICTIONS_PER_MIN / 60
    spec = gateway.spec
    lines = [
        "# Capacity plan",
        "",
        "Written by `python -m benchmarks.capacity_plan` from the load benchmark of "
        f"{found.measured_at[:10]} ({found.machine}), the per-model benchmark of "
        f"{triton.measured_at[:10]} and the production overlay's gateway and Triton HPAs. "
        "Throughputs are CPU figures of this project's machine: rerun the benchmarks on "
        "the production nodes (and Triton on its GPU) before trusting the pod counts.",
        "",
        "## Per-pod throughput (measured)",
        "",
        "| what | figure | source |",
        "|---|---:|---|",
        f"| gateway pod (one uvicorn worker), cache misses | {per_pod:,.0f} requests/s | "
        f"`gateway_load`, concurrency {CONCURRENCY}, divided by its workers |",
        *(
            f"| Triton replica (CPU), {model} | {rate:,.0f} inferences/s | "
            "`models`, Triton direct, concurrency 8 |"
            for model, rate in triton.per_model.items()
        ),
        f"| Triton replica, requests spread evenly over the {len(triton.per_model)} models | "
        f"{mixed:,.0f} inferences/s | each request costs its model's share of a replica |",
        f"| target share of capacity | {TARGET_UTILIZATION:.0%} | the HPA's CPU target |",
        "",
        "## Pods for the story's load",
        "",
        "Every request is taken as a cache miss of one model (the costly path; hits cost "
        "about a third and never reach Triton), spread evenly over the models, so these are "
        "upper bounds. Triton replicas keep the story's floor of "
        f"{TRITON_MIN_REPLICAS}.",
        "",
        "| load | requests/s | gateway pods | Triton replicas |",
        "|---|---:|---:|---:|",
        f"| 10K predictions per minute | {story:,.0f} | "
        f"{pods_for(story, per_pod)} (HPA floor {spec.min_replicas}) | "
        f"{pods_for(story, mixed, TRITON_MIN_REPLICAS)} |",
    ]
    for seconds in SECONDS_PER_REQUEST:
        rate = STORY_USERS / seconds
        gateway_pods = pods_for(rate, per_pod)
        above = " (above the HPA's max)" if gateway_pods > spec.max_replicas else ""
        triton_pods = pods_for(rate, mixed, TRITON_MIN_REPLICAS)
        beyond = " (above the HPA's max)" if triton_pods > serving.spec.max_replicas else ""
        lines.append(
            f"| 100K concurrent users, one request each per {seconds} s | {rate:,.0f} | "
            f"{gateway_pods}{above} | {triton_pods}{beyond} |"
        )
    design = STORY_USERS / DESIGN_SECONDS_PER_REQUEST
    metrics = ", ".join(f"{m.name} target {m.target:g}" for m in spec.metrics)
    lines += [
        "",
        "## The gateway HPA on a market-open ramp (simulated)",
        "",
        "![HPA simulation](capacity_plan.png)",
        "",
        "The production gateway HPA "
        f"({spec.min_replicas} to {spec.max_replicas} pods; {metrics}; scale-up "
        f"window {spec.scale_up.window_s} s, scale-down window {spec.scale_down.window_s} s) "
        "replayed second by second by `benchmarks/hpa_simulation.py` (the controller's "
        "proposal, 0.1 tolerance, starting pods counted idle, stabilisation windows, rate "
        f"policies, 15 s sync) with pods ready {gateway.start_s} s after they are asked for "
        "(assumed: no cluster here). Demand: the story's 10K/min overnight, a 5-minute "
        f"climb to {design:,.0f} requests/s (100K users, "
        f"one request each per {DESIGN_SECONDS_PER_REQUEST} s), 20 minutes there, an ease "
        "to a third.",
        "",
        *_summary_table(gateway, per_pod, pods_for(design, per_pod)),
        "",
        "The climb overshoots: each metric averages over its window, so pods that were "
        "saturated a minute ago still count, and the scale-down window then holds the peak "
        "for 5 minutes before the count settles. "
        "Requests beyond ready capacity queue in the pods (latency rises) or are shed by the "
        "ingress; the climb is where they happen, since the metrics lag and each new pod "
        "takes its start time. Raising `minReplicas` before the open (a scheduled scale, "
        "or KEDA's cron trigger) removes them at the cost of idle pods overnight.",
        *_triton_section(serving, mixed, design),
    ]
    return "\n".join(lines) + "\n"


def _summary_table(replay: Replay, per_pod: float, static: int) -> list[str]:
    summary = replay.timeline.summary(per_pod)
    return [
        "| figure | value |",
        "|---|---:|",
        f"| most replicas | {summary['max_replicas']:.0f} |",
        f"| replicas at the end of the plateau | {replay.timeline.desired[PLATEAU_END_S]} "
        f"(static plan: {static}) |",
        f"| seconds with demand above ready capacity | {summary['seconds_short_of_capacity']:.0f}"
        f" of {summary['seconds']:.0f} |",
        f"| requests beyond ready capacity | {summary['unserved_share']:.2%} |",
        f"| worst shortfall | {summary['worst_shortfall_per_s']:,.0f} requests/s |",
        f"| mean use of ready capacity | {summary['mean_utilization']:.0%} |",
        f"| pod-hours | {summary['pod_seconds'] / 3600:.1f} |",
    ]


def _shortfall(timeline: Timeline, per_pod: float) -> str:
    summary = timeline.summary(per_pod)
    if summary["unserved_share"] <= 0:
        return "No demand went unserved, at the cost of idle pods."
    return (
        f"Before the new pods were ready, {summary['unserved_share']:.2%} of the demand found "
        f"no capacity (queues at the timeout), over {summary['seconds_short_of_capacity']:.0f} "
        "s; after, pods sat idle."
    )


def _triton_section(serving: Replay, mixed: float, design: float) -> list[str]:
    spec, timeline = serving.spec, serving.timeline
    metric = spec.metrics[0]
    assert metric.queue is not None
    at_target = metric.queue.utilization_at(metric.target)
    seen = timeline.observed[QUEUE_METRIC]
    plateau = timeline.ready[PLATEAU_END_S]
    return [
        "",
        "## The Triton HPA on the same ramp (simulated)",
        "",
        "![Triton HPA simulation](capacity_plan_triton.png)",
        "",
        f"The production Triton HPA ({spec.min_replicas} to {spec.max_replicas} pods; "
        f"External `{metric.name}`, Value target {metric.target * 1000:g} ms over the fleet; "
        f"scale-up window {spec.scale_up.window_s} s, scale-down window "
        f"{spec.scale_down.window_s} s; at most "
        + ", ".join(f"{p.value} {p.kind.lower()}" for p in spec.scale_up.policies)
        + f" up per {spec.scale_up.policies[0].period_s} s) replayed on the same demand, every "
        f"request one inference at {mixed:,.0f} per replica at most, with pods ready "
        f"{serving.start_s} s after they are asked for (assumed: GPU node, image cached, five "
        "model loads). The queue time each replica shows is an M/M/1 queue's, "
        "`u / (mu (1 - u))` at utilisation `u` and capacity `mu`, up to the gateway's Triton "
        f"timeout ({metric.queue.ceiling_s:g} s) when saturated; the HPA sees its 1-minute mean.",
        "",
        *_summary_table(serving, mixed, pods_for(design, mixed, TRITON_MIN_REPLICAS)),
        f"| queue time the HPA saw, worst | {max(seen) * 1000:,.1f} ms |",
        f"| queue time at the end of the plateau | {seen[PLATEAU_END_S] * 1000:,.2f} ms "
        f"({plateau} ready, utilisation {design / (plateau * mixed):.0%}) |",
        "",
        f"A {metric.target * 1000:g} ms target holds a replica of this capacity at about "
        f"{at_target:.0%} utilisation (M/M/1), above the {TARGET_UTILIZATION:.0%} the static "
        "plan keeps, so the HPA does not move until replicas are close to saturation. Then it "
        "overshoots: its rule `ceil(current x observed / target)` assumes the metric falls in "
        "proportion to the replicas added, while queue time falls much faster (it is convex "
        f"in utilisation), so one reading of {max(seen) / metric.target:.1f}x the target asks "
        f"for {max(seen) / metric.target:.1f}x the replicas: it reaches "
        f"{max(timeline.desired)} where the static plan needs "
        f"{pods_for(design, mixed, TRITON_MIN_REPLICAS)}, and the scale-down window "
        f"({spec.scale_down.window_s} s) and policy then hold them. "
        + _shortfall(timeline, mixed)
        + " On CPU nodes a per-replica inferences/s target (linear "
        "in load, like the gateway's) tracks demand closer; on GPU nodes, where one replica "
        "batches far more and utilisation reads 100% long before saturation, queue time "
        "stays the signal that sees overload, with a slower scale-up policy to damp the "
        "overshoot.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pod-start-s", type=int, default=POD_START_S)
    parser.add_argument("--triton-pod-start-s", type=int, default=TRITON_POD_START_S)
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    found, triton = measured(), triton_measured()
    ramp = market_open_ramp()
    spec = spec_for(production_hpa(), found.gateway_per_pod)
    gateway = Replay(
        spec, simulate(spec, ramp, found.gateway_per_pod, args.pod_start_s), args.pod_start_s
    )
    mixed = triton.mixed_per_replica
    triton_spec = triton_spec_for(production_hpa("triton"), mixed)
    serving = Replay(
        triton_spec,
        simulate(triton_spec, ramp, mixed, args.triton_pod_start_s),
        args.triton_pod_start_s,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    plot(gateway.timeline, found.gateway_per_pod, args.out / "capacity_plan.png")
    plot_triton(serving.timeline, triton_spec, mixed, args.out / "capacity_plan_triton.png")
    text = report(found, triton, gateway, serving)
    (args.out / "CAPACITY_PLAN.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
