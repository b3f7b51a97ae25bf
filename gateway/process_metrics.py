"""CPU and memory of every process of a multi-worker gateway.

prometheus_client's process collector describes only the process that answers the scrape, and
its multiprocess mode (several uvicorn workers) has no process metrics at all. This collector
reads ``/proc`` for the uvicorn supervisor and everything below it (its workers) at scrape
time, and reports the same series names as the single-process collector with a ``pid`` label,
so ``sum by (instance) (rate(process_cpu_seconds_total{job="gateway"}[5m]))`` and
``sum by (instance) (process_resident_memory_bytes{job="gateway"})`` hold in both modes.
Linux only; on another system it reports nothing.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROC = Path("/proc")
# Fields of /proc/<pid>/stat after the command name, counted from 0: state is 0.
_PPID, _UTIME, _STIME, _RSS = 1, 11, 12, 21


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    ppid: int
    cpu_seconds: float
    resident_bytes: int


def read_stat(pid: int, proc: Path = PROC) -> ProcessSample | None:
    """One process's CPU time (user + system) and RSS; None if it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or parentheses itself.
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcessSample(
        pid=pid,
        ppid=int(fields[_PPID]),
        cpu_seconds=(int(fields[_UTIME]) + int(fields[_STIME])) / ticks,
        resident_bytes=int(fields[_RSS]) * resource.getpagesize(),
    )


def process_tree(root_pid: int, proc: Path = PROC) -> list[ProcessSample]:
    """``root_pid`` and all its descendants, as they are now."""
    samples = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit() and (sample := read_stat(int(entry.name), proc)) is not None:
            samples[sample.pid] = sample
    if root_pid not in samples:
        return []
    children: dict[int, list[int]] = {}
    for sample in samples.values():
        children.setdefault(sample.ppid, []).append(sample.pid)
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(samples[pid])
        todo.extend(children.get(pid, ()))
    return sorted(tree, key=lambda sample: sample.pid)


class GatewayProcessCollector(Collector):
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` per ``pid`` of the
    process tree under ``root_pid`` (the uvicorn supervisor: a worker's parent). For the
    multiprocess registry only: the default registry already has the unlabelled series."""

    def __init__(self, root_pid: int, proc: Path = PROC) -> None:
        self.root_pid = root_pid
        self.proc = proc

    def collect(self) -> Iterable[Metric]:
        return self._families(process_tree(self.root_pid, self.proc))

    def _families(self, samples: list[ProcessSample]) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds, per gateway process",
            labels=["pid"],
        )
        memory = GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory size in bytes, per gateway process",
            labels=["pid"],
        )
        for sample in samples:
            cpu.add_metric([str(sample.pid)], sample.cpu_seconds)
            memory.add_metric([str(sample.pid)], float(sample.resident_bytes))
        yield cpu
        yield memory
