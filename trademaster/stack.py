"""``trademaster up``: the whole stack on one machine.

Starts Redis, runs the training DAG if no model is deployed yet (otherwise re-materialises the
existing features into the fresh Redis), starts Triton, Prometheus (with its Pushgateway and
Alertmanager) and the gateway, prints the URLs and a sample request with its real answer, and
serves until Ctrl-C. Everything it starts, it stops.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from trademaster.contract.deployment_status import read_statuses, status_path
from trademaster.contract.models import ModelName
from trademaster.launchers.mlflow_server import MlflowServer
from trademaster.launchers.postgres_server import PostgresServer
from trademaster.launchers.process import free_port, kept_secret
from trademaster.launchers.prometheus import Monitoring, monitoring_servers
from trademaster.launchers.redis_server import RedisServer
from trademaster.launchers.supervisor import Restarter
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.airflow_api import AirflowApi, RunResult
from trademaster.pipeline.airflow_runner import DAG_ID
from trademaster.pipeline.airflow_service import AirflowLogin, AirflowService
from trademaster.serving.__main__ import AgentSettings, RunningAgent
from trademaster.settings import PipelineSettings

SAMPLE_MODEL = ModelName.RISK


class StackSettings(BaseSettings):
    """Ports of the local stack; 0 picks a free port."""

    model_config = SettingsConfigDict(env_prefix="STACK_", env_file=".env", extra="ignore")

    gateway_port: int = Field(default=8080, ge=0, le=65535)
    # Two uvicorn workers use both cores (benchmarks/results/gateway_load.md).
    gateway_workers: int = Field(default=2, ge=1, le=16)
    redis_port: int = Field(default=0, ge=0, le=65535, description="Feast online store")
    cache_redis_port: int = Field(default=0, ge=0, le=65535, description="Prediction cache")
    # tritonserver processes on the one model repository, each with its serving agent; the
    # gateway balances every call over them. The four ports below are the first replica's
    # (the one the DAG's direct loads go to); the others pick free ones.
    triton_replicas: int = Field(default=1, ge=1, le=8)
    triton_http_port: int = Field(default=0, ge=0, le=65535)
    triton_grpc_port: int = Field(default=0, ge=0, le=65535)
    triton_metrics_port: int = Field(default=0, ge=0, le=65535)
    serving_agent_port: int = Field(default=0, ge=0, le=65535, description="/ready, /metrics")
    # --once waits this long for the serving agent to report every served version answering.
    agent_converge_timeout_s: float = Field(default=120.0, gt=0)
    mlflow_port: int = Field(default=5000, ge=0, le=65535, description="busy: a free one")
    airflow_port: int = Field(default=8090, ge=0, le=65535, description="Airflow UI, REST API")
    postgres_port: int = Field(default=0, ge=0, le=65535, description="Airflow's, MLflow's DB")
    prometheus_port: int = Field(default=9090, ge=0, le=65535, description="busy: a free one")
    pushgateway_port: int = Field(default=9091, ge=0, le=65535, description="busy: a free one")
    alertmanager_port: int = Field(default=9093, ge=0, le=65535, description="busy: a free one")
    # Scrape and rule evaluation interval of the local Prometheus (Kubernetes: 15 s), short
    # so that the first minutes of a demo show data.
    prometheus_interval_s: int = Field(default=5, ge=1, le=60)
    # Task slots of the LocalExecutor: the per-model branches train in parallel.
    airflow_parallelism: int = Field(default=3, ge=1, le=32)
    training_timeout_s: float = Field(default=2400.0, gt=0, description="First DAG run")
    startup_timeout_s: float = Field(default=180.0, gt=0)


def say(message: str) -> None:
    print(f"[up] {message}", flush=True)


def deployed_models(repository: Path) -> list[str]:
    """Catalog models with at least one exported version in the repository."""
    from exporters.registered import exported_versions
    from trademaster.pipeline.plan import MODELS

    return [str(model) for model in MODELS if exported_versions(repository, model)]


def missing_models(repository: Path) -> list[str]:
    from trademaster.pipeline.plan import MODELS

    deployed = set(deployed_models(repository))
    return [str(model) for model in MODELS if model not in deployed]


def _port_or_free(port: int) -> int | None:
    """The configured port if it is free, else None (the server picks a free one)."""
    import socket

    if port == 0:
        return None
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            say(f"port {port} is busy; using a free port instead")
            return None
    return port


def sample_requests(settings: PipelineSettings) -> dict[str, dict[str, Any]]:
    """One request per catalog model, on entities with fresh features: the most recent
    opening trade's user and symbol, the latest headline, three generated symbols."""
    import sqlalchemy as sa

    from trademaster.warehouse import schema

    trades, headlines, symbols = schema.trades.c, schema.headlines.c, schema.symbols.c
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.connect() as connection:
        user_id, symbol = connection.execute(
            sa.select(trades.user_id, trades.symbol)
            .where(trades.action == "open")
            .order_by(trades.ts.desc())
            .limit(1)
        ).one()
        headline = connection.execute(
            sa.select(headlines.headline).order_by(headlines.ts.desc()).limit(1)
        ).scalar_one()
        portfolio = list(
            connection.execute(
                sa.select(symbols.symbol)
                .where(symbols.source == "generated")
                .order_by(symbols.symbol)
                .limit(3)
            ).scalars()
        )
    engine.dispose()
    requests: dict[ModelName, dict[str, Any]] = {
        SAMPLE_MODEL: {"user_id": int(user_id), "symbol": str(symbol)},
        ModelName.BEHAVIOR: {"user_id": int(user_id)},
        ModelName.PRICE: {"symbol": str(symbol)},
        ModelName.SENTIMENT: {"text": str(headline)},
        ModelName.PORTFOLIO: {"symbols": portfolio},
    }
    return {str(name): {"model_name": str(name), **body} for name, body in requests.items()}


def local_api_key(settings: PipelineSettings) -> str:
    """A random API key for this machine's stack, created once in var/ (mode 0600).

    The gateway only ever sees its SHA-256; the key itself is printed for the sample curl.
    """
    return kept_secret(settings.resolved_data_dir / "local_api_key", nbytes=24)


@contextmanager
def gateway_process(
    settings: PipelineSettings,
    port: int | None,
    redis_url: str,
    feast_redis: str,
    triton_grpc: str,
    api_key: str,
    workers: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``python -m gateway`` on ``port`` (None: a free one); ``extra_env`` (GATEWAY_*) goes
    on top of what the stack sets."""
    from gateway.auth import hash_key
    from trademaster.launchers.process import free_port, stop_process

    chosen = port or free_port()
    keys = [
        {"name": "local", "sha256": hash_key(api_key), "scopes": ["predict", "admin", "metrics"]}
    ]
    env = {
        "GATEWAY_API_KEYS": json.dumps(keys),
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_PORT": str(chosen),
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_FEAST_REDIS": feast_redis,
        "GATEWAY_TRITON_GRPC_URL": triton_grpc,
        "GATEWAY_FEATURE_STORE_ROOT": str(settings.feature_store_root.resolve()),
        "GATEWAY_REQUIRED_MODELS": json.dumps(deployed_models(settings.model_repository)),
        "GATEWAY_DEPLOYMENT_STATUS_PATH": str(status_path(settings.model_repository.resolve())),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_PREDICTION_LOG_URL": settings.resolved_prediction_log_url,
    }
    log_path = settings.resolved_data_dir / "gateway.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            env={**gateway_base_environment(), **env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, chosen
    finally:
        stop_process(process, grace_s=10)


def gateway_base_environment() -> dict[str, str]:
    """This process's environment without what importing feast put in it: feast sets
    PROMETHEUS_MULTIPROC_DIR at import, which would put the gateway's metrics into (slower)
    multiprocess storage in a folder of ours."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
    }


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}; see var/gateway.log")
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"gateway at {base_url} not ready after {timeout_s:.0f} s")


@dataclass(frozen=True)
class TritonReplica:
    """One tritonserver of the stack, its serving agent and its process exporter."""

    server: TritonServer
    agent: RunningAgent
    process_metrics_port: int


@dataclass(frozen=True)
class RunningStack:
    settings: PipelineSettings
    base_url: str
    replicas: tuple[TritonReplica, ...]
    cache_redis: RedisServer
    online_redis: RedisServer
    api_key: str
    started: float
    airflow: AirflowLogin
    monitoring: Monitoring

    @property
    def triton(self) -> TritonServer:
        """The first replica: the DAG's direct loads go to it, benchmarks call it directly."""
        return self.replicas[0].server

    @property
    def mlflow_url(self) -> str:
        return self.settings.resolved_mlflow_tracking_uri

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@contextmanager
def running_stack(
    settings: PipelineSettings, stack_settings: StackSettings
) -> Iterator[RunningStack]:
    """Redis, PostgreSQL, MLflow, Triton, Airflow (which trains and deploys the models if none
    is deployed yet; otherwise the existing features are re-materialised) and the gateway,
    ready to serve; everything is stopped when the block exits."""
    from trademaster.features.build import apply_and_materialize
    from trademaster.warehouse.seed import seed_if_empty

    work = settings.resolved_data_dir
    work.mkdir(parents=True, exist_ok=True)
    settings.model_repository.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with ExitStack() as stack:
        say("starting redis-server x2 (Feast online store, prediction cache)")
        online_redis = stack.enter_context(
            RedisServer(work / "redis-online", port=_port_or_free(stack_settings.redis_port))
        )
        cache_redis = stack.enter_context(
            RedisServer(work / "redis-cache", port=_port_or_free(stack_settings.cache_redis_port))
        )
        feast_redis = f"127.0.0.1:{online_redis.port}"
        settings = settings.model_copy(update={"online_store_redis": feast_redis})
        say(f"starting postgres (Airflow's and MLflow's databases, kept in {work / 'postgres'})")
        postgres = stack.enter_context(
            PostgresServer(
                port=_port_or_free(stack_settings.postgres_port), data_dir=work / "postgres"
            )
        )
        if not settings.mlflow_tracking_uri:
            say("starting mlflow server (tracking, model registry, artifacts)")
            mlflow = stack.enter_context(
                MlflowServer(
                    work / "mlflow-server",
                    backend_store_uri=postgres.create_database("mlflow"),
                    artifacts_dir=settings.mlflow_artifact_root,
                    port=_port_or_free(stack_settings.mlflow_port),
                )
            )
            settings = settings.model_copy(update={"mlflow_tracking_uri": mlflow.url})

        missing = missing_models(settings.model_repository)
        if missing and (seeded := seed_if_empty(settings)) is not None:
            say(
                f"the warehouse was empty: seeded demo data ({seeded.n_users:,} generated users, "
                f"{seeded.n_trades:,} trades, {seeded.n_symbols} symbols, bars up to "
                f"{seeded.last_bar})"
            )
        if not missing:
            say("every model is deployed: loading the existing features into Redis")
            apply_and_materialize(settings)

        served = deployed_models(settings.model_repository)
        replicas = stack.enter_context(triton_replicas(settings, served, stack_settings))
        triton = replicas[0].server
        api_key = local_api_key(settings)
        port = _port_or_free(stack_settings.gateway_port) or free_port()
        base_url = f"http://127.0.0.1:{port}"
        # Before Airflow, so that the DAG's monitoring tasks can push; until the gateway is up,
        # its scrapes fail (up == 0), as they would for a pod that is starting.
        say("starting prometheus, pushgateway, alertmanager (monitoring/*.yml)")
        monitoring = stack.enter_context(
            monitoring_servers(
                work / "monitoring",
                gateway=f"127.0.0.1:{port}",
                triton_metrics=[f"127.0.0.1:{r.server.metrics_port}" for r in replicas],
                triton_process=[f"127.0.0.1:{r.process_metrics_port}" for r in replicas],
                serving_agent=[f"127.0.0.1:{r.agent.port}" for r in replicas],
                prometheus_port=_port_or_free(stack_settings.prometheus_port),
                pushgateway_port=_port_or_free(stack_settings.pushgateway_port),
                alertmanager_port=_port_or_free(stack_settings.alertmanager_port),
                interval_s=stack_settings.prometheus_interval_s,
            )
        )
        # What the scheduled runs deploy into: the first Triton at once, the others through
        # their agents (served_versions.json), all through this gateway (canary).
        settings = settings.model_copy(
            update={
                "triton_url": triton.http_url,
                "gateway_url": base_url,
                "gateway_api_key": SecretStr(api_key),
                "pushgateway_url": monitoring.pushgateway.address,
            }
        )
        say("starting Airflow: api-server, scheduler, dag-processor (LocalExecutor, PostgreSQL)")
        airflow = stack.enter_context(
            AirflowService(
                settings,
                work / "airflow-service",
                postgres.create_database("airflow"),
                port=_port_or_free(stack_settings.airflow_port),
                parallelism=stack_settings.airflow_parallelism,
            )
        )
        if missing:
            say(f"not deployed yet: {', '.join(missing)}; training through the scheduler")
            first_training_run(airflow, stack_settings.training_timeout_s)
        models = deployed_models(settings.model_repository)
        if not models:
            raise RuntimeError("the pipeline deployed no model; see the DAG run above")

        say("starting the gateway")
        process, port = stack.enter_context(
            gateway_process(
                settings,
                port,
                cache_redis.url,
                feast_redis,
                ",".join(replica.server.grpc_url for replica in replicas),
                api_key,
                stack_settings.gateway_workers,
            )
        )
        wait_ready(base_url, process, stack_settings.startup_timeout_s)
        yield RunningStack(
            settings,
            base_url,
            tuple(replicas),
            cache_redis,
            online_redis,
            api_key,
            started,
            airflow.login(),
            monitoring,
        )
        say(
            "stopping gateway, airflow, prometheus, pushgateway, alertmanager, serving agents, "
            "tritonservers, mlflow server, postgres and redis-servers"
        )


@contextmanager
def triton_replicas(
    settings: PipelineSettings, deployed: list[str], stack_settings: StackSettings
) -> Iterator[list[TritonReplica]]:
    """``stack_settings.triton_replicas`` tritonservers on the one model repository, each
    started with the ``deployed`` models and with its serving agent (a thread here, a sidecar
    in k8s/) that keeps it on served_versions.json and heals a model that fails its probe; a
    tritonserver that exits by itself is started again (``Restarter``, as the kubelet would).
    Deployed models the manifest does not list yet (a repository older than the manifest) are
    published first, so the agents keep them."""
    from exporters.registered import publish_unlisted
    from gateway.process_metrics import ProcessExporter, ProcessTreeCollector

    if added := publish_unlisted(settings.model_repository, deployed):
        say(f"serving manifest: listed the deployed {', '.join(added)}")
    count = stack_settings.triton_replicas
    work = settings.resolved_data_dir
    replicas: list[TritonReplica] = []
    with ExitStack() as stack:
        for index in range(count):
            first = index == 0
            label = _replica_name(index, count)
            say(f"starting {label} with {', '.join(deployed) or 'no model yet'}")
            server = stack.enter_context(
                TritonServer(
                    settings.model_repository,
                    work / ("triton" if first else f"triton-{index}"),
                    models=deployed,
                    http_port=_port_or_free(stack_settings.triton_http_port) if first else None,
                    grpc_port=_port_or_free(stack_settings.triton_grpc_port) if first else None,
                    metrics_port=(
                        _port_or_free(stack_settings.triton_metrics_port) if first else None
                    ),
                    startup_timeout_s=stack_settings.startup_timeout_s,
                )
            )
            say(f"starting the serving agent of {label} (served_versions.json; probes, heals)")
            agent = RunningAgent(
                AgentSettings(
                    model_repository=settings.model_repository,
                    triton_grpc_address=server.grpc_url,
                    address="127.0.0.1",
                    port=stack_settings.serving_agent_port if first else 0,
                )
            )
            stack.callback(agent.close)
            exporter = ProcessExporter(
                ProcessTreeCollector(_pid_of(server), "tritonserver"), address="127.0.0.1"
            )
            stack.callback(exporter.close)
            replicas.append(TritonReplica(server, agent, exporter.port))
        # Entered last, so stopped first: nothing is restarted while the stack stops.
        restarter = Restarter(
            [(_replica_name(index, count), r.server) for index, r in enumerate(replicas)], say
        ).start()
        stack.callback(restarter.close)
        yield replicas


def _replica_name(index: int, count: int) -> str:
    return f"tritonserver {index + 1}/{count}" if count > 1 else "tritonserver"


def _pid_of(server: TritonServer) -> Callable[[], int | None]:
    return lambda: server.running_pid


def wait_converged(replicas: Sequence[TritonReplica], timeout_s: float) -> list[dict[str, Any]]:
    """Each agent's status once all are ready (their Triton serves the manifest, every version
    answered its probe), or their last statuses after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = [replica.agent.agent.status() for replica in replicas]
        if all(status["ready"] for status in statuses) or time.monotonic() > deadline:
            return statuses
        time.sleep(1)


def first_training_run(airflow: AirflowService, timeout_s: float) -> RunResult:
    """Follows the run the scheduler started when it first saw the (unpaused) DAG, or
    triggers one through the REST API; fails with the failed tasks and where their logs are."""
    with AirflowApi(airflow.login()) as api:
        active = api.active_runs(DAG_ID)
        run_id = active[0] if active else api.trigger(DAG_ID, note="make up: first training")
        say(f"DAG run {run_id} ({airflow.url}/dags/{DAG_ID}/runs/{run_id})")
        result = api.wait(DAG_ID, run_id, timeout_s, progress=lambda line: say(f"  {line}"))
    if result.state != "success":
        raise RuntimeError(
            f"DAG run {run_id} {result.state}: failed tasks {', '.join(result.failed_tasks())}; "
            f"logs in {airflow.home / 'logs'} and the Airflow UI ({airflow.url})"
        )
    say(f"DAG run {run_id} succeeded in {result.took_s:.0f} s")
    return result


@dataclass(frozen=True)
class SampleAnswer:
    model_name: str
    body: dict[str, Any]
    status_code: int
    text: str
    cache: str | None


def ask_every_model(stack: RunningStack) -> list[SampleAnswer]:
    answers = []
    for name, body in sample_requests(stack.settings).items():
        response = httpx.post(
            f"{stack.base_url}/predict", json=body, headers=stack.headers(), timeout=30
        )
        answers.append(
            SampleAnswer(
                name, body, response.status_code, response.text, response.headers.get("x-cache")
            )
        )
    return answers


def run_stack(once: bool) -> int:
    """Serves until Ctrl-C. With ``once``, a non-interactive check: exits 0 only if every
    catalog model is deployed and answered its sample request."""
    # A TERM while starting (or training) unwinds like Ctrl-C: everything started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    stack_settings = StackSettings()
    with running_stack(PipelineSettings(), stack_settings) as stack:
        answers = ask_every_model(stack)
        print_summary(stack, answers)
        failed = [
            f"{answer.model_name}: HTTP {answer.status_code} {_error_code(answer.text)}".strip()
            for answer in answers
            if answer.status_code != 200
        ]
        statuses = wait_converged(stack.replicas, stack_settings.agent_converge_timeout_s)
        for index, status in enumerate(statuses, start=1):
            if not status["ready"]:
                failed.append(f"serving agent {index} not ready: {json.dumps(status)[:600]}")
        if once:
            if failed:
                say(f"--once: not every model answered ({'; '.join(failed)}); exit 1")
                return 1
            say(
                "--once: every model deployed and answered, every serving agent converged; "
                "stopping everything"
            )
            return 0
        if len(failed) == len(answers):
            say("no model answered; see var/gateway.log")
            return 1
        wait_for_interrupt()
    return 0


def deployment_lines(stack: RunningStack, answers: list[SampleAnswer]) -> list[str]:
    """Per catalog model: the served version and its sample answer, or why it is not
    deployed."""
    from exporters.registered import exported_versions

    statuses = read_statuses(status_path(stack.settings.model_repository))
    lines = []
    for answer in answers:
        name = answer.model_name
        versions = exported_versions(stack.settings.model_repository, name)
        if not versions:
            status = statuses.get(name)
            reason = status.reason if status else "never exported"
            lines.append(
                f"  {name:<31} not deployed: {reason} (sample: HTTP {answer.status_code} "
                f"{_error_code(answer.text)})"
            )
            continue
        outcome = "ok" if answer.status_code == 200 else f"HTTP {answer.status_code}"
        lines.append(
            f"  {name:<31} version {versions[-1]} (served: {', '.join(map(str, versions))}); "
            f"sample {outcome}: {_short(answer.text)}"
        )
    return lines


def _error_code(text: str) -> str:
    try:
        return str(json.loads(text).get("error", ""))
    except (ValueError, AttributeError):
        return ""


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def print_summary(stack: RunningStack, answers: list[SampleAnswer]) -> None:
    base_url, monitoring = stack.base_url, stack.monitoring
    sample = next(answer for answer in answers if answer.model_name == SAMPLE_MODEL)
    curl = (
        f"curl -s -X POST {base_url}/predict -H 'Content-Type: application/json' "
        f"-H 'X-API-Key: {stack.api_key}' -d {shlex.quote(json.dumps(sample.body))}"
    )
    elapsed_s = time.monotonic() - stack.started
    print(
        "\n".join(
            [
                "",
                f"TradeMaster stack is up ({elapsed_s:.0f} s)",
                f"  gateway        {base_url}   (docs {base_url}/docs, metrics {base_url}/metrics)",
                *replica_lines(stack.replicas),
                f"  redis          online store {stack.online_redis.url}, "
                f"cache {stack.cache_redis.url}",
                f"  mlflow         {stack.mlflow_url}   (runs, model versions, aliases)",
                f"  airflow        {stack.airflow.url}   (user {stack.airflow.username}, "
                f"password {stack.airflow.password}; DAG {DAG_ID}, daily)",
                f"  prometheus     {monitoring.prometheus.url}   (targets "
                f"{monitoring.prometheus.url}/targets, alerts {monitoring.prometheus.url}/alerts)",
                f"  pushgateway    {monitoring.pushgateway.url}   (the DAG's batch metrics)",
                f"  alertmanager   {monitoring.alertmanager.url}   (receivers: "
                "monitoring/alertmanager.yml)",
                f"  API key        {stack.api_key}   (also in var/local_api_key)",
                "",
                "Models:",
                *deployment_lines(stack, answers),
                "",
                "Sample request:",
                f"  {curl}",
                f"Answer (HTTP {sample.status_code}, X-Cache: {sample.cache}):",
                f"  {sample.text}",
                "",
            ]
        ),
        flush=True,
    )


def replica_lines(replicas: Sequence[TritonReplica]) -> list[str]:
    lines = []
    for index, replica in enumerate(replicas, start=1):
        triton, agent = replica.server, replica.agent
        name = f"triton {index}" if len(replicas) > 1 else "triton"
        lines += [
            f"  {name + ' http':<14} http://{triton.http_url}   grpc {triton.grpc_url}   "
            f"(metrics {triton.metrics_url})",
            f"  {'serving agent':<14} {agent.url}/ready   (metrics {agent.url}/metrics)",
        ]
    return lines


def wait_for_interrupt() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    say("serving; press Ctrl-C to stop")
    stop.wait()
