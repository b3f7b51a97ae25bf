"""Throughput and latency under load, side by side in one run, at concurrency 1, 8 and 32:

- ``triton_direct``: perf_analyzer on risk-assessment-model over gRPC (the baseline);
- ``mlflow_serve``: wrk POST /invocations to ``mlflow models serve`` of the same registered
  version (its champion), with as many workers as the gateway, on the same real feature rows:
  the model alone, no feature lookup, no cache (the second baseline);
- ``gateway_miss``: wrk POST /predict, every request a new (user, symbol), so Feast + Triton;
- ``gateway_hit``: wrk POST /predict, the same request, answered from Redis;
- ``gateway_batch``: wrk POST /batch_predict with 1,000 new rows per request.

Then the prediction log's cost: cache misses at ``--log-concurrency`` on two more gateways
of the same stack, one logging every prediction (a fresh SQLite log, the default kind of
store) and one not, in ``--log-rounds`` interleaved rounds (on, off, off, on, ...: drift of
the machine falls on both). Reported: the ratio of throughputs per round (median, min, max),
a bootstrap 95% interval of the mean ratio, and what the logging gateway wrote and dropped.
The target: logging on keeps at least 95% of the throughput without.

    .venv/bin/python -m benchmarks.gateway_load [--duration 8] [--repeat 3] [--workers 2]
        [--log-rounds 6] [--log-concurrency 8] [--log-only]

Each point is the median of ``--repeat`` measurements (this machine is shared and noisy).

Starts the stack like ``make up`` (training first if needed) and writes
``benchmarks/results/gateway_load.{json,md,png}`` (``--log-only``: only the prediction log's
comparison, to ``gateway_prediction_log.{json,md}``). wrk runs on the same 2-core machine as
the gateway, Triton and Redis: the numbers are for this machine, compared within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import redis
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.report import RESULTS, write_results
from trademaster.contract.prediction_log import read_predictions
from trademaster.launchers.perf_analyzer import run_perf_analyzer
from trademaster.settings import PipelineSettings
from trademaster.stack import (
    RunningStack,
    StackSettings,
    gateway_process,
    running_stack,
    wait_ready,
)

MODEL = "risk-assessment-model"
CONCURRENCY = (1, 8, 32)
BATCH_ROWS = 1_000

MISS_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local n = counter + {offset}
  local user = (n % {users}) + 1
  local symbol = math.floor(n / {users}) % {symbols} + 1
  local body = string.format('{{"user_id": %d, "symbol": "SYN%03d"}}', user, symbol)
  return wrk.format("POST", "/predict", headers, body)
end
"""
HIT_LUA = """
request = function()
  return wrk.format("POST", "/predict", headers, '{{"user_id": 7, "symbol": "SYN001"}}')
end
"""
BATCH_LUA = """
counter = 0
request = function()
  local rows = {{}}
  for i = 1, {rows} do
    counter = counter + 1
    local n = counter + {offset}
    rows[i] = string.format('{{"user_id": %d, "symbol": "SYN%03d"}}',
      (n % {users}) + 1, math.floor(n / {users}) % {symbols} + 1)
  end
  return wrk.format("POST", "/batch_predict", headers,
    '{{"rows": [' .. table.concat(rows, ",") .. ']}}')
end
"""
HEADERS_LUA = 'headers = {{["Content-Type"] = "application/json", ["X-API-Key"] = "{key}"}}\n'
# The model's own tensor input, one real feature row per request, in turn.
INVOCATIONS_LUA = """
bodies = {{{bodies}}}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/invocations", {{["Content-Type"] = "application/json"}},
    bodies[(counter % #bodies) + 1])
end
"""


@dataclass(frozen=True)
class LoadResult:
    path: str
    concurrency: int
    requests_per_s: float
    predictions_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int


def wrk(
    base_url: str, script: str, concurrency: int, duration_s: int, rows_per_request: int = 1
) -> tuple[float, float, float, float, int]:
    """Runs wrk with a Lua script; returns (requests/s, p50, p90, p99 in ms, errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration_s}s", "--timeout", "30s", "--latency",
         "-s", handle.name, base_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(handle.name).unlink()
    out = completed.stdout
    percentiles = {
        int(p): _ms(value, unit)
        for p, value, unit in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    }
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"[bench] wrk socket errors: {socket_errors.group(1)}")
    return (
        rate,
        percentiles[50],
        percentiles[90],
        percentiles[99],
        int(errors.group(1)) if errors else 0,
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def perf_input(stack: RunningStack, path: Path) -> Path:
    """Real feature rows for perf_analyzer (from the offline store the model trained on)."""
    from exporters.risk import real_feature_rows
    from trademaster.features.store import feature_service_columns, load_definitions

    names = feature_service_columns(load_definitions().risk_model_v1)
    rows = real_feature_rows(stack.settings, names, 200)
    path.write_text(json.dumps({"data": [{"features": row.tolist()} for row in rows]}))
    return path


def invocations_script(data: Path) -> str:
    """wrk's script for ``mlflow models serve``: perf_analyzer's rows as ``{"inputs": ...}``."""
    rows = [row["features"] for row in json.loads(data.read_text())["data"]]
    # Lua long strings of level 2: the JSON's own "]]" would end a [[...]] string.
    bodies = ", ".join(f"[==[{json.dumps({'inputs': [row]})}]==]" for row in rows)
    return INVOCATIONS_LUA.format(bodies=bodies)


def measure(stack: RunningStack, duration_s: int, repeat: int, workers: int) -> list[LoadResult]:
    from trademaster.launchers.mlflow_server import MlflowModelServer
    from trademaster.registry import CHAMPION

    settings = stack.settings
    users, symbols = settings.n_users, settings.n_generated_symbols
    headers = HEADERS_LUA.format(key=stack.api_key)
    cache = redis.Redis.from_url(stack.cache_redis.url)
    results: list[LoadResult] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as servers:
        data = perf_input(stack, Path(tmp) / "input.json")
        print(f"[bench] starting mlflow models serve of {MODEL}@{CHAMPION} ({workers} workers)")
        mlflow_serve = servers.enter_context(
            MlflowModelServer(
                Path(tmp) / "mlflow-serve",
                f"models:/{MODEL}@{CHAMPION}",
                stack.mlflow_url,
                workers=workers,
            )
        )
        invocations = invocations_script(data)
        first = json.loads(data.read_text())["data"][0]["features"]
        answer = httpx.post(f"{mlflow_serve.url}/invocations", json={"inputs": [first]}, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"mlflow models serve refused a feature row: {answer.text[:500]}")
        for concurrency in CONCURRENCY:
            runs: list[list[LoadResult]] = [[] for _ in range(5)]
            for attempt in range(repeat):
                print(
                    f"[bench] concurrency {concurrency}, round {attempt + 1}/{repeat}", flush=True
                )
                (row,) = run_perf_analyzer(
                    MODEL, stack.triton.grpc_url, "grpc", (concurrency, concurrency),
                    input_data=data, measurement_interval_ms=duration_s * 1000 // 3,
                    # A shared 2-core machine: at c=32 10% stability was not reached in 10
                    # windows (perf_analyzer exits 2).
                    stability_percentage=30, max_trials=15,
                )  # fmt: skip
                runs[0].append(
                    LoadResult("triton_direct", concurrency, row.inferences_per_s,
                               row.inferences_per_s, row.p50_latency_us / 1e3,
                               row.p90_latency_us / 1e3, row.p99_latency_us / 1e3, 0)
                )  # fmt: skip
                offset = (attempt + 1) * 10_000_019 + concurrency * 1_000_003
                scripts = {
                    "gateway_miss": (MISS_LUA.format(offset=offset, users=users,
                                                     symbols=symbols), 1),
                    "gateway_hit": (HIT_LUA.format(), 1),
                    "gateway_batch": (BATCH_LUA.format(rows=BATCH_ROWS, offset=offset,
                                                       users=users, symbols=symbols), BATCH_ROWS),
                }  # fmt: skip
                rate, p50, p90, p99, errors = wrk(
                    mlflow_serve.url, invocations, concurrency, duration_s
                )
                runs[1].append(
                    LoadResult("mlflow_serve", concurrency, rate, rate, p50, p90, p99, errors)
                )
                for slot, (path, (script, rows)) in enumerate(scripts.items(), start=2):
                    cache.flushdb()  # misses are misses: nothing left from the previous run
                    if path == "gateway_hit":
                        wrk(stack.base_url, headers + script, 1, 1)  # warm the one entry
                    rate, p50, p90, p99, errors = wrk(
                        stack.base_url, headers + script, concurrency, duration_s
                    )
                    runs[slot].append(
                        LoadResult(path, concurrency, rate, rate * rows, p50, p90, p99, errors)
                    )
            results.extend(median_result(rounds) for rounds in runs)
    cache.close()
    return results


def median_result(rounds: list[LoadResult]) -> LoadResult:
    """The round with the median p50 (its other numbers come with it); errors summed."""
    ordered = sorted(rounds, key=lambda r: r.p50_ms)
    middle = ordered[len(ordered) // 2]
    return LoadResult(**{**asdict(middle), "errors": sum(r.errors for r in rounds)})


def table(results: list[LoadResult]) -> str:
    baseline = {r.concurrency: r for r in results if r.path == "triton_direct"}
    lines = [
        "| path | concurrency | requests/s | predictions/s | p50 ms | p90 ms | p99 ms | "
        "p50 / triton | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.p50_ms / baseline[r.concurrency].p50_ms
        lines.append(
            f"| {r.path} | {r.concurrency} | {r.requests_per_s:.0f} | {r.predictions_per_s:.0f} "
            f"| {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} | {ratio:.2f}x | {r.errors} |"
        )
    return "\n".join(lines)


# The speed targets, at concurrency 8: (what, numerator, denominator, measure, bound).
TARGET_CONCURRENCY = 8
TARGETS = (
    ("cache-miss throughput / mlflow models serve", "gateway_miss", "mlflow_serve", "rate", 2.0),
    ("cache-miss throughput / Triton direct", "gateway_miss", "triton_direct", "rate", 0.35),
    ("cache-miss p99 / Triton direct p99", "gateway_miss", "triton_direct", "p99", 3.0),
    ("cache-hit p50 / Triton direct p50", "gateway_hit", "triton_direct", "p50", 1.5),
)


@dataclass(frozen=True)
class TargetCheck:
    what: str
    ratio: float
    bound: float
    at_least: bool  # throughput ratios are floors, latency ratios ceilings
    errors: int = 0  # failed requests of either side: the ratio then means nothing

    @property
    def met(self) -> bool:
        within = self.ratio >= self.bound if self.at_least else self.ratio <= self.bound
        return within and self.errors == 0


def target_checks(results: list[LoadResult]) -> list[TargetCheck]:
    rows = {(r.path, r.concurrency): r for r in results}
    checks = []
    for what, top, bottom, measure_name, bound in TARGETS:
        a, b = rows[(top, TARGET_CONCURRENCY)], rows[(bottom, TARGET_CONCURRENCY)]
        value = {"rate": lambda r: r.requests_per_s, "p99": lambda r: r.p99_ms,
                 "p50": lambda r: r.p50_ms}[measure_name]  # fmt: skip
        checks.append(
            TargetCheck(
                what, value(a) / value(b), bound, measure_name == "rate", a.errors + b.errors
            )
        )
    return checks


def targets_table(checks: list[TargetCheck]) -> str:
    lines = [
        f"| ratio at concurrency {TARGET_CONCURRENCY} | measured | target | met |",
        "|---|---:|---:|---|",
    ]
    for check in checks:
        bound = f"{'>=' if check.at_least else '<='} {check.bound:g}"
        verdict = "yes" if check.met else "no"
        if check.errors:
            verdict = f"not measured: {check.errors:,} failed requests"
        lines.append(f"| {check.what} | {check.ratio:.2f} | {bound} | {verdict} |")
    return "\n".join(lines)


# --- the prediction log's cost ---------------------------------------------------------------

LOG_TARGET = 0.95  # logging on keeps at least this share of the miss throughput without
LOG_FLUSH_WAIT_S = 3.0  # > the writer's flush interval (1 s): the last records are written
BOOTSTRAP_SAMPLES = 10_000


@dataclass(frozen=True)
class LoggingOverhead:
    concurrency: int
    duration_s: int
    off_per_s: list[float]  # round by round
    on_per_s: list[float]
    ratio_median: float  # of the per-round ratios on / off
    ratio_min: float
    ratio_max: float
    ratio_ci95: tuple[float, float]  # bootstrap interval of the mean per-round ratio
    requests_on: int  # answered by the logging gateway (wrk's count, warm-up included)
    rows_logged: int  # in its log after the flush
    written_total: float  # ml_prediction_log_records_total
    dropped_total: dict[str, float] = field(default_factory=dict)  # by reason
    errors: int = 0  # non-2xx answers, both gateways

    @property
    def meets_target(self) -> bool:
        return self.ratio_median >= LOG_TARGET


@contextmanager
def extra_gateway(stack: RunningStack, workers: int, environment: dict[str, str]) -> Iterator[str]:
    """One more gateway on the stack's Redis, Feast and Triton, with ``environment`` on top
    of the stack's; its URL."""
    with ExitStack() as stop:
        process, port = stop.enter_context(
            gateway_process(
                stack.settings,
                None,
                stack.cache_redis.url,
                stack.settings.online_store_redis,
                stack.triton.grpc_url,
                stack.api_key,
                workers,
                extra_env=environment,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, 180)
        yield url


def counter_values(base_url: str, name: str) -> dict[str, float]:
    """A counter of the gateway's /metrics (workers summed), by its ``reason`` label or ""."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = sample.labels.get("reason", "")
                values[key] = values.get(key, 0.0) + sample.value
    return values


def bootstrap_mean_ci(values: list[float], seed: int = 0) -> tuple[float, float]:
    samples = np.random.default_rng(seed).choice(values, (BOOTSTRAP_SAMPLES, len(values)))
    low, high = np.percentile(samples.mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def measure_logging_overhead(
    stack: RunningStack, duration_s: int, rounds: int, concurrency: int, workers: int
) -> LoggingOverhead:
    settings = stack.settings
    users, symbols = settings.n_users, settings.n_generated_symbols
    headers = HEADERS_LUA.format(key=stack.api_key)
    cache = redis.Redis.from_url(stack.cache_redis.url)

    def misses(url: str, offset: int, seconds: int) -> tuple[float, int, int]:
        cache.flushdb()  # misses are misses
        script = headers + MISS_LUA.format(offset=offset, users=users, symbols=symbols)
        rate, _, _, _, errors = wrk(url, script, concurrency, seconds)
        return rate, errors, round(rate * seconds)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as gateways:
        log_url = f"sqlite:///{Path(tmp) / 'prediction_log.sqlite'}"
        print(f"[bench] prediction log: two more gateways, logging to {log_url} and not")
        on = gateways.enter_context(
            extra_gateway(stack, workers, {"GATEWAY_PREDICTION_LOG_URL": log_url})
        )
        off = gateways.enter_context(
            extra_gateway(stack, workers, {"GATEWAY_PREDICTION_LOG_URL": ""})
        )
        errors, requests_on = 0, 0
        for slot, url in enumerate((on, off)):  # warm-up: connections, first schema write
            _, warm_errors, warm_requests = misses(url, 90_000_049 + slot * 3_000_017, 2)
            errors += warm_errors
            requests_on += warm_requests if url == on else 0
        rates: dict[str, list[float]] = {on: [], off: []}
        for attempt in range(rounds):
            order = (on, off) if attempt % 2 == 0 else (off, on)
            print(f"[bench] prediction log round {attempt + 1}/{rounds}", flush=True)
            for slot, url in enumerate(order):
                offset = (attempt + 1) * 7_000_003 + slot * 3_000_017
                rate, round_errors, served = misses(url, offset, duration_s)
                rates[url].append(rate)
                errors += round_errors
                requests_on += served if url == on else 0
        time.sleep(LOG_FLUSH_WAIT_S)
        written = counter_values(on, "ml_prediction_log_records").get("", 0.0)
        dropped = counter_values(on, "ml_prediction_log_dropped")
        rows = len(read_predictions(log_url, datetime(2000, 1, 1, tzinfo=UTC)))
    cache.close()
    ratios = [a / b for a, b in zip(rates[on], rates[off], strict=True)]
    return LoggingOverhead(
        concurrency=concurrency,
        duration_s=duration_s,
        off_per_s=rates[off],
        on_per_s=rates[on],
        ratio_median=float(np.median(ratios)),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        ratio_ci95=bootstrap_mean_ci(ratios),
        requests_on=requests_on,
        rows_logged=rows,
        written_total=written,
        dropped_total=dropped,
        errors=errors,
    )


def logging_table(overhead: LoggingOverhead) -> str:
    o = overhead
    low, high = o.ratio_ci95
    rounds = len(o.on_per_s)
    verdict = "met" if o.meets_target else "NOT met"
    dropped = ", ".join(f"{k} {v:.0f}" for k, v in sorted(o.dropped_total.items())) or "none"
    return "\n".join(
        [
            f"## Prediction log: cache misses at concurrency {o.concurrency}, {rounds} "
            f"interleaved rounds of {o.duration_s} s",
            "",
            "| gateway | requests/s, round by round | median |",
            "|---|---|---:|",
            f"| logging off | {', '.join(f'{r:.0f}' for r in o.off_per_s)} "
            f"| {np.median(o.off_per_s):.0f} |",
            f"| logging on | {', '.join(f'{r:.0f}' for r in o.on_per_s)} "
            f"| {np.median(o.on_per_s):.0f} |",
            "",
            f"on / off: median {o.ratio_median:.3f} over rounds (min {o.ratio_min:.3f}, max "
            f"{o.ratio_max:.3f}; bootstrap 95% interval of the mean {low:.3f} to {high:.3f}); "
            f"target >= {LOG_TARGET:.2f}: {verdict}.",
            f"Logged: {o.rows_logged:,} rows for about {o.requests_on:,} answers (wrk's count); "
            f"written {o.written_total:,.0f}, dropped: {dropped}; non-2xx: {o.errors}.",
        ]
    )


def plot(results: list[LoadResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in dict.fromkeys(r.path for r in results):
        rows = [r for r in results if r.path == name]
        x = np.array([r.concurrency for r in rows])
        left.plot(x, [r.p50_ms for r in rows], marker="o", label=name)
        right.plot(x, [r.predictions_per_s for r in rows], marker="o", label=name)
    for axis, label in ((left, "p50 latency (ms)"), (right, "predictions / s")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("concurrency")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.legend()
    fig.suptitle("risk-assessment-model: Triton direct vs gateway (same run, same 2-core machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per point (median)")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument(
        "--log-rounds", type=int, default=6, help="prediction log on/off rounds (interleaved)"
    )
    parser.add_argument("--log-concurrency", type=int, default=8)
    parser.add_argument(
        "--log-only", action="store_true", help="measure only the prediction log's cost"
    )
    args = parser.parse_args(argv)
    if args.log_rounds < 2:
        parser.error("--log-rounds must be at least 2 (interleaved on/off)")
    stack_settings = StackSettings(gateway_port=0, gateway_workers=args.workers)
    with running_stack(PipelineSettings(), stack_settings) as stack:
        results = [] if args.log_only else measure(stack, args.duration, args.repeat, args.workers)
        overhead = measure_logging_overhead(
            stack, args.duration, args.log_rounds, args.log_concurrency, args.workers
        )
    checks = target_checks(results) if results else []
    sections = ([table(results), targets_table(checks)] if results else []) + [
        logging_table(overhead)
    ]
    markdown = "\n\n".join(sections)
    write_results(
        "gateway_prediction_log" if args.log_only else "gateway_load",
        {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": f"{platform.node()} {platform.machine()}, CPU only, load shared with wrk",
            "duration_s": args.duration,
            "repeat": args.repeat,
            "gateway_workers": args.workers,
            "results": [asdict(r) for r in results],
            "targets": [{**asdict(c), "met": c.met} for c in checks],
            "prediction_log": {**asdict(overhead), "meets_target": overhead.meets_target},
        },
        markdown,
    )
    if results:
        plot(results, RESULTS / "gateway_load.png")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
