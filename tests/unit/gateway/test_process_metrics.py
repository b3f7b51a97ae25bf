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

from gateway.process_metrics import (
    ProcessExporter,
    ProcessTreeCollector,
    find_command,
    gateway_collector,
    process_tree,
    read_stat,
)

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
    registry.register(gateway_collector(os.getpid()))
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
    registry.register(gateway_collector(2**22 + 1))  # above the largest pid_max
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


def test_a_program_is_found_by_name_and_followed_across_restarts(tmp_path: Path) -> None:
    def process(pid: int, argv: list[str]) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv))

    process(9, ["/usr/bin/python3", "tritonserver"])  # an argument, not the program
    process(30, ["/opt/tritonserver/bin/tritonserver", "--model-repository=/models"])
    process(31, ["/opt/tritonserver/backends/python/triton_python_backend_stub", "x"])
    process(12, ["/bin/sh"])
    assert find_command("tritonserver", tmp_path) == 30
    assert find_command("redis-server", tmp_path) is None

    roots = iter([None, child_pid := os.getpid()])
    collector = ProcessTreeCollector(lambda: next(roots), "tritonserver")
    registry = CollectorRegistry()
    registry.register(collector)
    assert _samples(registry) == {}  # not started yet: no series, no error
    assert ("process_resident_memory_bytes", str(child_pid)) in _samples(registry)


def test_the_exporter_serves_the_tree_over_http(child: subprocess.Popen[bytes]) -> None:
    import httpx

    exporter = ProcessExporter(ProcessTreeCollector(child.pid, "tritonserver"), address="127.0.0.1")
    try:
        text = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).text
    finally:
        exporter.close()
    pids = {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert pids == {str(child.pid)}  # the tree under the child: not this process
    assert "per tritonserver process" in text
