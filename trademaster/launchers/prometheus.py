"""Run Debian's Prometheus, Pushgateway and Alertmanager on 127.0.0.1 (``make up``, tests).

Prometheus runs ``monitoring/prometheus.yml``, the Kubernetes config, rendered for this machine:
the global settings, rule files, alerting and jobs are kept, and each job's targets (DNS names
inside the cluster) become the local ports of the same servers. Alertmanager runs
``monitoring/alertmanager.yml`` as it is. So what is checked here is what runs in ``k8s/``.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml

from trademaster.launchers.process import LocalServer, answers_ok, wait_until
from trademaster.launchers.tools import MissingToolError, project_root

MONITORING = project_root() / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"


def find_binary(name: str, package: str) -> Path:
    """``name`` on PATH; `MissingToolError` naming the Debian package otherwise."""
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(
            f"{name} not found on PATH: `apt-get install {package}` (or `make bootstrap`)"
        )
    return Path(found)


def local_prometheus_config(
    targets: Mapping[str, Sequence[str]],
    alertmanagers: Sequence[str] = (),
    source: Path = PROMETHEUS_CONFIG,
    rule_files: Sequence[Path] | None = None,
    interval_s: int | None = None,
) -> dict[str, Any]:
    """``source`` with every job's targets replaced by ``targets[job]`` ("host:port" each).

    Jobs of ``source`` missing from ``targets`` are dropped; a name in ``targets`` that is no
    job of ``source`` is an error (the two must not drift apart). Rule files stay those of
    ``source``, made absolute, unless ``rule_files`` replaces them; alerts go to
    ``alertmanagers`` (none: no alerting). ``interval_s`` shortens the scrape and evaluation
    intervals, so that a demo shows data within seconds; the Kubernetes file keeps its own.
    """
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(source.read_text()))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    unknown = sorted(set(targets) - set(jobs))
    if unknown:
        raise ValueError(f"{source} has no job {', '.join(unknown)}")
    local_jobs = []
    for name, job in jobs.items():
        if name not in targets:
            continue
        for key in [key for key in job if key.endswith("_sd_configs")]:
            del job[key]
        job["static_configs"] = [{"targets": list(targets[name])}]
        local_jobs.append(job)
    config["scrape_configs"] = local_jobs

    if rule_files is None:
        config["rule_files"] = [str(source.parent / pattern) for pattern in config["rule_files"]]
    else:
        config["rule_files"] = [str(path.resolve()) for path in rule_files]

    if alertmanagers:
        (sender, *_) = config.get("alerting", {}).get("alertmanagers") or [{}]
        sender = {key: value for key, value in sender.items() if not key.endswith("_configs")}
        config["alerting"] = {
            "alertmanagers": [{**sender, "static_configs": [{"targets": list(alertmanagers)}]}]
        }
    else:
        config.pop("alerting", None)

    if interval_s is not None:
        interval = f"{interval_s}s"
        settings = config.setdefault("global", {})
        settings["scrape_interval"] = settings["evaluation_interval"] = interval
        # A scrape may not outlast its interval.
        timeout_s = _seconds(settings.get("scrape_timeout", "10s"))
        settings["scrape_timeout"] = f"{min(timeout_s, interval_s)}s"
    return config


def _seconds(duration: str) -> int:
    """A Prometheus duration of whole seconds or minutes ("10s", "1m") in seconds."""
    units = {"s": 1, "m": 60}
    return int(duration[:-1]) * units[duration[-1]]


def write_config(path: Path, config: Mapping[str, Any], source: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Generated from {source} by {__name__}: edit that file, not this one.\n"
    path.write_text(header + yaml.safe_dump(dict(config), sort_keys=False))
    return path


def _ready(url: str) -> bool:
    return answers_ok(f"{url}/-/ready")


class _PrometheusProjectServer(LocalServer):
    """A server of the Prometheus project: one port on 127.0.0.1, ready at ``/-/ready``, and
    its files (data, log) in ``work_dir``."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        if self.is_running():
            raise RuntimeError(f"{self.program} already running (pid {self.pid})")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            self.command(),
            self.ready,
            f"{self.program} {self.url}/-/ready",
            cwd=self.work_dir,
            fresh_log=True,
        )
        return self

    def ready(self) -> bool:
        return _ready(self.url)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout_s: float) -> None:
        """Polls ``predicate`` until it holds; `ServerStartError` with this server's log
        if the server exits first or ``timeout_s`` passes."""
        wait_until(predicate, timeout_s, what, proc=self._proc, log_path=self.log_path)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class Pushgateway(_PrometheusProjectServer):
    """``prometheus-pushgateway``; pushed groups are kept in ``work_dir`` across starts."""

    program = "prometheus-pushgateway"
    log_name = "pushgateway.log"

    def __init__(
        self, work_dir: Path, port: int | None = None, startup_timeout_s: float = 30.0
    ) -> None:
        super().__init__(work_dir, port, startup_timeout_s)
        self.binary = find_binary("prometheus-pushgateway", "prometheus-pushgateway")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--web.listen-address={self.address}",
            f"--persistence.file={self.work_dir / 'pushgateway.data'}",
            "--persistence.interval=1m",
        ]


class Alertmanager(_PrometheusProjectServer):
    """``prometheus-alertmanager`` running ``config`` (default: monitoring/alertmanager.yml),
    alone (no cluster gossip); silences and the notification log are kept in ``work_dir``."""

    program = "prometheus-alertmanager"
    log_name = "alertmanager.log"

    def __init__(
        self,
        work_dir: Path,
        config: Path = ALERTMANAGER_CONFIG,
        port: int | None = None,
        startup_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(work_dir, port, startup_timeout_s)
        self.config = config.resolve()
        self.binary = find_binary("prometheus-alertmanager", "prometheus-alertmanager")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config}",
            f"--storage.path={self.work_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ]


class PrometheusServer(_PrometheusProjectServer):
    """``prometheus`` running monitoring/prometheus.yml rendered for this machine
    (`local_prometheus_config`): ``targets`` maps job names to "host:port" targets; its own
    job, ``prometheus``, is added. The TSDB is kept in ``work_dir`` for ``retention``."""

    program = "prometheus"
    log_name = "prometheus.log"

    def __init__(
        self,
        work_dir: Path,
        targets: Mapping[str, Sequence[str]],
        alertmanagers: Sequence[str] = (),
        port: int | None = None,
        rule_files: Sequence[Path] | None = None,
        interval_s: int | None = None,
        retention: str = "7d",
        source: Path = PROMETHEUS_CONFIG,
        startup_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(work_dir, port, startup_timeout_s)
        self.binary = find_binary("prometheus", "prometheus")
        self.source = source
        self.config = local_prometheus_config(
            {**targets, "prometheus": [self.address]},
            alertmanagers,
            source=source,
            rule_files=rule_files,
            interval_s=interval_s,
        )
        self.config_path = self.work_dir / "prometheus.yml"
        self.retention = retention
        self.interval_s = interval_s

    def command(self) -> list[str]:
        command = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.address}",
        ]
        if self.interval_s is not None:
            # Firing alerts are resent every minute by default, and the first send is dropped
            # while Alertmanager is still being discovered: with a short interval, resend at it.
            command.append(f"--rules.alert.resend-delay={self.interval_s}s")
        return command

    def start(self) -> Self:
        write_config(self.config_path, self.config, self.source)
        return super().start()


@dataclass(frozen=True)
class Monitoring:
    prometheus: PrometheusServer
    pushgateway: Pushgateway
    alertmanager: Alertmanager


@contextmanager
def monitoring_servers(
    work_dir: Path,
    gateway: str,
    triton_metrics: Sequence[str],
    triton_process: Sequence[str] = (),
    serving_agent: Sequence[str] = (),
    prometheus_port: int | None = None,
    pushgateway_port: int | None = None,
    alertmanager_port: int | None = None,
    interval_s: int | None = None,
) -> Iterator[Monitoring]:
    """Pushgateway, Alertmanager and a Prometheus that scrapes them, the gateway, every
    Triton replica, their process exporters and their serving agents ("host:port" each; none:
    not scraped), all in ``work_dir``; every one is stopped when the block exits."""
    with ExitStack() as stack:
        pushgateway = stack.enter_context(Pushgateway(work_dir / "pushgateway", pushgateway_port))
        alertmanager = stack.enter_context(
            Alertmanager(work_dir / "alertmanager", port=alertmanager_port)
        )
        prometheus = stack.enter_context(
            PrometheusServer(
                work_dir / "prometheus",
                targets={
                    "gateway": [gateway],
                    "triton": list(triton_metrics),
                    **({"triton-process": list(triton_process)} if triton_process else {}),
                    **({"serving-agent": list(serving_agent)} if serving_agent else {}),
                    "pushgateway": [pushgateway.address],
                    "alertmanager": [alertmanager.address],
                },
                alertmanagers=[alertmanager.address],
                port=prometheus_port,
                interval_s=interval_s,
            )
        )
        yield Monitoring(prometheus, pushgateway, alertmanager)
