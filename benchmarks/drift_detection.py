"""Drift detection on the demo market: false alarms over quiet days, and how soon planted
regime changes are flagged.

    .venv/bin/python -m benchmarks.drift_detection [--quiet-days 20] [--root DIR]

A warehouse at the default sizes is seeded to end ``quiet_days + 4`` business days ago and
its features built. The reference profiles are made by the code training uses
(``behavior_examples`` / ``risk_examples`` / the LSTM's windows, then
``training_reference``), without training. Then, one business day at a time, as the daily
DAG sees it: ``market advance`` appends a quiet day, the features are rebuilt and the daily
check compares the newest offline snapshot with each profile (``drift_check``). A day on
which any feature of a model is flagged is a false alarm for that model.

From the state after the quiet days, each planted regime (``market advance --surge`` /
``--volatility``) is appended to a copy, and the check runs after each of up to three such
days: the delay is the number of checks before the first flag (0: flagged on the first day's
check). Results: ``benchmarks/results/drift_detection.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.report import RESULTS, write_results
from trademaster.contract.models import ModelName
from trademaster.monitoring.drift import DriftReport, compare
from trademaster.monitoring.drift_check import calibrated_offline, offline_frame, view_snapshots
from trademaster.monitoring.profile import FeatureProfile
from trademaster.settings import PipelineSettings
from trademaster.warehouse.advance import QUIET, Regime, advance_market

REGIMES = {
    "surge: 800 day-trader sign-ups": Regime.parse_surge("day_trader:800"),
    "surge: 200 day-trader sign-ups": Regime.parse_surge("day_trader:200"),
    "volatility x2": Regime(volatility=2.0),
    "volatility x3": Regime(volatility=3.0),
}
PLANTED_DAYS = 3


@dataclass(frozen=True)
class DayCheck:
    day: str
    model: str
    drifted: tuple[str, ...]
    insufficient: tuple[str, ...]
    checked: int


def _settings(root: Path, end_date: Any) -> PipelineSettings:
    return PipelineSettings(
        environment="test",
        data_dir=root / "var",
        feature_store_root=root / "feature_store",
        model_repository=root / "model_repository",
        end_date=end_date,
    )


def build_features(settings: PipelineSettings) -> None:
    from trademaster.features.build import build_offline_features
    from trademaster.features.extract import publish_extract, stage_extract

    stage_extract(settings)
    publish_extract(settings)
    build_offline_features(settings, None)


def reference_profiles(settings: PipelineSettings) -> dict[str, FeatureProfile]:
    """Each profiled model's reference, by the code its training runs."""
    from trademaster.behavior.pipeline import FEATURE_SERVICE as BEHAVIOR_SERVICE
    from trademaster.behavior.pipeline import MIN_TRADES_IN_WINDOW, behavior_examples
    from trademaster.features.build import feast_objects
    from trademaster.features.price_window import WINDOW
    from trademaster.features.store import open_feature_store
    from trademaster.monitoring.reference import training_reference
    from trademaster.price_lstm.dataset import labelled_series
    from trademaster.price_lstm.pipeline import REAL_SYMBOLS, served_bar_profile
    from trademaster.risk.dataset import RISK_FEATURE_SERVICE, risk_examples
    from trademaster.risk.pipeline import ACTIVE_USERS
    from trademaster.warehouse import schema
    from trademaster.warehouse.read import read_table

    root = settings.feature_store_root.resolve()
    store = open_feature_store(root, settings.online_store_redis)
    store.apply(feast_objects(root))  # the offline store only: nothing is materialised
    behavior, behavior_names = behavior_examples(settings)
    risk, risk_names = risk_examples(settings, store)
    series = labelled_series(read_table(settings, schema.market_data), WINDOW)
    generated = sorted(set(series) - set(REAL_SYMBOLS))
    behavior_population = {"trades_in_window": MIN_TRADES_IN_WINDOW}
    return {
        ModelName.BEHAVIOR: calibrated_offline(
            training_reference(behavior, behavior_names, BEHAVIOR_SERVICE, behavior_population),
            settings,
        ),
        ModelName.RISK: calibrated_offline(
            training_reference(risk, risk_names, RISK_FEATURE_SERVICE, ACTIVE_USERS), settings
        ),
        ModelName.PRICE: calibrated_offline(served_bar_profile(series, generated), settings),
    }


def daily_check(settings: PipelineSettings, profiles: dict[str, FeatureProfile]) -> list[DayCheck]:
    snapshots = view_snapshots(settings)
    day = max(
        (s.newest_event for s in snapshots.values() if s.newest_event is not None),
        default=None,
    )
    checks = []
    for model, profile in profiles.items():
        report: DriftReport = compare(profile, offline_frame(profile, snapshots))
        checks.append(
            DayCheck(
                str(day.date() if day else "?"),
                str(model),
                tuple(f.feature for f in report.drifted_features),
                tuple(f.feature for f in report.features if f.state == "insufficient_data"),
                sum(f.state != "insufficient_data" for f in report.features),
            )
        )
    return checks


def advance_and_check(
    settings: PipelineSettings, profiles: dict[str, FeatureProfile], regime: Regime
) -> list[DayCheck]:
    advance_market(settings, 1, regime=regime)
    build_features(settings)
    return daily_check(settings, profiles)


def _copy(root: Path, to: Path) -> None:
    shutil.copytree(root, to, symlinks=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet-days", type=int, default=20)
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: temp)")
    args = parser.parse_args()
    started = time.perf_counter()
    root = args.root or Path(tempfile.mkdtemp(prefix="drift-benchmark-"))
    today = pd.Timestamp(datetime.now(UTC).date())
    end = (today - pd.offsets.BDay(args.quiet_days + PLANTED_DAYS + 1)).date()
    base = root / "base"
    settings = _settings(base, end)
    shutil.copytree(Path(__file__).resolve().parents[1] / "feature_repo", base / "feature_store")
    from trademaster.warehouse.seed import seed_warehouse

    print(f"[drift] seeding the warehouse to {end} in {base}", flush=True)
    seed_warehouse(settings)
    build_features(settings)
    profiles = reference_profiles(settings)
    print(f"[drift] reference profiles: {sorted(profiles)} ({time.perf_counter() - started:.0f} s)")

    quiet: list[DayCheck] = []
    for index in range(args.quiet_days):
        checks = advance_and_check(settings, profiles, QUIET)
        quiet.extend(checks)
        flagged = {c.model: c.drifted for c in checks if c.drifted}
        print(
            f"[drift] quiet day {index + 1}/{args.quiet_days} {checks[0].day}: "
            f"{flagged or 'no alarm'}",
            flush=True,
        )

    planted: dict[str, list[list[DayCheck]]] = {}
    for name, regime in REGIMES.items():
        copy = root / f"planted-{len(planted)}"
        _copy(base, copy)
        planted_settings = _settings(copy, end).model_copy(
            update={"feature_store_root": copy / "feature_store"}
        )
        days = []
        for day in range(PLANTED_DAYS):
            checks = advance_and_check(planted_settings, profiles, regime)
            days.append(checks)
            flagged = {c.model: c.drifted for c in checks if c.drifted}
            print(f"[drift] {name}, day {day + 1}: {flagged or 'no alarm'}", flush=True)
        planted[name] = days
        shutil.rmtree(copy, ignore_errors=True)

    payload = summarise(quiet, planted, args.quiet_days, time.perf_counter() - started)
    path = write_results("drift_detection", payload, markdown(payload))
    plot(quiet, planted)
    print(path.read_text())
    if args.root is None:
        shutil.rmtree(root, ignore_errors=True)


def summarise(
    quiet: list[DayCheck], planted: dict[str, list[list[DayCheck]]], days: int, took_s: float
) -> dict[str, Any]:
    models = sorted({c.model for c in quiet})
    false_alarms: dict[str, dict[str, Any]] = {}
    for model in models:
        alarm_days = sum(1 for c in quiet if c.model == model and c.drifted)
        false_alarms[model] = {
            "days": days,
            "alarm_days": alarm_days,
            "features_flagged": sorted({f for c in quiet if c.model == model for f in c.drifted}),
            "checked_features": max((c.checked for c in quiet if c.model == model), default=0),
            "rate": alarm_days / max(1, days),
            # Wilson 95% upper bound: few quiet days cannot prove a rate of zero.
            "rate_upper_95": wilson_upper(alarm_days, days),
        }
    detection = {
        name: {
            model: next(
                (
                    day
                    for day, checks in enumerate(days_)
                    for c in checks
                    if c.model == model and c.drifted
                ),
                None,
            )
            for model in models
        }
        for name, days_ in planted.items()
    }
    flagged = {
        name: {
            model: sorted(
                {f for checks in days_ for c in checks if c.model == model for f in c.drifted}
            )
            for model in models
        }
        for name, days_ in planted.items()
    }
    return {
        "quiet_days": days,
        "false_alarms": false_alarms,
        "detection_delay_days": detection,
        "flagged_features": flagged,
        "seconds": round(took_s),
    }


def wilson_upper(successes: int, trials: int, z: float = 1.96) -> float:
    if trials == 0:
        return 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return float(min(1.0, (centre + spread) / (1 + z * z / trials)))


def markdown(payload: dict[str, Any]) -> str:
    lines = [
        "# Drift detection on the demo market",
        "",
        f"{payload['quiet_days']} quiet business days (`market advance`), then each planted "
        "regime on a copy; the daily check on the newest offline snapshot against each "
        "model's reference profile. Generated data (see the README).",
        "",
        "| model | quiet days | days with an alarm | false-alarm rate | 95% upper bound "
        "| features flagged on quiet days |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for model, row in payload["false_alarms"].items():
        lines.append(
            f"| {model} | {row['days']} | {row['alarm_days']} | {row['rate']:.0%} | "
            f"{row['rate_upper_95']:.0%} | {', '.join(row['features_flagged']) or '-'} |"
        )
    lines += ["", "| planted regime | " + " | ".join(payload["false_alarms"]) + " |"]
    lines.append("|---|" + "---|" * len(payload["false_alarms"]))
    for name, delays in payload["detection_delay_days"].items():
        cells = [
            "not flagged"
            if delay is None
            else f"day {delay + 1}: {', '.join(payload['flagged_features'][name][model])}"
            for model, delay in delays.items()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Took {payload['seconds']} s."]
    return "\n".join(lines)


def plot(quiet: list[DayCheck], planted: dict[str, list[list[DayCheck]]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    models = sorted({c.model for c in quiet})
    columns = [
        ("quiet", [[c for c in quiet if c.day == day] for day in sorted({c.day for c in quiet})])
    ]
    columns += [(name, days) for name, days in planted.items()]
    fig, axes = plt.subplots(1, len(columns), figsize=(3 + 2.2 * len(columns), 3), sharey=True)
    for axis, (name, days) in zip(np.atleast_1d(axes), columns, strict=True):
        grid = np.array(
            [
                [len(next((c.drifted for c in checks if c.model == m), ())) for m in models]
                for checks in days
            ]
        ).T
        axis.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=max(1, grid.max()))
        axis.set_title(name, fontsize=8)
        axis.set_xlabel("day")
        axis.set_yticks(range(len(models)), models, fontsize=7)
    fig.suptitle("features flagged per daily check")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "drift_detection.png", dpi=120)


if __name__ == "__main__":
    main()
