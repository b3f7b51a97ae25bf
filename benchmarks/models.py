"""Served latency of every model: perf_analyzer on Triton directly (gRPC, concurrency 1 and 8,
real inputs) and the gateway's /predict for the same model (concurrency 1, cache misses).

First of all, before anything else reaches the stack: the first requests to each model after
the stack is up (cold start; the target: the slowest of the first ``FIRST_REQUESTS``, which
reach every gateway worker, within 2x the model's steady p99).

    .venv/bin/python -m benchmarks.models

Starts the stack like ``make up`` and writes ``benchmarks/results/models.{json,md}``. The
models' quality metrics (from their MLflow champion runs) are put in the same table.
"""

from __future__ import annotations

import json
import platform
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from benchmarks.report import write_results
from exporters.risk import real_feature_rows
from trademaster import registry
from trademaster.features.build import PRICE_WINDOWS_FILE, USER_BEHAVIOR_FILE
from trademaster.features.store import feature_service_columns, load_definitions
from trademaster.launchers.perf_analyzer import run_perf_analyzer
from trademaster.settings import PipelineSettings
from trademaster.stack import RunningStack, StackSettings, running_stack
from trademaster.warehouse import schema
from trademaster.warehouse.read import read_table

QUALITY = {
    "risk-assessment-model": ("held-out AUC", "holdout_auc", "logistic_auc", "logistic"),
    "behavioral-pattern-classifier": (
        "held-out users macro-F1", "holdout_macro_f1", "logistic_macro_f1", "logistic",
    ),
    "sentiment-analyzer": (
        "held-out templates macro-F1", "holdout_macro_f1", "bow_macro_f1", "bag of words",
    ),
    "price-prediction-lstm": (
        "walk-forward RMSE (vol units)", "overall_rmse_z", "overall_zero_rmse_z", "zero return",
    ),
    "portfolio-optimizer": (
        "max rel. objective gap to scipy", "max_rel_objective_diff", None, "scipy SLSQP",
    ),
}  # fmt: skip


def perf_inputs(
    settings: PipelineSettings, folder: Path
) -> dict[str, tuple[Path, dict[str, list[int]]]]:
    """perf_analyzer data files of real inputs for each model, and fixed shapes if needed."""
    rng = np.random.default_rng(0)
    definitions = load_definitions()
    risk = real_feature_rows(settings, feature_service_columns(definitions.risk_model_v1), 200)
    users = pd.read_parquet(settings.features_dir / USER_BEHAVIOR_FILE)
    behavior_names = feature_service_columns(definitions.behavior_model_v1)
    behavior = users.sample(200, random_state=0)[behavior_names].to_numpy(np.float32)
    windows = pd.read_parquet(settings.features_dir / PRICE_WINDOWS_FILE).sample(
        200, random_state=0
    )
    headlines = read_table(settings, schema.headlines)["headline"].sample(200, random_state=0)
    n = 10
    portfolios = []
    for _ in range(50):
        returns = rng.normal(0, 0.02, size=(60, n))
        portfolios.append(
            {
                "expected_returns": {"content": rng.normal(0.001, 0.002, n).tolist(), "shape": [n]},
                "covariance": {"content": np.cov(returns.T).ravel().tolist(), "shape": [n, n]},
            }
        )
    data: dict[str, list[dict[str, Any]]] = {
        "risk-assessment-model": [{"features": row.tolist()} for row in risk],
        "behavioral-pattern-classifier": [{"features": row.tolist()} for row in behavior],
        "price-prediction-lstm": [
            {"window": list(map(float, window))} for window in windows["price_window"]
        ],
        "sentiment-analyzer": [{"text": [text]} for text in headlines],
        "portfolio-optimizer": portfolios,
    }
    out: dict[str, tuple[Path, dict[str, list[int]]]] = {}
    for model, rows in data.items():
        path = folder / f"{model}.json"
        path.write_text(json.dumps({"data": rows}))
        out[model] = (path, {})
    return out


def gateway_bodies(settings: PipelineSettings) -> dict[str, Callable[[int], dict[str, Any]]]:
    """A fresh request body per call (cache misses), for each model."""
    trades = read_table(settings, schema.trades)
    pairs = trades[trades["action"] == "open"][["user_id", "symbol"]].drop_duplicates()
    pairs = pairs.sample(frac=1.0, random_state=1).to_numpy().tolist()
    headlines = read_table(settings, schema.headlines)["headline"].drop_duplicates().tolist()
    random.Random(2).shuffle(headlines)
    symbols = [f"SYN{i:03d}" for i in range(1, settings.n_generated_symbols + 1)]
    return {
        "risk-assessment-model": lambda i: {"user_id": int(pairs[i][0]), "symbol": pairs[i][1]},
        "behavioral-pattern-classifier": lambda i: {"user_id": 1 + i % settings.n_users},
        "price-prediction-lstm": lambda i: {"symbol": symbols[i % len(symbols)]},
        "sentiment-analyzer": lambda i: {"text": headlines[i]},
        "portfolio-optimizer": lambda i: {
            "symbols": random.Random(i).sample(symbols, 5), "max_weight": 0.4
        },
    }  # fmt: skip


def gateway_latency(
    stack: RunningStack, model: str, body: Callable[[int], dict[str, Any]], n: int
) -> tuple[float, float, int]:
    timings = []
    misses = 0
    with httpx.Client(base_url=stack.base_url, headers=stack.headers(), timeout=10) as client:
        for i in range(n + 20):
            started = time.perf_counter()
            response = client.post("/predict", json={"model_name": model, **body(i)})
            took = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{model}: {response.status_code} {response.text}")
            if i >= 20 and response.headers["x-cache"] == "miss":
                timings.append(took)
                misses += 1
    ms = np.asarray(timings) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), misses


FIRST_REQUESTS = 4  # two per gateway worker, as the kernel spreads new connections
WARM_TARGET = 2.0  # the slowest first request within this many steady p99s


def first_requests(
    stack: RunningStack, bodies: dict[str, Callable[[int], dict[str, Any]]]
) -> dict[str, list[float]]:
    """Milliseconds of the first ``FIRST_REQUESTS`` cache misses to each model, each on a new
    connection (so that each worker gets its first), before any other traffic; entities from
    the far end of the bodies, which the steady measurement does not reach."""
    took: dict[str, list[float]] = {}
    for model, body in bodies.items():
        took[model] = []
        for i in range(FIRST_REQUESTS):
            with httpx.Client(base_url=stack.base_url, headers=stack.headers(), timeout=30) as c:
                started = time.perf_counter()
                response = c.post("/predict", json={"model_name": model, **body(-1 - i)})
                took[model].append((time.perf_counter() - started) * 1e3)
            if response.status_code != 200:
                raise RuntimeError(f"{model}: {response.status_code} {response.text}")
    return took


def quality(settings: PipelineSettings, model: str) -> dict[str, Any]:
    label, metric, baseline, baseline_name = QUALITY[model]
    champion = registry.version_for_alias(settings, model, registry.CHAMPION)
    if champion is None:
        return {"metric": label, "value": None, "baseline": baseline_name, "baseline_value": None}
    metrics = registry.run_metrics(settings, champion.run_id)
    return {
        "metric": label,
        "value": metrics.get(metric),
        "baseline": baseline_name,
        "baseline_value": metrics.get(baseline) if baseline else None,
    }


def main() -> int:
    rows = []
    with (
        running_stack(PipelineSettings(), StackSettings(gateway_port=0)) as stack,
        tempfile.TemporaryDirectory() as tmp,
    ):
        bodies = gateway_bodies(stack.settings)
        cold = first_requests(stack, bodies)
        inputs = perf_inputs(stack.settings, Path(tmp))
        for model, (data, shapes) in inputs.items():
            print(f"[bench] {model}", flush=True)
            direct = {
                c: run_perf_analyzer(
                    model, stack.triton.grpc_url, "grpc", (c, c), input_data=data,
                    shapes=shapes, measurement_interval_ms=3000,
                    # A shared 2-core machine: 10% stability is rarely reached.
                    stability_percentage=30, max_trials=15,
                )[0]
                for c in (1, 8)
            }  # fmt: skip
            p50, p99, misses = gateway_latency(stack, model, bodies[model], 300)
            rows.append(
                {
                    "model": model,
                    **quality(stack.settings, model),
                    "triton_c1_p50_ms": direct[1].p50_latency_us / 1e3,
                    "triton_c1_p99_ms": direct[1].p99_latency_us / 1e3,
                    "triton_c8_per_s": direct[8].inferences_per_s,
                    "gateway_c1_p50_ms": p50,
                    "gateway_c1_p99_ms": p99,
                    "gateway_requests": misses,
                    "gateway_first_ms": cold[model],
                    "first_over_steady_p99": max(cold[model]) / p99,
                }
            )
    table = "\n".join(
        [
            "| model | metric | model value | baseline | baseline value "
            "| Triton p50 / p99 ms (c=1) | Triton inf/s (c=8) | gateway p50 / p99 ms (c=1, miss) "
            f"| first {FIRST_REQUESTS} requests ms | slowest first / steady p99 "
            f"(target <= {WARM_TARGET:g}) |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r['model']} | {r['metric']} | {_fmt(r['value'])} | {r['baseline']} | "
                f"{_fmt(r['baseline_value'])} | {r['triton_c1_p50_ms']:.2f} / "
                f"{r['triton_c1_p99_ms']:.2f} | {r['triton_c8_per_s']:.0f} | "
                f"{r['gateway_c1_p50_ms']:.2f} / {r['gateway_c1_p99_ms']:.2f} | "
                f"{', '.join(f'{ms:.0f}' for ms in r['gateway_first_ms'])} | "
                f"{r['first_over_steady_p99']:.2f} |"
                for r in rows
            ),
        ]
    )
    write_results(
        "models",
        {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": f"{platform.node()} {platform.machine()}, CPU only",
            "results": rows,
        },
        table,
    )
    print(table)
    return 0


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1e-3 else f"{value:.4f}"


if __name__ == "__main__":
    raise SystemExit(main())
