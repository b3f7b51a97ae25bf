"""Prometheus config, rules and the Grafana dashboard in ``monitoring/``, checked offline.

``promtool`` (Debian package ``prometheus``, installed by scripts/bootstrap.sh) checks the config
and the rules and runs the rules' unit tests, in which every alert must be shown both firing
and quiet. Every metric a rule or a panel queries must be one the gateway (gateway/metrics.py)
or Triton really exposes, or one a recording rule defines.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import gateway.metrics
from trademaster.settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
DASHBOARD = MONITORING / "grafana" / "trademaster.json"

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


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make bootstrap)")
    return path


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=PROJECT_ROOT
    )


@cache
def gateway_metric_names() -> frozenset[str]:
    """Every series name gateway/metrics.py exposes, read from the metric objects themselves."""
    names = set()
    for value in vars(gateway.metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return frozenset(names)


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
    return gateway_metric_names() | TRITON_METRICS | PROMETHEUS_METRICS | recorded_names()


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


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in dashboard()["panels"]
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
    } <= names
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert {"summary", "description"} <= set(alert["annotations"]), alert["alert"]
        assert "for" in alert, f"{alert['alert']}: one bad scrape must not page"


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


def test_dashboard_queries_only_exposed_metrics() -> None:
    known = known_metric_names()
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        unknown = metric_names(expr) - known
        assert not unknown, f"{expr}: unknown {unknown}"
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            assert match.group(1) in known, variable["definition"]


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "model"} <= variables
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_monitoring_kustomization_ships_every_file() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    shipped = {
        Path(file)
        for generator in kustomization["configMapGenerator"]
        for file in generator["files"]
    }
    expected = {Path("prometheus.yml"), DASHBOARD.relative_to(MONITORING)}
    expected |= {path.relative_to(MONITORING) for path in RULE_FILES}
    assert shipped == expected
