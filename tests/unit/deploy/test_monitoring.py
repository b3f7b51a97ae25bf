"""Prometheus and Alertmanager configs, rules and the Grafana dashboards in ``monitoring/``,
checked offline.

``promtool`` (Debian package ``prometheus``, installed by scripts/bootstrap.sh) checks the config
and the rules and runs the rules' unit tests, in which every alert must be shown both firing
and quiet; ``amtool`` (``prometheus-alertmanager``) checks the Alertmanager config and its
routes. Every metric a rule or a panel queries must be one that really exists: declared by the
gateway (gateway/metrics.py) or the batch side (trademaster/monitoring/metrics.py), exported by
prometheus_client's process collector or by Triton, or defined by a recording rule. Every
panel's query must parse as PromQL once its Grafana variables are substituted.

``dashboard_queries()`` lists every panel's query, variables substituted, for a test that runs
them against a live Prometheus.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

import gateway.metrics
from trademaster.monitoring.metrics import batch_registry
from trademaster.serving.agent import AgentMetrics
from trademaster.settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "trademaster.yaml"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"
# The provisioned datasource, the dashboards' default.
DATASOURCE_UID = "trademaster-prometheus"

# Triton's own metrics (counters without a _total suffix; *_duration_us are cumulative).
TRITON_METRICS = frozenset(
    {
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        # The node's CPU and memory (Triton reports the machine, not its own process).
        "nv_cpu_utilization",
        "nv_cpu_memory_used_bytes",
        "nv_cpu_memory_total_bytes",
    }
)
# Series Prometheus makes itself for every target.
PROMETHEUS_METRICS = frozenset({"up"})
# Series names each metric type adds to its family name in the exposition format.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan", "atan2", "start", "end"}
)
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=PROJECT_ROOT
    )


def _series_names(objects: Iterable[object]) -> frozenset[str]:
    names = set()
    for value in objects:
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return frozenset(names)


@cache
def gateway_metric_names() -> frozenset[str]:
    """Every series name gateway/metrics.py exposes, read from the metric objects themselves."""
    return _series_names(vars(gateway.metrics).values())


@cache
def batch_metric_names() -> frozenset[str]:
    """Every series name the DAG's monitoring tasks push, read from ``batch_registry()``."""
    return _series_names(vars(batch_registry()).values())


@cache
def serving_agent_metric_names() -> frozenset[str]:
    """Every series name the serving agent (trademaster/serving) exposes."""
    return _series_names(vars(AgentMetrics()).values())


@cache
def process_metric_names() -> frozenset[str]:
    """``process_*`` of prometheus_client's process collector, which the gateway's default
    registry carries (gateway/process_metrics.py exports the same names per worker)."""
    collector = ProcessCollector(registry=None)
    return frozenset(sample.name for family in collector.collect() for sample in family.samples)


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def recorded_names() -> frozenset[str]:
    return frozenset(rule["record"] for rule in _rules() if "record" in rule)


def known_metric_names() -> frozenset[str]:
    return (
        gateway_metric_names()
        | batch_metric_names()
        | process_metric_names()
        | serving_agent_metric_names()
        | TRITON_METRICS
        | PROMETHEUS_METRICS
        | recorded_names()
    )


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label names, functions and keywords aside)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # label matchers, ranges
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )  # grouping labels
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        word = match.group()
        if re.match(r"\s*\(", text[match.end() :]):
            continue  # a function call
        if word.lower() in PROMQL_KEYWORDS or word in AGGREGATIONS:
            continue
        names.add(word)
    return names


# --- dashboards ------------------------------------------------------------------------------

# Grafana's own interval variables, replaced by what they stand for at a 15 s scrape interval.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name (``serving.json``)."""
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def substitute_variables(expr: str, board: dict[str, Any]) -> str:
    """``expr`` as Prometheus would receive it: Grafana's interval variables become durations,
    the dashboard's own variables (only ever used in a ``=~`` regex matcher) match anything."""
    names = {variable["name"] for variable in board["templating"]["list"]}

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        if name in names:
            return ".*"
        raise ValueError(f"{expr}: unknown variable ${name}")

    return _VARIABLE.sub(value, expr)


class PanelQuery(NamedTuple):
    dashboard: str  # the dashboard's uid
    panel: str  # the panel's title (as written: a repeated panel's title holds its variable)
    expr: str  # PromQL, variables substituted


def dashboard_queries() -> list[PanelQuery]:
    """Every panel query of every dashboard in monitoring/grafana/dashboards/, variables
    substituted, so it can run against a real Prometheus as it stands."""
    return [
        PanelQuery(board["uid"], panel["title"], substitute_variables(target["expr"], board))
        for board in dashboards().values()
        for panel in panels(board)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# --- promtool --------------------------------------------------------------------------------


def test_prometheus_config_is_valid(promtool: str) -> None:
    result = _run([promtool, "check", "config", str(MONITORING / "prometheus.yml")])
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    # check config also checks the rule files it names: all of them must be found.
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_prometheus_config_sends_alerts_to_alertmanager() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"gateway", "triton", "pushgateway", "alertmanager", "kube-state-metrics"} <= set(jobs)
    assert jobs["pushgateway"]["honor_labels"] is True


def test_rules_are_valid(promtool: str) -> None:
    assert RULE_FILES
    result = _run([promtool, "check", "rules", *map(str, RULE_FILES)])
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert RULE_TESTS
    result = _run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_unit_tests() -> None:
    tested = {
        (path.parent / rule_file).resolve()
        for path in RULE_TESTS
        for rule_file in yaml.safe_load(path.read_text())["rule_files"]
    }
    assert {path.resolve() for path in RULE_FILES} <= tested


def test_every_alert_is_shown_firing_and_quiet() -> None:
    cases: dict[str, set[bool]] = {}
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                cases.setdefault(check["alertname"], set()).add(bool(check.get("exp_alerts")))
    for rule in _rules():
        if "alert" in rule:
            assert cases.get(rule["alert"]) == {True, False}, (
                f"{rule['alert']}: needs a test where it fires and one where it stays quiet"
            )


def test_alerts_carry_severity_and_explanations() -> None:
    alerts = [rule for rule in _rules() if "alert" in rule]
    names = {alert["alert"] for alert in alerts}
    assert {
        "GatewayHighErrorRatio",
        "GatewayLatencyP99High",
        "ModelNotReady",
        "TritonDown",
        "PredictionCacheBypassed",
        "StaleFeaturesHigh",
        "ShadowDisagreementHigh",
        "CacheHitRatioCollapsed",
        "TritonQueueTimeHigh",
        "FeatureDriftDetected",
        "DatasetDriftHigh",
        "DriftCheckStale",
        "FeatureFreshnessBreached",
        "RealizedQualityDropped",
        "TrainingDagFailed",
        "TrainingDagLate",
    } <= names
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert {"summary", "description"} <= set(alert["annotations"]), alert["alert"]
        assert "for" in alert, f"{alert['alert']}: one bad scrape must not page"


# --- Alertmanager ----------------------------------------------------------------------------


def test_alertmanager_config_is_valid(amtool: str) -> None:
    result = _run([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


def _receiver(amtool: str, *labels: str) -> str:
    result = _run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_every_alert_is_routed_by_its_severity(amtool: str) -> None:
    expected = {"critical": "page", "warning": "ticket"}
    for rule in _rules():
        if "alert" in rule:
            severity = rule["labels"]["severity"]
            received = _receiver(amtool, f"alertname={rule['alert']}", f"severity={severity}")
            assert received == expected[severity], rule["alert"]


def test_alertmanager_config_holds_no_secret() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for key, integrations in receiver.items():
            for integration in integrations if key.endswith("_configs") else []:
                secret_keys = {"api_url", "routing_key", "service_key", "url", "api_key"}
                assert not secret_keys & set(integration), f"{receiver['name']}: use *_file"
    group_by = config["route"]["group_by"]
    assert group_by == ["alertname", "model_name"]


# --- metric names ----------------------------------------------------------------------------


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (model_name, le) (rate(ml_prediction_duration_seconds_bucket{model_name=~"$model",'
        'le="0.1"}[$__rate_interval])) / 1e6 / on (model) group_left up{job="triton"} '
        "> bool 0.5 and max without (pod) (x:y:z) offset 5m"
    )
    assert metric_names(expr) == {"ml_prediction_duration_seconds_bucket", "up", "x:y:z"}


def test_gateway_metric_names_are_read_from_the_code() -> None:
    names = gateway_metric_names()
    assert "ml_prediction_requests_total" in names
    assert "ml_prediction_duration_seconds_bucket" in names
    assert "ml_model_ready" in names
    assert "ml_prediction_requests" not in names  # counters are exposed with _total


def test_rules_query_only_exposed_metrics() -> None:
    known = known_metric_names()
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown {unknown}"


def test_batch_and_process_metric_names_are_read_from_the_code() -> None:
    batch = batch_metric_names()
    assert "ml_feature_drift_state" in batch
    assert "trademaster_dag_last_success_timestamp_seconds" in batch
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= process_metric_names()


def test_dashboard_queries_only_exposed_metrics() -> None:
    known = known_metric_names()
    queries = dashboard_queries()
    assert queries
    for query in queries:
        unknown = metric_names(query.expr) - known
        assert not unknown, f"{query.dashboard} / {query.panel}: unknown {unknown}"
    for name, board in dashboards().items():
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["definition"])
                assert match, f"{name}: {variable['definition']}"
                assert match.group(1) in known, f"{name}: {variable['definition']}"


def test_dashboard_variables_are_only_regex_matched() -> None:
    """A variable stands for a regex (All is ``.*``, several values ``(a|b)``): an ``=``
    matcher or a bare use would break on All, and would not be what the checks here see."""
    for name, board in dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                outside = re.sub(r'=~"[^"]*"', "", target["expr"])
                used = {a or b for a, b in _VARIABLE.findall(outside)}
                assert used <= set(GRAFANA_INTERVALS), f"{name} / {panel['title']}: {used}"


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """promtool has no PromQL checker of its own: every query becomes a recording rule."""
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard_query:{index}", "expr": query.expr}
        for index, query in enumerate(queries)
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = _run([promtool, "check", "rules", str(path)])
    errors = result.stdout + result.stderr
    for index, query in enumerate(queries):  # name the panel of a failing rule
        errors = errors.replace(f"dashboard_query:{index}", f"{query.dashboard} / {query.panel}")
    assert result.returncode == 0, errors
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_substitute_variables() -> None:
    board = {"templating": {"list": [{"name": "model"}, {"name": "source"}]}}
    expr = 'sum(rate(x{model_name=~"$model",source=~"${source}"}[$__rate_interval]))'
    assert substitute_variables(expr, board) == 'sum(rate(x{model_name=~".*",source=~".*"}[1m]))'
    with pytest.raises(ValueError, match="unknown variable"):
        substitute_variables('x{a=~"$nope"}', board)


def test_three_dashboards_with_their_own_uids() -> None:
    boards = dashboards()
    assert set(boards) == {"serving.json", "data.json", "model.json"}
    uids = [board["uid"] for board in boards.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"]
    assert board["title"]
    assert "trademaster" in board["tags"]  # the dashboards' links list them by tag
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = [panel["title"] for panel in panels(board) if panel["type"] != "row"]
    assert len(titles) == len(set(titles)), "panel titles must be unique"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert {"datasource", "model"} <= set(variables)
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"], panel["title"]
            assert target["datasource"] == panel["datasource"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        if "repeat" in panel:
            assert panel["repeat"] in variables, panel["title"]


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text())
    assert datasources["apiVersion"] == 1
    (prometheus,) = datasources["datasources"]
    assert prometheus["uid"] == DATASOURCE_UID
    assert prometheus["type"] == "prometheus"
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert Path(provider["options"]["path"]).is_absolute()


def test_monitoring_kustomization_ships_every_file() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    shipped = {
        Path(file)
        for generator in kustomization["configMapGenerator"]
        for file in generator["files"]
    }
    expected = {Path("prometheus.yml"), Path("alertmanager.yml")}
    expected |= {path.relative_to(MONITORING) for path in [*RULE_FILES, *DASHBOARDS]}
    assert shipped == expected
