"""How the data pipeline grows with the warehouse: per-stage time and peak memory at 1x, 10x
and 50x the default sizes (2,000 users / 100K trades; 50x is 100K users / 5M trades).

    .venv/bin/python -m benchmarks.feature_growth                 # 1x, 10x, 50x
    .venv/bin/python -m benchmarks.feature_growth --scales 1 10   # quicker

Each stage runs the pipeline's own code in a fresh process (``--stage``), in order, on one
warehouse per scale: seeding (generation, not the pipeline: reported apart), extraction
(the warehouse's daily aggregates by SQL), validation (the contract by SQL), offline
features (market features, user snapshots a bounded chunk of users at a time, price
windows), Feast materialisation into a real Redis, and training of the two models whose
training sets grow with the warehouse (risk, behaviour; above their caps they train on a
fixed sample: ``risk_max_training_trades``, ``behavior_max_training_users``), with their
held-out figures. The peak RSS is the stage process's
own (``wait4``). Writes ``benchmarks/results/feature_growth.{json,md,png}``.

Targets on a 2-core machine at 50x: extraction + validation + offline features within 8
minutes and 4 GB peak RSS, and a per-trade cost that does not grow with size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import RESULTS, write_results
from trademaster.settings import PipelineSettings

DEFAULT_USERS = PipelineSettings.model_fields["n_users"].default
DEFAULT_TRADES = PipelineSettings.model_fields["n_trades"].default
STAGES = ("seed", "extract", "validate", "features", "materialize", "train")
# The models whose training sets grow with users and trades (the others: symbols, headlines).
TRAINED = ("risk-assessment-model", "behavioral-pattern-classifier")
# Held-out figures each trained model reports, as its MLflow metrics.
HELD_OUT = {
    "risk-assessment-model": ("holdout_auc", "logistic_auc", "train_rows", "holdout_rows"),
    "behavioral-pattern-classifier": (
        "holdout_macro_f1", "logistic_macro_f1", "train_rows", "holdout_rows",
    ),
}  # fmt: skip
# The stages whose sum the 8-minute, 4 GB target is about.
TARGET_STAGES = ("extract", "validate", "features")
TARGET_SECONDS, TARGET_RSS_GB = 8 * 60, 4.0
# A fixed last bar, so every scale and every run sees the same calendar.
END_DATE = date(2026, 11, 30)


def settings_for(scale: int, folder: Path, redis: str) -> PipelineSettings:
    return PipelineSettings(
        data_dir=folder / "var",
        feature_store_root=folder / "store",
        online_store_redis=redis,
        n_users=DEFAULT_USERS * scale,
        n_trades=DEFAULT_TRADES * scale,
        end_date=END_DATE,
    )


def run_stage(stage: str, settings: PipelineSettings) -> dict[str, Any]:
    """One stage, in this process; a small JSON-able report."""
    from trademaster.pipeline import tasks

    if stage == "seed":
        from trademaster.warehouse.seed import seed_warehouse

        return {"rows": asdict(seed_warehouse(settings, replace=True))}
    if stage == "extract":
        return {"extract": tasks.extract(settings)["extract"]["read"]}
    if stage == "validate":
        return {"counts": tasks.validate_data(settings)}
    if stage == "features":
        from trademaster.features.build import build_offline_features

        return build_offline_features(settings, None).as_dict()
    if stage == "materialize":
        from trademaster.features.build import apply_and_materialize

        return apply_and_materialize(settings)
    if stage == "train":
        reports = {}
        for model in TRAINED:
            metrics = tasks.train_model(settings, model)["metrics"]
            reports[model] = {name: metrics.get(name) for name in HELD_OUT[model]}
        return {"held_out": reports}
    raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")


def measure(stage: str, scale: int, folder: Path, redis: str) -> dict[str, Any]:
    """Runs ``stage`` in a child process; its wall time, peak RSS and report."""
    report = folder / f"{stage}.json"
    command = [
        sys.executable, "-m", "benchmarks.feature_growth", "--stage", stage,
        "--scale", str(scale), "--folder", str(folder), "--redis", redis, "--report", str(report),
    ]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command)  # nosec B603
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"stage {stage} at {scale}x failed (exit {child.returncode})")
    result = json.loads(report.read_text())
    peak_gb = usage.ru_maxrss / 2**20  # KiB on Linux
    print(f"  {stage:<12} {seconds:8.1f} s  peak {peak_gb:5.2f} GB", flush=True)
    return {"stage": stage, "seconds": seconds, "peak_rss_gb": peak_gb, "report": result}


def run_scale(scale: int, redis: str, work: Path) -> dict[str, Any]:
    folder = work / f"x{scale}"
    shutil.rmtree(folder, ignore_errors=True)  # a first extraction, not an incremental one
    folder.mkdir(parents=True)
    print(
        f"{scale}x: {DEFAULT_USERS * scale:,} users, {DEFAULT_TRADES * scale:,} trades", flush=True
    )
    stages = [measure(stage, scale, folder, redis) for stage in STAGES]
    by_name = {row["stage"]: row for row in stages}
    target_seconds = sum(by_name[name]["seconds"] for name in TARGET_STAGES)
    return {
        "scale": scale,
        "n_users": DEFAULT_USERS * scale,
        "n_trades": DEFAULT_TRADES * scale,
        "stages": stages,
        "extract_validate_features_s": target_seconds,
        "extract_validate_features_peak_gb": max(
            by_name[name]["peak_rss_gb"] for name in TARGET_STAGES
        ),
        "ms_per_1k_trades": 1e3 * target_seconds / (DEFAULT_TRADES * scale / 1e3),
        "user_feature_rows": by_name["features"]["report"]["user_rows"],
    }


def markdown(results: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    lines = [
        f"Pipeline growth on {machine['cpus']} CPUs ({machine['processor']}), {machine['date']}.",
        "",
        "| scale | users | trades | " + " | ".join(f"{s} s (GB)" for s in STAGES)
        + " | extract+validate+features | per 1K trades | user rows |",
        "|---|---:|---:|" + "---:|" * len(STAGES) + "---:|---:|---:|",
    ]  # fmt: skip
    for row in results:
        cells = " | ".join(
            f"{stage['seconds']:.1f} ({stage['peak_rss_gb']:.2f})" for stage in row["stages"]
        )
        lines.append(
            f"| {row['scale']}x | {row['n_users']:,} | {row['n_trades']:,} | {cells} | "
            f"{row['extract_validate_features_s']:.1f} s, "
            f"{row['extract_validate_features_peak_gb']:.2f} GB | "
            f"{row['ms_per_1k_trades']:.1f} ms | {row['user_feature_rows']:,} |"
        )
    lines += [
        "",
        "| scale | model | held-out figures (training sample policy: README) |",
        "|---|---|---|",
    ]
    for row in results:
        train = next(stage for stage in row["stages"] if stage["stage"] == "train")
        for model, figures in train["report"]["held_out"].items():
            shown = ", ".join(
                f"{name} {int(value):,}" if name.endswith("_rows") else f"{name} {value:.4f}"
                for name, value in figures.items()
                if value is not None
            )
            lines.append(f"| {row['scale']}x | {model} | {shown} |")
    lines += [
        "",
        f"Target at 50x: extract + validate + features within {TARGET_SECONDS} s and "
        f"{TARGET_RSS_GB} GB peak RSS (each stage's own process); seeding generates the demo "
        "data and is not part of the pipeline.",
    ]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trades = [row["n_trades"] / 1e6 for row in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for stage in STAGES:
        seconds = [
            next(s["seconds"] for s in row["stages"] if s["stage"] == stage) for row in results
        ]
        peak = [
            next(s["peak_rss_gb"] for s in row["stages"] if s["stage"] == stage) for row in results
        ]
        left.plot(trades, seconds, marker="o", label=stage)
        right.plot(trades, peak, marker="o", label=stage)
    left.axhline(
        TARGET_SECONDS, color="grey", linestyle="--", label="8 min (extract+validate+features)"
    )
    right.axhline(TARGET_RSS_GB, color="grey", linestyle="--", label="4 GB")
    for axis, label in ((left, "seconds"), (right, "peak RSS, GB")):
        axis.set_xscale("log")
        axis.set_xlabel("trades in the warehouse (millions)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    left.set_yscale("log")
    left.legend(fontsize=8)
    fig.suptitle("Data pipeline per stage at 1x, 10x, 50x the default warehouse")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--work-dir", type=Path, help="kept; default: a temporary folder")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        import logging

        logging.basicConfig(level=logging.INFO, format="    %(name)s: %(message)s")
        report = run_stage(args.stage, settings_for(args.scale, args.folder, args.redis))
        args.report.write_text(json.dumps(report, default=str))
        return

    from trademaster.launchers.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="feature-growth-") as temporary:
        work = args.work_dir or Path(temporary)
        redis = RedisServer(work / "redis").start()
        try:
            results = [run_scale(scale, f"127.0.0.1:{redis.port}", work) for scale in args.scales]
        finally:
            redis.stop()
    machine = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "date": datetime.now(UTC).date().isoformat(),
    }
    table = markdown(results, machine)
    write_results("feature_growth", {"machine": machine, "results": results}, table)
    plot(results, RESULTS / "feature_growth.png")
    print(table)


if __name__ == "__main__":
    main()
