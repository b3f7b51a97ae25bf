"""Throughput and latency under load, side by side in one run, at concurrency 1, 8 and 32:

- ``triton_direct``: perf_analyzer on risk-assessment-model over gRPC (the baseline);
- ``gateway_miss``: wrk POST /predict, every request a new (user, symbol), so Feast + Triton;
- ``gateway_hit``: wrk POST /predict, the same request, answered from Redis;
- ``gateway_batch``: wrk POST /batch_predict with 1,000 new rows per request.

    .venv/bin/python -m benchmarks.gateway_load [--duration 8] [--repeat 3] [--workers 2]

Each point is the median of ``--repeat`` measurements (this machine is shared and noisy).

Starts the stack like ``make up`` (training first if needed) and writes
``benchmarks/results/gateway_load.{json,md,png}``. wrk runs on the same 2-core machine as
the gateway, Triton and Redis: the numbers are for this machine, compared within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import redis

from benchmarks.report import RESULTS, write_results
from trademaster.launchers.perf_analyzer import run_perf_analyzer
from trademaster.settings import PipelineSettings
from trademaster.stack import RunningStack, StackSettings, running_stack

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


def measure(stack: RunningStack, duration_s: int, repeat: int) -> list[LoadResult]:
    settings = stack.settings
    users, symbols = settings.n_users, settings.n_generated_symbols
    headers = HEADERS_LUA.format(key=stack.api_key)
    cache = redis.Redis.from_url(stack.cache_redis.url)
    results: list[LoadResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = perf_input(stack, Path(tmp) / "input.json")
        for concurrency in CONCURRENCY:
            runs: list[list[LoadResult]] = [[] for _ in range(4)]
            for attempt in range(repeat):
                print(
                    f"[bench] concurrency {concurrency}, round {attempt + 1}/{repeat}", flush=True
                )
                (row,) = run_perf_analyzer(
                    MODEL, stack.triton.grpc_url, "grpc", (concurrency, concurrency),
                    input_data=data, measurement_interval_ms=duration_s * 1000 // 3,
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
                for slot, (path, (script, rows)) in enumerate(scripts.items(), start=1):
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
    args = parser.parse_args(argv)
    stack_settings = StackSettings(gateway_port=0, gateway_workers=args.workers)
    with running_stack(PipelineSettings(), stack_settings) as stack:
        results = measure(stack, args.duration, args.repeat)
    markdown = table(results)
    write_results(
        "gateway_load",
        {
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": f"{platform.node()} {platform.machine()}, CPU only, load shared with wrk",
            "duration_s": args.duration,
            "repeat": args.repeat,
            "gateway_workers": args.workers,
            "results": [asdict(r) for r in results],
        },
        markdown,
    )
    plot(results, RESULTS / "gateway_load.png")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
