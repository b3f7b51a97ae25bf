"""Latency summaries and result files shared by the benchmarks."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class LatencySummary:
    name: str
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, name: str, seconds: list[float]) -> LatencySummary:
        ms = np.asarray(seconds) * 1e3
        return cls(
            name=name,
            requests=len(ms),
            p50_ms=float(np.percentile(ms, 50)),
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            mean_ms=float(ms.mean()),
        )


def markdown_table(rows: list[LatencySummary], baseline: LatencySummary) -> str:
    lines = [
        "| path | requests | p50 ms | p90 ms | p99 ms | mean ms | p50 / baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.requests} | {row.p50_ms:.2f} | {row.p90_ms:.2f} | "
            f"{row.p99_ms:.2f} | {row.mean_ms:.2f} | {row.p50_ms / baseline.p50_ms:.2f}x |"
        )
    return "\n".join(lines)


def write_results(stem: str, payload: dict[str, object], table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    path = RESULTS / f"{stem}.md"
    path.write_text(table + "\n")
    return path


def as_dict(row: LatencySummary) -> dict[str, object]:
    return asdict(row)
