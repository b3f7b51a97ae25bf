"""Every served model on real Triton, against its in-process floor, and the dynamic-batching
settings of the CPU configs chosen by measurement.

    .venv/bin/python -m benchmarks.serving_sweep        # about 15 minutes on 2 cores

Needs a trained stack (`make up` once). It starts its own `tritonserver` on the model
repository (the running stack, if any, is not touched) and, for each model:

1. **Tuning.** Loads the model (for the sentiment ensemble, its encoder: the step that costs)
   with each candidate instance count and queue delay, in interleaved rounds, and measures
   throughput at concurrency 32 and p99 at concurrency 8 (the gateway's benchmark point). The
   fastest candidate whose worst p99 is within the model's budget is chosen if it beats the
   current settings by more than the spread between rounds (`benchmarks/batching_tuning.py`);
   the choice and its figures go to `exporters/cpu_batching.json`, which the exporters read.
2. **Batching against none**, at concurrency 32: the chosen settings against the same
   instances with no dynamic batcher, interleaved rounds.
3. **Sweep** with the chosen settings: perf_analyzer at concurrency 1 to 32 and client batch
   1, 8 and 64 (a point whose expected latency passes the gateway's Triton deadline is skipped,
   and says so), beside the **floor**: the same inputs run in this process
   (`benchmarks/inprocess_floor.py`).

Results: `benchmarks/results/serving_sweep.{csv,json,md,png}`, `serving_tuning.csv`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from benchmarks.batching_tuning import (
    Decision,
    Trial,
    candidates,
    current_settings,
    decide,
    with_settings,
    without_batching,
)
from benchmarks.inprocess_floor import FloorRow, floor_runner, measure_floor
from benchmarks.models import perf_inputs
from benchmarks.report import RESULTS, write_results
from exporters.cpu_batching import TUNED_FILE, CpuBatching
from gateway.settings import GatewaySettings
from trademaster.launchers.perf_analyzer import PerfAnalyzerError, PerfRow, run_perf_analyzer
from trademaster.launchers.triton import TritonServer
from trademaster.settings import PipelineSettings
from trademaster.stack import deployed_models

MODELS = (
    "risk-assessment-model",
    "behavioral-pattern-classifier",
    "price-prediction-lstm",
    "sentiment-analyzer",
    "portfolio-optimizer",
)
# The config a model's batching lives in, where it is not the model's own.
TUNED_CONFIG = {"sentiment-analyzer": "sentiment-encoder"}
# p99 at the budget concurrency a choice must keep: the story's 10 ms at c=8 for the whole
# gateway path; the sentiment transformer alone takes ~7 ms per text at c=1 on CPU.
DEFAULT_P99_BUDGET_MS = 10.0
P99_BUDGET_MS = {"sentiment-analyzer": 100.0}
# A sweep point whose expected latency passes the gateway's Triton deadline is skipped.
DEADLINE_S = float(GatewaySettings.model_fields["triton_timeout_s"].default)


@dataclass(frozen=True)
class Plan:
    models: tuple[str, ...] = MODELS
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    delays_us: tuple[int, ...] = (0, 1000)
    instance_counts: tuple[int, ...] = (1, 2)
    rounds: int = 2
    budget_concurrency: int = 8
    tune_concurrency: int = 32
    measurement_interval_ms: int = 500
    # A shared 2-core machine: perf_analyzer's 10% stability is rarely reached.
    stability_percentage: float = 30.0
    max_trials: int = 8
    floor_seconds: float = 1.0


@dataclass
class SweepPoint:
    model: str
    batch_size: int
    concurrency: int
    status: str  # "measured", or why not
    inferences_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_queue_ms: float | None = None
    server_compute_ms: float | None = None


@dataclass
class ModelResult:
    model: str
    tuned_config: str
    budget_ms: float
    trials: list[Trial] = field(default_factory=list)
    decision: Decision | None = None
    batching_per_s: list[float] = field(default_factory=list)
    no_batching_per_s: list[float] = field(default_factory=list)
    sweep: list[SweepPoint] = field(default_factory=list)
    floor: list[FloorRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class ModelControl(Protocol):
    """What tuning needs of a Triton: a model's served config, and loading it with another."""

    def model_config(self, name: str) -> dict[str, Any]: ...

    def load_model(self, name: str, config: Mapping[str, Any] | None = None) -> None: ...


def log(message: str) -> None:
    print(f"[serving_sweep] {message}", flush=True)


class Measure:
    """perf_analyzer against one Triton, with each model's data file."""

    def __init__(self, triton: TritonServer, data: Mapping[str, Path], plan: Plan) -> None:
        self.triton, self.data, self.plan = triton, data, plan

    def __call__(
        self, model: str, concurrency: int, batch_size: int = 1, expected_latency_s: float = 0.0
    ) -> PerfRow:
        # A window must hold several requests, or perf_analyzer never sees it stable.
        interval_ms = max(self.plan.measurement_interval_ms, int(4000 * expected_latency_s))
        return run_perf_analyzer(
            model,
            self.triton.grpc_url,
            "grpc",
            (concurrency, concurrency),
            batch_size=batch_size,
            input_data=self.data[model],
            measurement_interval_ms=interval_ms,
            stability_percentage=self.plan.stability_percentage,
            max_trials=self.plan.max_trials,
        )[0]


def tune(
    triton: ModelControl, measure: Callable[..., PerfRow], model: str, plan: Plan
) -> ModelResult:
    """Rounds over the candidates, then the decision; leaves the chosen settings loaded."""
    name = TUNED_CONFIG.get(model, model)
    result = ModelResult(model, name, P99_BUDGET_MS.get(model, DEFAULT_P99_BUDGET_MS))
    base = triton.model_config(name)
    current = current_settings(base)
    grid = candidates(current, plan.delays_us, plan.instance_counts)
    figures: dict[CpuBatching, tuple[list[float], list[float]]] = {c: ([], []) for c in grid}
    for round_number in range(1, plan.rounds + 1):
        for candidate in grid:
            triton.load_model(name, with_settings(base, candidate))
            try:
                p99 = measure(model, plan.budget_concurrency).p99_latency_us / 1e3
                throughput = measure(model, plan.tune_concurrency).inferences_per_s
            except PerfAnalyzerError as exc:
                result.errors.append(f"{candidate.label}, round {round_number}: {exc}"[:400])
                continue
            figures[candidate][0].append(throughput)
            figures[candidate][1].append(p99)
            log(
                f"{model} round {round_number} {candidate.label}: {throughput:,.0f} inf/s at "
                f"c={plan.tune_concurrency}, p99 {p99:.2f} ms at c={plan.budget_concurrency}"
            )
    # A candidate is compared only on rounds it completed all of.
    result.trials = [
        Trial(c, tuple(t), tuple(p)) for c, (t, p) in figures.items() if len(t) == plan.rounds
    ]
    if any(trial.candidate == current for trial in result.trials):
        result.decision = decide(result.trials, current, result.budget_ms)
    chosen = result.decision.chosen if result.decision else current
    triton.load_model(name, with_settings(base, chosen))
    if chosen.max_queue_delay_us is not None:
        compare_batching(triton, measure, result, base, chosen, plan)
        triton.load_model(name, with_settings(base, chosen))
    return result


def compare_batching(
    triton: ModelControl,
    measure: Callable[..., PerfRow],
    result: ModelResult,
    base: Mapping[str, Any],
    chosen: CpuBatching,
    plan: Plan,
) -> None:
    for _ in range(plan.rounds):
        for settings, into in (
            (chosen, result.batching_per_s),
            (without_batching(chosen), result.no_batching_per_s),
        ):
            triton.load_model(result.tuned_config, with_settings(base, settings))
            try:
                into.append(measure(result.model, plan.tune_concurrency).inferences_per_s)
            except PerfAnalyzerError as exc:
                result.errors.append(f"batching comparison, {settings.label}: {exc}"[:400])


def sweep(
    measure: Callable[..., PerfRow], model: str, max_batch_size: int, plan: Plan
) -> list[SweepPoint]:
    points = []
    fastest = 0.0  # inferences/s, to skip points that would pass the deadline
    for batch_size in plan.batch_sizes:
        for concurrency in plan.concurrency:
            point = SweepPoint(model, batch_size, concurrency, "measured")
            expected_s = concurrency * batch_size / fastest if fastest else 0.0
            if batch_size > max_batch_size:
                point.status = f"above max_batch_size {max_batch_size}"
            elif expected_s > DEADLINE_S:
                point.status = f"expected latency {expected_s:.1f} s > {DEADLINE_S:g} s deadline"
            else:
                try:
                    row = measure(model, concurrency, batch_size, expected_s)
                except PerfAnalyzerError as exc:
                    point.status = f"perf_analyzer failed: {last_line(str(exc))}"
                else:
                    fastest = max(fastest, row.inferences_per_s)
                    point.inferences_per_s = row.inferences_per_s
                    point.p50_ms = row.p50_latency_us / 1e3
                    point.p99_ms = row.p99_latency_us / 1e3
                    point.server_queue_ms = _ms(row.server_queue_us)
                    point.server_compute_ms = _ms(row.server_compute_infer_us)
            points.append(point)
    log(f"{model}: sweep done, best {fastest:,.0f} inf/s")
    return points


def last_line(output: str) -> str:
    """The last line of a tool's output that says something (its error, usually)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no output"


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1e3


def floors(
    triton: TritonServer, repository: Path, model: str, data: Path, max_batch: int, plan: Plan
) -> list[FloorRow]:
    entries = json.loads(data.read_text())["data"]
    runner = floor_runner(repository, model, triton.model_config)
    return [
        measure_floor(model, runner, entries, b, seconds=plan.floor_seconds)
        for b in plan.batch_sizes
        if b <= max_batch
    ]


def run(settings: PipelineSettings, plan: Plan, work: Path) -> list[ModelResult]:
    repository = settings.model_repository
    served = deployed_models(repository)
    missing = [m for m in plan.models if m not in served]
    if missing:
        raise SystemExit(
            f"no exported version of {', '.join(missing)} in {repository}: run `make up` once"
        )
    data = {model: path for model, (path, _) in perf_inputs(settings, work).items()}
    results = []
    log(f"starting tritonserver on {repository}")
    with TritonServer(repository, work / "triton", models=list(plan.models)) as triton:
        measure = Measure(triton, data, plan)
        for model in plan.models:
            started = time.monotonic()
            log(f"{model}: tuning {TUNED_CONFIG.get(model, model)}")
            result = tune(triton, measure, model, plan)
            max_batch = int(triton.model_config(model).get("max_batch_size", 1))
            result.sweep = sweep(measure, model, max_batch, plan)
            result.floor = floors(triton, repository, model, data[model], max_batch, plan)
            results.append(result)
            log(f"{model}: done in {time.monotonic() - started:.0f} s")
    return results


# ---- reports ---------------------------------------------------------------------------


def spread(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def gain(result: ModelResult) -> tuple[float, float, float] | None:
    """Mean ratio of batching to none, and its range over the rounds' extremes."""
    on, off = result.batching_per_s, result.no_batching_per_s
    if not on or not off:
        return None
    return (
        statistics.fmean(on) / statistics.fmean(off),
        min(on) / max(off),
        max(on) / min(off),
    )


def tuned_document(results: Sequence[ModelResult], plan: Plan, measured_at: str) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for result in results:
        if result.decision is None:
            continue
        models[result.tuned_config] = {
            **result.decision.chosen.as_json(),
            "evidence": {
                "measured_model": result.model,
                "reason": result.decision.reason,
                "budget_met": result.decision.budget_met,
                "p99_budget_ms": result.budget_ms,
                "trials": [
                    {
                        **trial.candidate.as_json(),
                        f"inferences_per_s_c{plan.tune_concurrency}": trial.throughput_per_s,
                        f"p99_ms_c{plan.budget_concurrency}": trial.p99_ms,
                    }
                    for trial in result.trials
                ],
            },
        }
    return {
        "about": (
            "Written by `python -m benchmarks.serving_sweep`: the CPU configs' instance count "
            "and dynamic-batching queue delay per model, chosen by measurement on real Triton "
            "(see benchmarks/results/serving_sweep.md). Re-export (make up) to apply."
        ),
        "measured_at": measured_at,
        "machine": machine(),
        "models": models,
    }


def merged_tuning(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """``document`` over the models an earlier run tuned and this one did not."""
    if path.exists():
        earlier = json.loads(path.read_text(encoding="utf-8")).get("models", {})
        document["models"] = {**earlier, **document["models"]}
    return document


def machine() -> str:
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, CPU only"


def markdown(results: Sequence[ModelResult], plan: Plan, measured_at: str) -> str:
    lines = [
        f"# Serving sweep ({measured_at[:10]}, {machine()})",
        "",
        f"## Dynamic batching chosen (throughput at c={plan.tune_concurrency}, p99 at "
        f"c={plan.budget_concurrency}; mean (range) over {plan.rounds} interleaved rounds)",
        "",
        "| model | config tuned | candidate | inf/s | worst p99 ms | budget ms | chosen |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in results:
        chosen = r.decision.chosen if r.decision else None
        for trial in r.trials:
            mark = "**yes**" if trial.candidate == chosen else ""
            lines.append(
                f"| {r.model} | {r.tuned_config} | {trial.candidate.label} | "
                f"{spread(trial.throughput_per_s)} | {trial.worst_p99_ms:.2f} | "
                f"{r.budget_ms:g} | {mark} |"
            )
    lines += ["", "| model | decision |", "|---|---|"]
    for r in results:
        reason = r.decision.reason if r.decision else "not decided: " + "; ".join(r.errors[:2])
        label = r.decision.chosen.label if r.decision else "-"
        lines.append(f"| {r.model} | {label}: {reason} |")
    lines += [
        "",
        f"## Dynamic batching against none at c={plan.tune_concurrency} (client batch 1)",
        "",
        "| model | with batcher inf/s | without inf/s | gain (range) |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        g = gain(r)
        if g is None:
            lines.append(f"| {r.model} | - | - | no dynamic batcher (one solve per portfolio) |")
            continue
        lines.append(
            f"| {r.model} | {spread(r.batching_per_s)} | {spread(r.no_batching_per_s)} | "
            f"{g[0]:.2f}x ({g[1]:.2f}-{g[2]:.2f}) |"
        )
    lines += [
        "",
        "## Sweep against the in-process floor (chosen settings loaded)",
        "",
        "Floor: the same inputs run in this process, one call after another, same runtime, "
        "artifact and threads. Triton / floor above 1 is concurrency across instances and "
        "batching beating one thread; p50 over the floor's is the serving overhead at that load.",
        "",
        "| model | batch | floor inf/s | floor p50 ms | "
        + " | ".join(f"c={c} inf/s (p99 ms)" for c in plan.concurrency)
        + " | best / floor |",
        "|---|---:|---:|---:|" + "---:|" * len(plan.concurrency) + "---:|",
    ]
    for r in results:
        floor = {f.batch_size: f for f in r.floor}
        for b in plan.batch_sizes:
            points = [p for p in r.sweep if p.batch_size == b]
            cells = [
                f"{p.inferences_per_s:,.0f} ({p.p99_ms:.1f})"
                if p.inferences_per_s is not None and p.p99_ms is not None
                else "skipped"
                for p in points
            ]
            f = floor.get(b)
            best = max((p.inferences_per_s or 0.0 for p in points), default=0.0)
            ratio = f"{best / f.inferences_per_s:.2f}x" if f and best else "-"
            floor_cells = f"{f.inferences_per_s:,.0f} | {f.p50_ms:.2f}" if f else "- | -"
            lines.append(f"| {r.model} | {b} | {floor_cells} | {' | '.join(cells)} | {ratio} |")
    skipped = sorted({p.status for r in results for p in r.sweep if p.status != "measured"})
    if skipped:
        lines += ["", "Skipped points: " + "; ".join(skipped) + "."]
    return "\n".join(lines)


def write_csvs(results: Sequence[ModelResult], plan: Plan, folder: Path = RESULTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    floors_by = {(f.model, f.batch_size): f for r in results for f in r.floor}
    with (folder / "serving_sweep.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "model", "batch_size", "concurrency", "status", "inferences_per_s", "p50_ms",
                "p99_ms", "server_queue_ms", "server_compute_ms", "floor_inferences_per_s",
                "floor_p50_ms", "floor_p99_ms",
            ]
        )  # fmt: skip
        for r in results:
            for p in r.sweep:
                f = floors_by.get((p.model, p.batch_size))
                writer.writerow(
                    [
                        p.model, p.batch_size, p.concurrency, p.status, _num(p.inferences_per_s),
                        _num(p.p50_ms), _num(p.p99_ms), _num(p.server_queue_ms),
                        _num(p.server_compute_ms), _num(f.inferences_per_s if f else None),
                        _num(f.p50_ms if f else None), _num(f.p99_ms if f else None),
                    ]
                )  # fmt: skip
    with (folder / "serving_tuning.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "model", "config", "instance_count", "max_queue_delay_us", "round",
                f"inferences_per_s_c{plan.tune_concurrency}", f"p99_ms_c{plan.budget_concurrency}",
                "chosen",
            ]
        )  # fmt: skip
        for r in results:
            chosen = r.decision.chosen if r.decision else None
            for trial in r.trials:
                for i, (t, p99) in enumerate(
                    zip(trial.throughput_per_s, trial.p99_ms, strict=True)
                ):
                    writer.writerow(
                        [
                            r.model, r.tuned_config, trial.candidate.instance_count,
                            trial.candidate.max_queue_delay_us, i + 1, f"{t:.1f}", f"{p99:.3f}",
                            trial.candidate == chosen,
                        ]
                    )  # fmt: skip


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def plot(results: Sequence[ModelResult], plan: Plan, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        for index, b in enumerate(plan.batch_sizes):
            color = f"C{index}"
            points = [p for p in r.sweep if p.batch_size == b and p.inferences_per_s]
            if points:
                ax.plot(
                    [p.concurrency for p in points],
                    [p.inferences_per_s for p in points],
                    "o-",
                    color=color,
                    label=f"Triton, batch {b}",
                )
            for f in r.floor:
                if f.batch_size == b:
                    ax.axhline(
                        f.inferences_per_s, color=color, ls="--", lw=1, label=f"floor, batch {b}"
                    )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(plan.concurrency), [str(c) for c in plan.concurrency])
        ax.set_title(r.model, fontsize=9)
        ax.set_xlabel("concurrency")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("inferences / s")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("perf_analyzer sweep per model (solid) against the in-process floor (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: Sequence[ModelResult], plan: Plan, tuned_file: Path = TUNED_FILE) -> str:
    measured_at = datetime.now(UTC).isoformat()
    table = markdown(results, plan, measured_at)
    payload = {
        "measured_at": measured_at,
        "machine": machine(),
        "plan": asdict(plan),
        "deadline_s": DEADLINE_S,
        "results": [
            {
                "model": r.model,
                "tuned_config": r.tuned_config,
                "budget_ms": r.budget_ms,
                "decision": asdict(r.decision) if r.decision else None,
                "trials": [asdict(t) for t in r.trials],
                "batching_per_s": r.batching_per_s,
                "no_batching_per_s": r.no_batching_per_s,
                "sweep": [asdict(p) for p in r.sweep],
                "floor": [asdict(f) for f in r.floor],
                "errors": r.errors,
            }
            for r in results
        ],
    }
    write_results("serving_sweep", payload, table)
    write_csvs(results, plan)
    plot(results, plan, RESULTS / "serving_sweep.png")
    document = merged_tuning(tuned_document(results, plan, measured_at), tuned_file)
    tuned_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=Plan.rounds)
    args = parser.parse_args(argv)
    # A TERM unwinds like Ctrl-C: the tritonserver this started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    plan = Plan(models=tuple(args.models), rounds=args.rounds)
    with tempfile.TemporaryDirectory(prefix="serving-sweep-") as tmp:
        results = run(PipelineSettings(), plan, Path(tmp))
    table = write(results, plan)
    print(table)
    log(f"chosen settings written to {TUNED_FILE}; results in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
