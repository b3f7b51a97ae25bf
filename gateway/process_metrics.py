"""CPU and memory of a process and everything below it: a multi-worker gateway, and Triton.

prometheus_client's process collector describes only the process that answers the scrape, and
its multiprocess mode (several uvicorn workers) has no process metrics at all. This collector
reads ``/proc`` for a root process and everything below it at scrape time, and reports the
same series names as the single-process collector with a ``pid`` label, so
``sum by (instance) (rate(process_cpu_seconds_total{job="gateway"}[5m]))`` and
``sum by (instance) (process_resident_memory_bytes{job="gateway"})`` hold in both modes.

Triton's own metrics give the node's CPU and memory, not its process's. ``python -m
gateway.process_metrics --command tritonserver`` serves the same series for the
``tritonserver`` process and its python-backend stubs (job ``triton-process``): a sidecar of
the Triton pod in ``k8s/`` (shared process namespace), a thread of ``trademaster up`` here.
Linux only; on another system it reports nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROC = Path("/proc")
# The Triton pod's process-exporter port (``monitoring/prometheus.yml``, job triton-process).
EXPORTER_PORT = 9256
# A pod's metrics port is reached by Prometheus from outside the pod (NetworkPolicy-limited).
ALL_INTERFACES = "0.0.0.0"  # nosec B104 # noqa: S104
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


def find_command(name: str, proc: Path = PROC) -> int | None:
    """The oldest process whose program is ``name`` (argv[0]'s file name), or None."""
    for entry in sorted(
        (entry for entry in proc.iterdir() if entry.name.isdigit()) if proc.is_dir() else (),
        key=lambda entry: int(entry.name),
    ):
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if argv0 and Path(argv0.decode(errors="replace")).name == name:
            return int(entry.name)
    return None


class ProcessTreeCollector(Collector):
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` per ``pid`` of the
    process tree under ``root_pid`` (a pid, or a callable asked at every scrape, so that a
    restarted server is followed; None: no series). Not for the default registry, which
    already has the unlabelled series of the process itself."""

    def __init__(
        self, root_pid: int | Callable[[], int | None], subject: str, proc: Path = PROC
    ) -> None:
        self._root_pid = root_pid
        self.subject = subject
        self.proc = proc

    def collect(self) -> Iterable[Metric]:
        root = self._root_pid() if callable(self._root_pid) else self._root_pid
        return self._families(process_tree(root, self.proc) if root is not None else [])

    def _families(self, samples: list[ProcessSample]) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds_total",
            f"Total user and system CPU time spent in seconds, per {self.subject} process",
            labels=["pid"],
        )
        memory = GaugeMetricFamily(
            "process_resident_memory_bytes",
            f"Resident memory size in bytes, per {self.subject} process",
            labels=["pid"],
        )
        for sample in samples:
            cpu.add_metric([str(sample.pid)], sample.cpu_seconds)
            memory.add_metric([str(sample.pid)], float(sample.resident_bytes))
        yield cpu
        yield memory


def gateway_collector(supervisor_pid: int) -> ProcessTreeCollector:
    """The uvicorn supervisor (a worker's parent) and its workers."""
    return ProcessTreeCollector(supervisor_pid, "gateway")


class ProcessExporter:
    """``/metrics`` of one process tree on ``address:port`` (0: a free port), served by a
    daemon thread until ``close``."""

    def __init__(self, collector: ProcessTreeCollector, port: int = 0, address: str = "") -> None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(collector)
        self._server, self._thread = start_http_server(port, address, registry)
        self.port = int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.process_metrics",
        description="Serve CPU and memory of a process tree for Prometheus.",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--command", help="the oldest process running this program")
    target.add_argument("--pid", type=int, help="this process")
    parser.add_argument("--port", type=int, default=EXPORTER_PORT)
    parser.add_argument("--address", default=ALL_INTERFACES)
    args = parser.parse_args(argv)
    root: int | Callable[[], int | None] = (
        args.pid if args.pid is not None else (lambda: find_command(args.command))
    )
    exporter = ProcessExporter(
        ProcessTreeCollector(root, args.command or f"pid {args.pid}"), args.port, args.address
    )
    print(f"process metrics of {args.command or args.pid} on :{exporter.port}/metrics", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
