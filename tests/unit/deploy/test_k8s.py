"""The Kubernetes manifests in ``k8s/``, checked offline.

Each kustomization is rendered with ``kubectl kustomize`` (no cluster needed), every rendered
document is validated against the Kubernetes API schemas bundled in ``kubernetes-validate``
(strict: unknown fields are errors), and the properties the stack relies on are asserted:
probes, non-root containers, resources, the HPA's target, Triton's GPU and flags, no secret
values, settings names that the services really read, and references that resolve.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.process_metrics import EXPORTER_PORT
from gateway.settings import GatewaySettings
from tests.unit.deploy.test_monitoring import recorded_names
from trademaster.launchers.tools import MissingToolError, kubectl
from trademaster.pipeline.plan import MODELS
from trademaster.serving.__main__ import AGENT_PORT, AgentSettings
from trademaster.settings import PROJECT_ROOT, PipelineSettings

K8S = PROJECT_ROOT / "k8s"
MONITORING = PROJECT_ROOT / "monitoring"
KUSTOMIZATIONS = {"base": K8S, "production": K8S / "overlays" / "production"}
# The oldest minor release still supported upstream, and the newest the schemas cover.
KUBERNETES_VERSIONS = ("1.33", "1.37")
NAMESPACE = "trademaster"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Pods started by the Airflow chart (k8s/airflow/values.yaml), not by these manifests.
PIPELINE_POD_LABEL = "trademaster-pipeline"
# The only pods with a Kubernetes API token: kube-state-metrics watches what it reports on.
API_READERS = frozenset({"kube-state-metrics"})
READ_VERBS = frozenset({"get", "list", "watch"})
# sha256("example-key"): a well-formed stand-in for the Secret's value in settings checks.
EXAMPLE_KEYS = '[{"name": "ci", "sha256": "' + "ab" * 32 + '", "scopes": ["predict"]}]'

Doc = dict[str, Any]


@cache
def rendered(name: str) -> str:
    """What ``kubectl kustomize`` renders for the kustomization ``name`` (once per session)."""
    try:
        binary = kubectl()
    except MissingToolError as exc:
        pytest.skip(str(exc))
    result = subprocess.run(
        [binary, "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
    return result.stdout


@cache
def _render(name: str) -> tuple[Doc, ...]:
    return tuple(doc for doc in yaml.safe_load_all(rendered(name)) if doc)


@pytest.fixture(params=sorted(KUSTOMIZATIONS))
def docs(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return _render(request.param)


@pytest.fixture
def base() -> tuple[Doc, ...]:
    return _render("base")


def _of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def _one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [doc for doc in _of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _workloads(docs: tuple[Doc, ...]) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def _pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def _containers(workload: Doc) -> list[Doc]:
    spec = _pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _container(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    """The workload's main container: its only one, or the one named as the workload (a pod
    with sidecars)."""
    containers = _pod_spec(_one(docs, kind, name))["containers"]
    if len(containers) == 1:
        return containers[0]
    (container,) = [container for container in containers if container["name"] == name]
    return container


def _config_data(docs: tuple[Doc, ...], prefix: str) -> dict[str, str]:
    """Data of the ConfigMap named ``prefix`` (or generated from it: ``prefix-<hash>``)."""
    found = [
        doc
        for doc in _of_kind(docs, "ConfigMap")
        if re.fullmatch(rf"{re.escape(prefix)}(-[a-z0-9]{{10}})?", doc["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one ConfigMap {prefix}, found {len(found)}"
    data: dict[str, str] = found[0]["data"]
    return data


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pod_labels(docs: tuple[Doc, ...]) -> list[dict[str, str]]:
    return [workload["spec"]["template"]["metadata"]["labels"] for workload in _workloads(docs)]


def _walk(node: Any) -> Iterator[Doc]:
    """Every mapping inside ``node``, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _airflow_values() -> Doc:
    return _helm_values("airflow")


def _adapter_values() -> Doc:
    return _helm_values("prometheus-adapter")


def _helm_values(chart: str) -> Doc:
    """The values a Helm-installed component of k8s/ is installed with (not kustomize)."""
    values: Doc = yaml.safe_load((K8S / chart / "values.yaml").read_text())
    return values


def _adapter_pod_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": _adapter_values()["nameOverride"]}


# --- rendering and schemas -------------------------------------------------------------------


def test_renders_into_one_namespace(docs: tuple[Doc, ...]) -> None:
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler"} <= kinds
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "trademaster"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_validates_strictly(docs: tuple[Doc, ...], version: str) -> None:
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path)
            problems.append(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {error.message}")
    assert not problems, "\n".join(problems)


# --- pods ------------------------------------------------------------------------------------


def test_no_container_runs_as_root_or_writes_its_image(docs: tuple[Doc, ...]) -> None:
    for workload in _workloads(docs):
        name = workload["metadata"]["name"]
        pod = _pod_spec(workload)
        pod_context = pod.get("securityContext", {})
        assert pod_context.get("runAsNonRoot") is True, name
        assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is (name in API_READERS), name
        for container in _containers(workload):
            context = container.get("securityContext", {})
            user = context.get("runAsUser", pod_context.get("runAsUser"))
            assert isinstance(user, int), f"{name}/{container['name']}: no numeric uid"
            assert user > 0, f"{name}/{container['name']}: uid {user}"
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("readOnlyRootFilesystem") is True, name
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name
            assert "privileged" not in context, name


def test_every_container_has_resources_and_probes(docs: tuple[Doc, ...]) -> None:
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            label = f"{workload['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), label
            assert {"cpu", "memory"} <= set(resources.get("limits", {})), label
            assert "readinessProbe" in container, label
            assert "livenessProbe" in container, label


def test_every_image_is_tagged(docs: tuple[Doc, ...]) -> None:
    for workload in _workloads(docs):
        for container in _containers(workload):
            image = container["image"]
            assert re.search(r":[\w.-]+$|@sha256:[0-9a-f]{64}$", image), image
            assert not image.endswith(":latest"), image


def test_gateway_probes_and_port_follow_its_settings(base: tuple[Doc, ...]) -> None:
    container = _container(base, "Deployment", "gateway")
    config = _config_data(base, "gateway-config")
    (port,) = container["ports"]
    assert port["containerPort"] == int(config["GATEWAY_PORT"])
    assert config["GATEWAY_HOST"] == "0.0.0.0"  # noqa: S104 (the pod's address, not a default)
    assert config["GATEWAY_WORKERS"] == "1", "one worker per pod: the HPA scales pods"
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
    annotations = _one(base, "Deployment", "gateway")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == config["GATEWAY_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_gateway_env_names_are_settings_fields(docs: tuple[Doc, ...]) -> None:
    fields = set(GatewaySettings.model_fields)
    names = set(_config_data(docs, "gateway-config"))
    for workload in _workloads(docs):
        for container in _containers(workload):
            names |= {env["name"] for env in container.get("env", [])}
    gateway_names = {name for name in names if name.startswith("GATEWAY_")}
    assert "GATEWAY_API_KEYS" in gateway_names
    unknown = sorted(name for name in gateway_names if name[8:].lower() not in fields)
    assert not unknown, f"not fields of GatewaySettings: {unknown}"


def test_gateway_settings_load_from_the_config(
    base: tuple[Doc, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of a developer's checkout
    for name, value in _config_data(base, "gateway-config").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GATEWAY_API_KEYS", EXAMPLE_KEYS)
    settings = GatewaySettings()
    assert settings.environment == "production"
    mounts = {m["mountPath"] for m in _container(base, "Deployment", "gateway")["volumeMounts"]}
    assert str(settings.feature_store_root / "data") in mounts, "Feast registry not mounted"


def test_required_models_are_loaded_by_triton(base: tuple[Doc, ...]) -> None:
    required = set(yaml.safe_load(_config_data(base, "gateway-config")["GATEWAY_REQUIRED_MODELS"]))
    args = _container(base, "Deployment", "triton")["args"]
    loaded = {arg.split("=", 1)[1] for arg in args if arg.startswith("--load-model=")}
    assert required <= loaded


def test_no_secret_values_in_manifests(docs: tuple[Doc, ...]) -> None:
    assert not _of_kind(docs, "Secret"), "Secrets are created with kubectl (k8s/README.md)"
    for path in K8S.rglob("kustomization.yaml"):
        assert "secretGenerator" not in yaml.safe_load(path.read_text()), path
    secret_like = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL|BACKEND_STORE_URI|_URL$")
    for workload in _workloads(docs):
        for container in _containers(workload):
            for env in container.get("env", []):
                if secret_like.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), env["name"]


def test_referenced_secrets_are_documented(docs: tuple[Doc, ...]) -> None:
    readme = (K8S / "README.md").read_text()
    referenced = set()
    for node in _walk([_pod_spec(w) for w in _workloads(docs)]):
        if "secretKeyRef" in node:
            referenced.add(node["secretKeyRef"]["name"])
        if "secretRef" in node:
            referenced.add(node["secretRef"]["name"])
    referenced |= {entry["secretName"] for entry in _airflow_values()["secret"]}
    for name in referenced:
        assert f"create secret generic {name}" in readme, f"k8s/README.md: how to create {name}"


# --- scaling and disruption ------------------------------------------------------------------


def test_hpa_scales_the_gateway(docs: tuple[Doc, ...]) -> None:
    hpa = _one(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "gateway",
    )
    deployment = _one(docs, "Deployment", "gateway")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert hpa["spec"]["minReplicas"] >= 2
    cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu
    assert cpu[0]["resource"]["name"] == "cpu"
    pdb = _one(docs, "PodDisruptionBudget", "gateway")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"].get("maxUnavailable", 0) < hpa["spec"]["minReplicas"]


def test_every_external_metric_is_a_tested_recording_rule_the_adapter_serves(
    docs: tuple[Doc, ...],
) -> None:
    """An HPA's external metric must exist: prometheus-adapter serves it (by name) from one
    of monitoring/rules' recording rules, which promtool tests in monitoring/tests/."""
    external = {
        rule["name"]["as"]: rule["seriesQuery"] for rule in _adapter_values()["rules"]["external"]
    }
    assert set(external.values()) <= recorded_names(), external
    used = [
        metric["external"]["metric"]["name"]
        for hpa in _of_kind(docs, "HorizontalPodAutoscaler")
        for metric in hpa["spec"]["metrics"]
        if metric["type"] == "External"
    ]
    assert used, "no HPA scales on an external metric"
    assert set(used) <= external.keys(), used
    tested = "\n".join(path.read_text() for path in MONITORING.glob("tests/*.yml"))
    for series in external.values():
        assert f"expr: {series}\n" in tested, f"{series} has no promtool case"


def test_the_metrics_adapter_reads_this_prometheus_and_the_api_server_reaches_it(
    docs: tuple[Doc, ...],
) -> None:
    values = _adapter_values()
    service = _one(docs, "Service", "prometheus")
    assert values["prometheus"]["url"] == f"http://prometheus.{NAMESPACE}.svc"
    assert values["prometheus"]["port"] in [port["port"] for port in service["spec"]["ports"]]
    assert values["rules"]["default"] is False, "only the rules the HPAs use"
    policies = [
        policy
        for policy in _of_kind(docs, "NetworkPolicy")
        if _labels_match(
            policy["spec"]["podSelector"].get("matchLabels", {}), _adapter_pod_labels()
        )
    ]
    opened = {
        port["port"]
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for port in rule["ports"]
    }
    assert values["listenPort"] in opened
    prometheus_policy = _one(docs, "NetworkPolicy", "prometheus")
    peers = [peer for rule in prometheus_policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": _adapter_pod_labels()}} in peers


# --- Triton ----------------------------------------------------------------------------------


def test_triton_scales_3_to_20_on_queue_time_up_fast_and_down_slowly(
    docs: tuple[Doc, ...],
) -> None:
    hpa = _one(docs, "HorizontalPodAutoscaler", "triton")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "triton")
    deployment = _one(docs, "Deployment", "triton")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "triton_queue_seconds_per_request"
    assert metric["external"]["target"]["type"] == "Value"
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    pdb = _one(docs, "PodDisruptionBudget", "triton")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


def test_triton_runs_the_gpu_configs_of_every_model_on_a_gpu(docs: tuple[Doc, ...]) -> None:
    triton = _one(docs, "Deployment", "triton")
    container = _container(docs, "Deployment", "triton")
    assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    args = container["args"]
    assert "--model-config-name=gpu" in args
    assert "--model-control-mode=explicit" in args
    loaded = [arg.split("=", 1)[1] for arg in args if arg.startswith("--load-model=")]
    assert sorted(loaded) == sorted(str(model) for model in MODELS)
    repository = next(arg for arg in args if arg.startswith("--model-repository="))
    assert repository == "--model-repository=$(TRITON_MODEL_REPOSITORY)"
    assert "TRITON_MODEL_REPOSITORY" in _config_data(docs, "triton-config")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    for flag, port in (("--http-port", 8000), ("--grpc-port", 8001), ("--metrics-port", 8002)):
        assert f"{flag}={port}" in args
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    pod = _pod_spec(triton)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"


def test_gateway_reaches_triton_and_redis_through_their_services(base: tuple[Doc, ...]) -> None:
    config = _config_data(base, "gateway-config")
    services = {doc["metadata"]["name"]: doc for doc in _of_kind(base, "Service")}

    def service_port(address: str) -> tuple[str, int]:
        host, port = re.sub(r"^redis://|^dns:///|/\d+$", "", address).split(":")
        ports = {p["port"] for p in services[host]["spec"]["ports"]}
        assert int(port) in ports, f"{address}: service {host} has ports {ports}"
        return host, int(port)

    # Per call over every pod: the headless Service, re-resolved by the gateway.
    assert config["GATEWAY_TRITON_GRPC_URL"].startswith("dns:///")
    assert service_port(config["GATEWAY_TRITON_GRPC_URL"]) == ("triton-pods", 8001)
    assert services["triton-pods"]["spec"]["clusterIP"] == "None"
    assert service_port(config["GATEWAY_REDIS_URL"]) == ("redis-cache", 6379)
    assert service_port(config["GATEWAY_FEAST_REDIS"]) == ("redis-online", 6379)


# --- references ------------------------------------------------------------------------------


def test_services_select_pods_and_ports_that_exist(docs: tuple[Doc, ...]) -> None:
    for service in _of_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        workloads = [
            w
            for w in _workloads(docs)
            if _labels_match(selector, w["spec"]["template"]["metadata"]["labels"])
        ]
        assert workloads, f"service {service['metadata']['name']} selects no pod"
        port_names = {
            port["name"]
            for workload in workloads
            for container in _pod_spec(workload)["containers"]
            for port in container.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (service["metadata"]["name"], port)


def test_volumes_and_config_refer_to_rendered_objects(docs: tuple[Doc, ...]) -> None:
    claims = {doc["metadata"]["name"] for doc in _of_kind(docs, "PersistentVolumeClaim")}
    config_maps = {doc["metadata"]["name"] for doc in _of_kind(docs, "ConfigMap")}
    for node in _walk([_pod_spec(w) for w in _workloads(docs)]):
        if "persistentVolumeClaim" in node:
            assert node["persistentVolumeClaim"]["claimName"] in claims, node
        if "configMapRef" in node:
            assert node["configMapRef"]["name"] in config_maps, node
        if "configMap" in node and isinstance(node["configMap"], dict):
            assert node["configMap"]["name"] in config_maps, node
    for volume in _airflow_values()["workers"]["extraVolumes"]:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims, volume


# --- network policies ------------------------------------------------------------------------


def _policy(docs: tuple[Doc, ...], name: str) -> Doc:
    return _one(docs, "NetworkPolicy", name)["spec"]


def test_namespace_denies_ingress_by_default(docs: tuple[Doc, ...]) -> None:
    policy = _policy(docs, "default-deny-ingress")
    assert policy["podSelector"] == {}
    assert policy["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy


def test_gateway_reaches_only_triton_both_redis_and_its_prediction_log(
    docs: tuple[Doc, ...],
) -> None:
    policy = _policy(docs, "gateway")
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    reached = set()
    for rule in policy["egress"]:
        if "to" not in rule:  # any address: only PostgreSQL's port (the prediction log)
            assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
            reached.add("postgresql")
            continue
        for peer in rule["to"]:
            if "namespaceSelector" in peer:  # DNS only
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                assert {port["port"] for port in rule["ports"]} == {53}
                continue
            reached.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    assert reached == {"triton", "redis-online", "redis-cache", "postgresql"}
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in [
        peer.get("namespaceSelector", {}).get("matchLabels") for peer in sources
    ]
    pod_sources = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for peer in sources
        if "podSelector" in peer
    }
    assert pod_sources == {"prometheus"}


def test_policies_select_pods_that_exist(docs: tuple[Doc, ...]) -> None:
    pods = _pod_labels(docs)
    pods += [_airflow_values()["workers"]["labels"], _adapter_pod_labels()]
    for policy in _of_kind(docs, "NetworkPolicy"):
        spec = policy["spec"]
        selector = spec["podSelector"].get("matchLabels", {})
        assert any(_labels_match(selector, labels) for labels in pods), policy["metadata"]
        for rule in spec.get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    peer_selector = peer["podSelector"]["matchLabels"]
                    assert any(_labels_match(peer_selector, labels) for labels in pods), peer


def test_every_pod_is_covered_by_an_ingress_allow_rule(docs: tuple[Doc, ...]) -> None:
    """Default deny is on: a pod that serves something must have a policy letting callers in."""
    allowed = [
        policy["spec"]["podSelector"].get("matchLabels", {})
        for policy in _of_kind(docs, "NetworkPolicy")
        if policy["spec"].get("ingress")
    ]
    for labels in _pod_labels(docs):
        assert any(_labels_match(selector, labels) for selector in allowed), labels


# --- Prometheus ------------------------------------------------------------------------------


def test_prometheus_mounts_the_monitoring_files(docs: tuple[Doc, ...]) -> None:
    config = _config_data(docs, "prometheus-config")
    assert config["prometheus.yml"] == (MONITORING / "prometheus.yml").read_text()
    rules = _config_data(docs, "prometheus-rules")
    rule_files = sorted(MONITORING.glob("rules/*.yml"))
    assert sorted(rules) == [path.name for path in rule_files]
    pod = _pod_spec(_one(docs, "Deployment", "prometheus"))
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "config"]
    projected = {
        item["key"]: item["path"]
        for source in volume["projected"]["sources"]
        for item in source["configMap"].get("items", [])
    }
    assert projected == {path.name: f"rules/{path.name}" for path in rule_files}
    args = _container(docs, "Deployment", "prometheus")["args"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in args


def test_api_readers_may_only_read_their_namespace(docs: tuple[Doc, ...]) -> None:
    assert not _of_kind(docs, "ClusterRole")
    assert not _of_kind(docs, "ClusterRoleBinding")
    roles = {doc["metadata"]["name"]: doc for doc in _of_kind(docs, "Role")}
    granted: dict[str, set[str]] = {}
    for binding in _of_kind(docs, "RoleBinding"):
        role = roles[binding["roleRef"]["name"]]
        assert binding["roleRef"]["kind"] == "Role"
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_VERBS, (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"], role["metadata"]["name"]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject["namespace"] == NAMESPACE
            granted.setdefault(subject["name"], set()).update(
                resource for rule in role["rules"] for resource in rule["resources"]
            )
    readers = {
        _pod_spec(w)["serviceAccountName"]
        for w in _workloads(docs)
        if _pod_spec(w).get("automountServiceAccountToken")
    }
    assert readers == set(granted) == API_READERS
    # What the replica-count and autoscaling series come from.
    assert {"deployments", "horizontalpodautoscalers"} <= granted["kube-state-metrics"]
    args = _container(docs, "Deployment", "kube-state-metrics")["args"]
    assert "--namespaces=$(POD_NAMESPACE)" in args, "a Role only covers its own namespace"


def test_prometheus_scrapes_the_monitoring_services(docs: tuple[Doc, ...]) -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    services = {doc["metadata"]["name"]: doc["spec"] for doc in _of_kind(docs, "Service")}
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    (alerting,) = config["alerting"]["alertmanagers"]
    (static,) = alerting["static_configs"]
    (alertmanager,) = static["targets"]
    for job_name, address in [*targets.items(), ("alerting", alertmanager)]:
        if job_name == "prometheus":
            continue
        host, port = address.split(":")
        assert int(port) in {p["port"] for p in services[host]["ports"]}, address
    assert targets["alertmanager"] == alertmanager
    pushgateway = next(job for job in config["scrape_configs"] if job["job_name"] == "pushgateway")
    assert pushgateway["honor_labels"] is True, "pushed job/instance labels must be kept"


def test_alertmanager_mounts_the_monitoring_config(docs: tuple[Doc, ...]) -> None:
    config = _config_data(docs, "alertmanager-config")
    assert config == {"alertmanager.yml": (MONITORING / "alertmanager.yml").read_text()}
    args = _container(docs, "Deployment", "alertmanager")["args"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in args
    pod = _pod_spec(_one(docs, "Deployment", "alertmanager"))
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "config"]
    assert volume["configMap"]["name"].startswith("alertmanager-config-")


def test_prometheus_dns_targets_are_headless_services(docs: tuple[Doc, ...]) -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    services = {doc["metadata"]["name"]: doc["spec"] for doc in _of_kind(docs, "Service")}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job_name, port, app in (
        ("gateway", 8080, "gateway"),
        ("triton", 8002, "triton"),
        ("triton-process", 9256, "triton"),
        ("serving-agent", AGENT_PORT, "triton"),
    ):
        (sd,) = jobs[job_name]["dns_sd_configs"]
        (name,) = sd["names"]
        spec = services[name]
        assert spec["clusterIP"] == "None"
        assert spec["publishNotReadyAddresses"] is True, "unready pods must be scraped"
        assert sd["port"] == port
        assert port in {p["port"] for p in spec["ports"]}
        assert spec["selector"] == {"app.kubernetes.io/name": app}
        opened = {
            rule_port["port"]
            for rule in _policy(docs, app)["ingress"]
            for peer in rule["from"]
            if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            == "prometheus"
            for rule_port in rule["ports"]
        }
        assert port in opened, f"{app}'s NetworkPolicy must let Prometheus reach :{port}"


def test_triton_process_exporter_sees_tritonserver(docs: tuple[Doc, ...]) -> None:
    pod = _pod_spec(_one(docs, "Deployment", "triton"))
    assert pod["shareProcessNamespace"] is True, "the sidecar reads tritonserver's /proc"
    containers = {container["name"]: container for container in pod["containers"]}
    exporter = containers["process-exporter"]
    assert exporter["command"][-2:] == ["--command", containers["triton"]["command"][0]]
    assert {port["containerPort"] for port in exporter["ports"]} == {EXPORTER_PORT}
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_serving_agent_gates_the_triton_pods_readiness(docs: tuple[Doc, ...]) -> None:
    pod = _pod_spec(_one(docs, "Deployment", "triton"))
    containers = {container["name"]: container for container in pod["containers"]}
    agent = containers["serving-agent"]
    assert agent["command"] == ["python", "-m", "trademaster.serving"]
    env = {item["name"]: item["value"] for item in agent["env"]}
    settings = AgentSettings.model_validate(
        {name.removeprefix("SERVING_AGENT_").lower(): value for name, value in env.items()}
    )
    assert settings.triton_grpc_address.endswith(":8001")
    triton_mounts = {m["name"]: m["mountPath"] for m in containers["triton"]["volumeMounts"]}
    agent_mounts = {m["name"]: m for m in agent["volumeMounts"]}
    assert agent_mounts["models"]["mountPath"] == triton_mounts["models"]
    assert str(settings.model_repository) == triton_mounts["models"]
    assert agent_mounts["models"]["readOnly"] is True
    assert {port["containerPort"] for port in agent["ports"]} == {settings.port}
    assert agent["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True


# --- pipeline (Airflow task pods) ------------------------------------------------------------


def test_pipeline_config_is_read_by_pipeline_settings(
    base: tuple[Doc, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config_data(base, "pipeline-config")
    names = [name for name in config if name.startswith("TRADEMASTER_")]
    names += [entry["envName"] for entry in _airflow_values()["secret"]]
    fields = set(PipelineSettings.model_fields)
    unknown = sorted(name for name in names if name[12:].lower() not in fields)
    assert not unknown, f"not fields of PipelineSettings: {unknown}"
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = PipelineSettings()
    assert settings.environment == "production"
    assert settings.resolved_mlflow_tracking_uri == "http://mlflow:5000"


def test_airflow_task_pods_share_the_volumes_at_the_configured_paths(
    base: tuple[Doc, ...],
) -> None:
    values = _airflow_values()
    assert values["executor"] == "KubernetesExecutor"
    assert values["images"]["airflow"]["repository"].endswith("/trademaster/pipeline")
    assert "name: pipeline-config" in values["extraEnvFrom"]
    assert values["workers"]["labels"] == {"app.kubernetes.io/name": PIPELINE_POD_LABEL}
    config = _config_data(base, "pipeline-config")
    volumes = {v["name"]: v for v in values["workers"]["extraVolumes"]}
    mounts = {
        m["mountPath"]: volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName")
        for m in values["workers"]["extraVolumeMounts"]
    }
    data_dir = config["TRADEMASTER_DATA_DIR"]
    assert data_dir in mounts
    assert mounts[config["TRADEMASTER_FEATURE_STORE_ROOT"] + "/data"] == "feature-store"
    assert mounts[config["TRADEMASTER_MODEL_REPOSITORY"]] == "model-repository"
    # The experiment's artifacts are file:// URIs under the data dir: the MLflow server must see
    # the same volume at the same path.
    artifacts = f"{data_dir}/mlflow/artifacts"
    assert mounts[artifacts] == "mlflow-artifacts"
    mlflow = _container(base, "Deployment", "mlflow")
    assert {"name": "artifacts", "mountPath": artifacts} in mlflow["volumeMounts"]
    assert _config_data(base, "mlflow-config")["MLFLOW_ARTIFACTS_DESTINATION"] == artifacts
    # The gateway reads the registry the pipeline writes, from the same volume.
    gateway = _config_data(base, "gateway-config")
    assert gateway["GATEWAY_FEATURE_STORE_ROOT"] == config["TRADEMASTER_FEATURE_STORE_ROOT"]
    triton_repo = _config_data(base, "triton-config")["TRITON_MODEL_REPOSITORY"]
    triton_mounts = {
        m["mountPath"]: m["name"] for m in _container(base, "Deployment", "triton")["volumeMounts"]
    }
    assert triton_mounts[triton_repo] == "models"


# --- production overlay ----------------------------------------------------------------------


def test_production_routes_only_the_api_from_outside() -> None:
    docs = _render("production")
    (ingress,) = _of_kind(docs, "Ingress")
    paths = [
        path
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["backend"]["service"]["name"] == "gateway"
    ]
    routed = {path["path"] for path in paths}
    assert "/predict" in routed
    assert not routed & {"/", "/metrics", "/ready", "/docs", "/rollouts"}
    assert ingress["spec"]["tls"]
    for workload in _workloads(docs):
        for container in _containers(workload):
            if "trademaster/" in container["image"]:
                assert container["image"].startswith("registry.example.com/"), container["image"]
