"""The daily cycle on real processes, as `make up` runs it: PostgreSQL, `mlflow server` on it,
Redis, Triton with its serving agent, the gateway, Prometheus with its Pushgateway and
Alertmanager, and Airflow's API server, scheduler and DAG processor.

The scheduler trains and deploys every model (the first run); a new trading day arrives
(`market advance`), a stormy one (volatility x3, a planted regime change); a run triggered
through Airflow's REST API checks drift and realized accuracy, trains challengers on data that
include it; each promoted challenger goes live as a canary in the running Triton and gateway,
is judged on live traffic and promoted; MLflow's aliases and the gateway's ``/models`` show it,
and Triton ends on exactly the manifest's versions. Constant light load runs through the whole
second cycle: not one request fails, and every answer comes from a version the rollout allows.

Then monitoring is read back from Prometheus's HTTP API: the drift series flag the planted
change, realized accuracy is published, an alert fires; Triton is stopped (the fault) and
Prometheus sees it and fires TritonDown; every dashboard panel's query returns data, but for
the panels this scenario cannot feed (listed with the reason).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.integration.prometheus_api import alerts, query, wait_for
from tests.integration.stack import isolated_settings
from tests.integration.traffic import ConstantLoad, recent_traders
from trademaster import registry
from trademaster.contract.models import ModelName
from trademaster.contract.served_versions import read_manifest
from trademaster.pipeline.airflow_api import AirflowApi
from trademaster.pipeline.airflow_runner import DAG_ID
from trademaster.pipeline.plan import MODELS
from trademaster.rollout.canary import CANARY_ALIAS
from trademaster.settings import PipelineSettings
from trademaster.stack import RunningStack, StackSettings, running_stack
from trademaster.warehouse.advance import Regime, advance_market

pytestmark = [pytest.mark.integration, pytest.mark.pipeline]

CANARY_REQUESTS = 60
# Load before the run, so that the prediction log holds served features for the drift check.
WARM_UP_S = 30
# Panels this scenario cannot give data, with why (every other panel must return some).
PANELS_WITHOUT_DATA = {
    "trademaster-serving: Errors / s by code": "no request fails (asserted above)",
    "trademaster-serving: Server error ratio": "no request fails",
    "trademaster-serving: Server error ratio by version and route": "no request fails",
    "trademaster-serving: Cache bypassed / s (Redis failing)": "the cache Redis stays up",
    "trademaster-serving: Shadow comparisons and errors / s": "no shadow rollout is set",
    "trademaster-serving: Stale feature share": "every served feature is fresh",
    "trademaster-data: Stale-feature share served": "every served feature is fresh",
    "trademaster-model: Time since the last failed run": "no run fails",
}


def _bodies(settings: PipelineSettings) -> list[dict[str, Any]]:
    """Requests for every model over many entities (so both sides of each split see users)."""
    pairs = recent_traders(settings, 120)
    engine = sa.create_engine(settings.resolved_warehouse_url)
    with engine.connect() as connection:
        symbols = list(
            connection.execute(
                sa.text("SELECT symbol FROM symbols WHERE source = 'generated' ORDER BY symbol")
            ).scalars()
        )
        headlines = list(
            connection.execute(
                sa.text("SELECT headline FROM headlines ORDER BY ts DESC LIMIT 120")
            ).scalars()
        )
    engine.dispose()
    bodies: list[dict[str, Any]] = []
    for index, (user_id, symbol) in enumerate(pairs):
        bodies.append({"model_name": ModelName.RISK, "user_id": user_id, "symbol": symbol})
        bodies.append({"model_name": ModelName.BEHAVIOR, "user_id": user_id})
        bodies.append({"model_name": ModelName.PRICE, "symbol": symbols[index % len(symbols)]})
        # A headline each: enough labelled texts for sentiment's realized macro-F1.
        headline = headlines[index % len(headlines)]
        bodies.append({"model_name": ModelName.SENTIMENT, "text": headline})
        if index % 3 == 0:
            bodies.append({"model_name": ModelName.PORTFOLIO, "symbols": symbols[index % 50 :][:3]})
    return [{**body, "model_name": str(body["model_name"])} for body in bodies]


def _champions(settings: PipelineSettings) -> dict[str, int | None]:
    found = {}
    for name in MODELS:
        version = registry.version_for_alias(settings, str(name), registry.CHAMPION)
        found[str(name)] = version.version if version else None
    return found


def _served(stack: RunningStack) -> dict[str, int | None]:
    models = httpx.get(f"{stack.base_url}/models", timeout=10).json()
    return {entry["name"]: entry["version"] for entry in models}


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A folder the ``postgres`` user can enter (pytest's are private to root), so that the
    stack's kept PostgreSQL cluster lives inside it and goes with it."""
    root = Path(tempfile.mkdtemp(prefix="trademaster-daily-cycle-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(2400)
def test_a_new_day_goes_live_through_a_canary_without_a_failed_request(stack_root: Path) -> None:
    tmp_path = stack_root
    # Seeded up to the business day before the last one, so that the new day `market advance`
    # appends is the last business day before today (and every feature is fresh).
    last_session = pd.Timestamp(date.today()) - pd.offsets.BDay(1)
    seeded_until = (last_session - pd.offsets.BDay(1)).date()
    settings = isolated_settings(
        tmp_path,
        feature_store_root=tmp_path / "feature_store",
        end_date=seeded_until,
        canary_weight=0.5,
        canary_min_requests=CANARY_REQUESTS,
        canary_max_wait_s=300,
    )
    ports = StackSettings(
        gateway_port=0,
        mlflow_port=0,
        airflow_port=0,
        prometheus_port=0,
        pushgateway_port=0,
        alertmanager_port=0,
        gateway_workers=1,
        # One replica: with two, 1 run in 3 had 11 sentiment requests answered 503 while an
        # agent reloaded the ensemble's steps (the README's "Not yet" under the serving agent).
        triton_replicas=1,
    )

    with running_stack(settings, ports) as stack:
        settings = stack.settings
        day_one = _champions(settings)
        assert all(day_one.values()), day_one
        assert _served(stack) == day_one
        listed = _replicas_on_manifest(stack)  # the catalog's models and the ensemble steps
        assert {name: listed[name] for name in day_one} == {k: {v} for k, v in day_one.items()}

        arrived = advance_market(settings, days=1, regime=Regime(volatility=3.0))
        new_day = arrived.as_dict()
        assert new_day["last_day"] == str(last_session.date())
        cycle_started = time.monotonic()
        with (
            ConstantLoad(stack.base_url, stack.api_key, _bodies(settings), rate_per_s=25) as load,
            AirflowApi(stack.airflow) as api,
        ):
            time.sleep(WARM_UP_S)
            dag = api.dag(DAG_ID)
            assert dag["is_paused"] is False
            assert dag["timetable_summary"] == "0 0 * * *"  # daily, at midnight UTC
            run_id = api.trigger(DAG_ID, note="test: a new trading day")
            result = api.wait(DAG_ID, run_id, timeout_s=1800, progress=print)
            time.sleep(2)  # answers in flight when the run ended
        cycle_s = time.monotonic() - cycle_started

        assert result.state == "success", result.failed_tasks()
        day_two = _champions(settings)
        served = _served(stack)
        canaries = {
            name: task
            for name, task in result.tasks.items()
            if name.startswith("canary_") and task.state == "success"
        }
        print(
            f"new day {new_day}; cycle {cycle_s:.0f} s (trigger to run success); "
            f"{load.record.sent} requests {dict(load.record.statuses)}; "
            f"champions {day_one} -> {day_two}; canaries {sorted(canaries)}"
        )
        assert load.record.failures == [], load.record.failures[:10]
        assert load.record.sent > 1000
        # At least the models that serve two versions went through a canary and stayed.
        assert canaries, {name: task.state for name, task in result.tasks.items()}
        for name in MODELS:
            old, new = day_one[str(name)], day_two[str(name)]
            assert served[str(name)] == new, (name, served, day_two)
            seen = set(load.record.versions[str(name)])
            assert seen <= {old, new}, (name, seen)
            if new != old:
                assert new is not None
                assert registry.version_for_alias(settings, str(name), CANARY_ALIAS) is None
        for task_id in canaries:
            model = next(str(name) for name in MODELS if task_id.endswith(_suffix(str(name))))
            assert day_two[model] != day_one[model], task_id
            tags = _version_tags(settings, model, day_two[model])
            assert tags.get("canary") == "promoted", tags
            assert load.record.versions[model][day_two[model] or 0] > 0
        listed = _replicas_on_manifest(stack)
        print(f"versions on each replica: {listed}")
        assert {name: max(listed[name]) for name in day_two} == day_two
        check_monitoring(stack, result.tasks)


def check_monitoring(stack: RunningStack, tasks: dict[str, Any]) -> None:
    """Drift, realized accuracy, alerts and dashboards, read back from Prometheus."""
    from tests.unit.deploy.test_monitoring import dashboard_queries

    prometheus = stack.monitoring.prometheus.url
    assert tasks["monitor_drift"].state == "success", tasks["monitor_drift"]
    drifted = wait_for(
        lambda: query(prometheus, 'ml_feature_drift_state{state="drift"} == 1'),
        "drifted feature",
        60,
    )
    flagged = {
        (s["metric"]["model_name"], s["metric"]["source"], s["metric"]["feature"]) for s in drifted
    }
    print(f"drift flagged: {sorted(flagged)}")
    # Volatility x3 moves the newest bar's range and body at once: flagged the same day.
    assert (str(ModelName.PRICE), "offline", "log_range") in flagged, flagged
    firing = wait_for(
        lambda: [
            a for a in alerts(prometheus) if a["labels"]["alertname"] == "FeatureDriftDetected"
        ],
        "FeatureDriftDetected firing",
        120,
    )
    assert any(a["labels"]["model_name"] == str(ModelName.PRICE) for a in firing), firing

    assert tasks["measure_realized"].state == "success", tasks["measure_realized"]
    realized = wait_for(lambda: query(prometheus, "ml_realized_quality"), "realized quality", 60)
    print(f"realized: {[(s['metric'], s['value'][1]) for s in realized]}")
    judged = {s["metric"]["model_name"] for s in realized}
    # Sentiment is judged on the class of its logged probabilities (the score names none).
    assert {str(ModelName.BEHAVIOR), str(ModelName.SENTIMENT)} <= judged, judged

    # A panel has data when one of its queries has (a stack minutes old has no "offset 1h").
    answered: dict[str, bool] = {}
    for panel in dashboard_queries():
        name = f"{panel.dashboard}: {panel.panel}"
        answered[name] = answered.get(name, False) or bool(query(prometheus, panel.expr))
    empty = {name for name, has_data in answered.items() if not has_data}
    print(f"panels without data: {sorted(empty)}")
    assert empty <= set(PANELS_WITHOUT_DATA), sorted(empty - set(PANELS_WITHOUT_DATA))

    # The fault: Triton goes away. Prometheus sees it at the next scrapes, and pages.
    stack.triton.stop()
    wait_for(lambda: query(prometheus, 'up{job="triton"} == 0'), "triton down in up", 60)
    down = wait_for(
        lambda: [a for a in alerts(prometheus) if a["labels"]["alertname"] == "TritonDown"],
        "TritonDown firing",
        150,
    )
    assert down[0]["labels"]["severity"] == "critical"


def _replicas_on_manifest(stack: RunningStack) -> dict[str, set[int]]:
    """The manifest's versions, once every replica's Triton serves exactly those (a replica
    the DAG does not load directly is only told by its agent, within its 5 s interval)."""
    listed = {
        name: set(versions)
        for name, versions in read_manifest(stack.settings.model_repository).items()
    }

    def on_every_replica() -> bool:
        return all(
            {name: replica.server.ready_versions(name) for name in listed} == listed
            for replica in stack.replicas
        )

    wait_for(on_every_replica, f"every replica on the manifest {listed}", 30)
    return listed


def _suffix(name: str) -> str:
    from trademaster.pipeline.plan import task_suffix

    return task_suffix(name)


def _version_tags(settings: PipelineSettings, name: str, version: int | None) -> dict[str, str]:
    import mlflow

    registry.configure_mlflow(settings)
    found = mlflow.MlflowClient().get_model_version(name, str(version))
    return dict(found.tags)
