"""The load benchmark's verdicts: each of the issue's ratios at concurrency 8, from the rows of
one run, and the baseline's request bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.gateway_load import LoadResult, invocations_script, target_checks


def _row(path: str, rate: float, p50: float, p99: float) -> LoadResult:
    return LoadResult(path, 8, rate, rate, p50, p50 * 1.5, p99, 0)


def test_each_target_is_a_ratio_of_two_paths_of_the_same_run() -> None:
    results = [
        _row("triton_direct", rate=2000, p50=1.0, p99=2.0),
        _row("mlflow_serve", rate=400, p50=10.0, p99=30.0),
        _row("gateway_miss", rate=700, p50=8.0, p99=7.0),
        _row("gateway_hit", rate=3000, p50=1.6, p99=4.0),
        LoadResult("gateway_miss", 32, 1e6, 1e6, 0.1, 0.1, 0.1, 0),  # another concurrency
    ]

    checks = {check.what: check for check in target_checks(results)}

    miss_vs_mlflow = checks["cache-miss throughput / mlflow models serve"]
    assert miss_vs_mlflow.ratio == pytest.approx(1.75)
    assert not miss_vs_mlflow.met  # a floor of 2
    assert checks["cache-miss throughput / Triton direct"].ratio == pytest.approx(0.35)
    assert checks["cache-miss throughput / Triton direct"].met  # the floor itself
    assert checks["cache-miss p99 / Triton direct p99"].ratio == pytest.approx(3.5)
    assert not checks["cache-miss p99 / Triton direct p99"].met  # a ceiling of 3
    assert checks["cache-hit p50 / Triton direct p50"].ratio == pytest.approx(1.6)


def test_a_ratio_over_failed_requests_is_not_met() -> None:
    results = [
        _row("triton_direct", rate=2000, p50=1.0, p99=2.0),
        LoadResult("mlflow_serve", 8, 100, 100, 10.0, 15.0, 30.0, errors=5_000),
        _row("gateway_miss", rate=700, p50=8.0, p99=5.0),
        _row("gateway_hit", rate=3000, p50=1.0, p99=4.0),
    ]

    checks = {check.what: check for check in target_checks(results)}

    assert checks["cache-miss throughput / mlflow models serve"].ratio == pytest.approx(7.0)
    assert not checks["cache-miss throughput / mlflow models serve"].met
    assert checks["cache-miss throughput / Triton direct"].errors == 0


def test_the_baseline_sends_the_models_own_inputs_row_by_row(tmp_path: Path) -> None:
    data = tmp_path / "input.json"
    data.write_text(json.dumps({"data": [{"features": [1.5, 2.0]}, {"features": [3.0, 4.0]}]}))

    script = invocations_script(data)

    assert '[==[{"inputs": [[1.5, 2.0]]}]==]' in script  # "]]" inside would end [[...]]
    assert '[==[{"inputs": [[3.0, 4.0]]}]==]' in script
    assert '"/invocations"' in script
    assert "]==]" not in json.dumps({"inputs": [[1.5, 2.0]]})
