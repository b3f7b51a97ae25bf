"""Run Triton's `perf_analyzer` (from the tritonclient 2.50 wheel) and parse its CSV report."""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from trademaster.launchers.tools import ServingTools

Protocol = Literal["grpc", "http"]
OUTPUT_TAIL_CHARS = 4000


class PerfAnalyzerError(RuntimeError):
    """`perf_analyzer` failed or wrote no usable report."""


@dataclass(frozen=True)
class PerfRow:
    """One concurrency level of a `perf_analyzer` run. Times are in microseconds."""

    concurrency: int
    inferences_per_s: float
    p50_latency_us: float
    p90_latency_us: float
    p95_latency_us: float
    p99_latency_us: float
    avg_latency_us: float | None = None
    server_queue_us: float | None = None
    server_compute_input_us: float | None = None
    server_compute_infer_us: float | None = None
    server_compute_output_us: float | None = None


def _optional(row: Mapping[str, str], column: str) -> float | None:
    value = (row.get(column) or "").strip()
    return float(value) if value else None


def _required(row: Mapping[str, str], column: str, source: Path) -> float:
    value = _optional(row, column)
    if value is None:
        raise PerfAnalyzerError(f"{source}: column {column!r} missing or empty in {dict(row)}")
    return value


def parse_perf_csv(path: Path) -> list[PerfRow]:
    """Parse the `-f` report of a concurrency sweep, one row per concurrency, in sweep order.

    perf_analyzer writes the rows sorted by throughput, not by concurrency: on a busy machine
    concurrency 2 can come first.
    """
    with path.open(newline="", encoding="utf-8") as report:
        rows = [row for row in csv.DictReader(report) if row.get("Concurrency")]
    parsed = [
        PerfRow(
            concurrency=int(_required(row, "Concurrency", path)),
            inferences_per_s=_required(row, "Inferences/Second", path),
            p50_latency_us=_required(row, "p50 latency", path),
            p90_latency_us=_required(row, "p90 latency", path),
            p95_latency_us=_required(row, "p95 latency", path),
            p99_latency_us=_required(row, "p99 latency", path),
            avg_latency_us=_optional(row, "Avg latency"),
            server_queue_us=_optional(row, "Server Queue"),
            server_compute_input_us=_optional(row, "Server Compute Input"),
            server_compute_infer_us=_optional(row, "Server Compute Infer"),
            server_compute_output_us=_optional(row, "Server Compute Output"),
        )
        for row in rows
    ]
    return sorted(parsed, key=lambda row: row.concurrency)


def perf_analyzer_environment(tools: ServingTools) -> dict[str, str]:
    """`os.environ` plus the directory holding `libcudart.so.12` (it links it even on CPU)."""
    env = dict(os.environ)
    current = env.get("LD_LIBRARY_PATH")
    lib_dir = str(tools.cudart_lib_dir)
    env["LD_LIBRARY_PATH"] = f"{lib_dir}{os.pathsep}{current}" if current else lib_dir
    return env


def perf_analyzer_command(
    tools: ServingTools,
    model: str,
    url: str,
    csv_path: Path,
    protocol: Protocol = "grpc",
    concurrency_range: tuple[int, ...] = (1, 1),
    batch_size: int = 1,
    input_data: Path | None = None,
    measurement_interval_ms: int = 1000,
    shapes: Mapping[str, Sequence[int]] | None = None,
    max_trials: int = 10,
    stability_percentage: float = 10.0,
    extra_args: Sequence[str] = (),
) -> list[str]:
    if not 2 <= len(concurrency_range) <= 3:
        raise ValueError(f"concurrency_range is (start, end[, step]), got {concurrency_range}")
    cmd = [
        str(tools.perf_analyzer),
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "-b",
        str(batch_size),
        "--concurrency-range",
        ":".join(str(c) for c in concurrency_range),
        "--measurement-interval",
        str(measurement_interval_ms),
        "--max-trials",
        str(max_trials),
        "--stability-percentage",
        f"{stability_percentage:g}",
        "-f",
        str(csv_path),
        "--verbose-csv",
    ]
    if input_data is not None:
        cmd += ["--input-data", str(input_data)]
    for name, dims in (shapes or {}).items():
        cmd += ["--shape", f"{name}:{','.join(str(d) for d in dims)}"]
    return [*cmd, *extra_args]


def run_perf_analyzer(
    model: str,
    url: str,
    protocol: Protocol = "grpc",
    concurrency_range: tuple[int, ...] = (1, 1),
    batch_size: int = 1,
    input_data: Path | None = None,
    measurement_interval_ms: int = 1000,
    shapes: Mapping[str, Sequence[int]] | None = None,
    max_trials: int = 10,
    stability_percentage: float = 10.0,
    extra_args: Sequence[str] = (),
    timeout_s: float = 600.0,
    tools: ServingTools | None = None,
) -> list[PerfRow]:
    """Measure `model` at `url` ("host:port" for `protocol`) over a concurrency range.

    `input_data` is a perf_analyzer JSON data file (default: random data); `shapes` fix
    variable dims (`{"tokens": [32]}`). Raises `PerfAnalyzerError` with the tool's output
    when it fails (for example when measurements do not stabilise within `max_trials`).
    """
    tools = tools if tools is not None else ServingTools.from_project_root()
    tools.require(triton=False)
    with tempfile.TemporaryDirectory(prefix="perf_analyzer-") as tmp:
        csv_path = Path(tmp) / "report.csv"
        cmd = perf_analyzer_command(
            tools,
            model,
            url,
            csv_path,
            protocol=protocol,
            concurrency_range=concurrency_range,
            batch_size=batch_size,
            input_data=input_data,
            measurement_interval_ms=measurement_interval_ms,
            shapes=shapes,
            max_trials=max_trials,
            stability_percentage=stability_percentage,
            extra_args=extra_args,
        )
        try:
            result = subprocess.run(
                cmd,
                env=perf_analyzer_environment(tools),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PerfAnalyzerError(f"perf_analyzer timed out after {timeout_s:g} s") from exc
        output = (result.stdout + result.stderr)[-OUTPUT_TAIL_CHARS:]
        if result.returncode != 0:
            hint = (
                "\n(a shared library is missing: `apt-get install libb64-0d`, or `make bootstrap`)"
                if "error while loading shared libraries" in output
                else ""
            )
            raise PerfAnalyzerError(
                f"perf_analyzer exited with code {result.returncode}: {' '.join(cmd)}\n"
                f"{output}{hint}"
            )
        if not csv_path.exists():
            raise PerfAnalyzerError(f"perf_analyzer wrote no report\n{output}")
        rows = parse_perf_csv(csv_path)
    if not rows:
        raise PerfAnalyzerError(f"perf_analyzer report has no rows\n{output}")
    return rows
