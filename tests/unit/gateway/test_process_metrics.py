"""CPU and memory of a multi-worker gateway's processes, read from /proc."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.process_metrics import GatewayProcessCollector, process_tree, read_stat

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, sample.labels["pid"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_process_of_the_tree_is_reported(child: subprocess.Popen[bytes]) -> None:
    registry = CollectorRegistry()
    registry.register(GatewayProcessCollector(os.getpid()))
    samples = _samples(registry)
    for pid in (os.getpid(), child.pid):
        assert samples[("process_cpu_seconds_total", str(pid))] >= 0
        assert samples[("process_resident_memory_bytes", str(pid))] > 0
    # This process has imported pytest: well above a page, and a counter never goes back.
    assert samples[("process_resident_memory_bytes", str(os.getpid()))] > 10 * 2**20
    before = samples[("process_cpu_seconds_total", str(os.getpid()))]
    sum(i * i for i in range(200_000))
    assert _samples(registry)[("process_cpu_seconds_total", str(os.getpid()))] >= before


def test_the_tree_starts_at_its_root(child: subprocess.Popen[bytes]) -> None:
    pids = [sample.pid for sample in process_tree(child.pid)]
    assert pids == [child.pid]
    assert os.getpid() not in pids


def test_a_vanished_root_reports_no_series() -> None:
    registry = CollectorRegistry()
    registry.register(GatewayProcessCollector(2**22 + 1))  # above the largest pid_max
    assert _samples(registry) == {}


def test_command_names_with_spaces_and_parentheses(tmp_path: Path) -> None:
    ticks, page = os.sysconf("SC_CLK_TCK"), resource.getpagesize()
    fields = ["S", "7", *["0"] * 9, str(3 * ticks), str(ticks), *["0"] * 8, "25"]
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(f"42 (uvicorn (a) b) {' '.join(fields)}\n")
    sample = read_stat(42, tmp_path)
    assert sample is not None
    assert (sample.ppid, sample.cpu_seconds, sample.resident_bytes) == (7, 4.0, 25 * page)
    assert read_stat(43, tmp_path) is None
