"""Static checks of the Dockerfiles in ``docker/``: no Docker engine exists on these machines,
so the images are never built here (docker/README.md). What can be checked without one: what
they copy exists and is in their build context, each installs its own lock file (and the
gateway's carries none of the training stack), they run as the non-root user the Kubernetes
manifests expect, and they start what the manifests assume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from trademaster.settings import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
REQUIREMENTS = PROJECT_ROOT / "requirements"
# Each image installs one lock: its group of pyproject.toml, or Triton's serving environment.
IMAGE_LOCKS = {
    "gateway.Dockerfile": "requirements/gateway.lock",
    "pipeline.Dockerfile": "requirements/pipeline.lock",
    "triton.Dockerfile": "requirements/serving.lock",
}
# The training stack, which the gateway neither imports nor installs.
NOT_IN_THE_GATEWAY = {
    "apache-airflow",
    "mlflow",
    "torch",
    "transformers",
    "sentence-transformers",
    "onnx",
    "onnxruntime",
    "scikit-learn",
}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def _args(dockerfile: Path, instruction: str) -> list[str]:
    return [args for name, args in _instructions(dockerfile) if name == instruction]


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _user(dockerfile: Path) -> int:
    users = [args for name, args in _final_stage(dockerfile) if name == "USER"]
    assert users, f"{dockerfile.name}: no USER in the final stage"
    return int(users[-1].split(":")[0])


def _lock(relative: str) -> dict[str, str]:
    """A lock file's pins, normalized name -> version."""
    pins = {}
    for line in (PROJECT_ROOT / relative).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _k8s_run_as_user(relative: str) -> int:
    for doc in yaml.safe_load_all((PROJECT_ROOT / "k8s" / "base" / relative).read_text()):
        if doc and doc["kind"] in {"Deployment", "StatefulSet"}:
            user: int = doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
            return user
    raise AssertionError(f"no workload in {relative}")


def test_there_are_three_images() -> None:
    assert [path.name for path in DOCKERFILES] == [
        "gateway.Dockerfile",
        "pipeline.Dockerfile",
        "triton.Dockerfile",
    ]
    assert "has ever been built" in (DOCKER / "README.md").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_copied_paths_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    ignore = Path(f"{dockerfile}.dockerignore").read_text().splitlines()
    assert "*" in ignore, "the build context must be an allow-list"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for args in _args(dockerfile, "COPY"):
        if args.startswith("--from="):
            continue
        *sources, _destination = args.split()
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"{dockerfile.name}: {source} missing"
            assert source.rstrip("/") in allowed, f"{dockerfile.name}: {source} not in context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_each_image_installs_its_own_lock(dockerfile: Path) -> None:
    lock = IMAGE_LOCKS[dockerfile.name]
    copied = {
        source: destination
        for args in _args(dockerfile, "COPY")
        if not args.startswith("--from=")
        for *sources, destination in [args.split()]
        for source in sources
        if source.startswith("requirements/")
    }
    assert list(copied) == [lock], f"{dockerfile.name} copies {sorted(copied)}, not only {lock}"
    installs = [args for args in _args(dockerfile, "RUN") if "pip install " in args]
    lock_installs = [args for args in installs if re.search(r"(^|\s)-r\s", args)]
    assert len(lock_installs) == 1, f"{dockerfile.name}: {lock_installs}"
    (requirement_file,) = re.findall(r"-r\s+(\S+)", lock_installs[0])
    assert requirement_file == copied[lock], f"{dockerfile.name} installs {requirement_file}"
    for args in installs:
        if args is not lock_installs[0]:
            assert "--no-deps" in args, f"{dockerfile.name}: {args} resolves dependencies"


def test_the_locks_agree_and_nest() -> None:
    """One resolution (requirements/lock.sh): a package has one version in every lock, and the
    dev environment of the tests holds everything either image installs."""
    gateway, pipeline, dev = (
        _lock(f"requirements/{group}.lock") for group in ("gateway", "pipeline", "dev")
    )
    assert gateway.items() <= pipeline.items()
    assert pipeline.items() <= dev.items()
    assert not NOT_IN_THE_GATEWAY & gateway.keys()
    assert {"fastapi", "feast", "tritonclient", "redis"} <= gateway.keys()
    assert not (REQUIREMENTS / "main.lock").exists(), "superseded by the per-group locks"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_images_run_as_non_root(dockerfile: Path) -> None:
    assert _user(dockerfile) > 0


def test_gateway_image() -> None:
    dockerfile = DOCKER / "gateway.Dockerfile"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in dockerfile.read_text()
    assert not any("download.pytorch.org" in args for args in _args(dockerfile, "RUN"))
    assert not any(args.startswith("exporters/") for args in _args(dockerfile, "COPY"))
    assert "pip install --no-deps -e ." in " ".join(_args(dockerfile, "RUN"))
    assert _args(dockerfile, "CMD") == ['["python", "-m", "gateway"]']
    (healthcheck,) = _args(dockerfile, "HEALTHCHECK")
    assert "/health" in healthcheck
    env = dict(
        line.split("=", 1)
        for line in (PROJECT_ROOT / "k8s/base/gateway/gateway.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert _args(dockerfile, "EXPOSE") == [env["GATEWAY_PORT"]]
    assert _user(dockerfile) == _k8s_run_as_user("gateway/deployment.yaml")


def test_pipeline_image_can_serve_as_the_airflow_image() -> None:
    dockerfile = DOCKER / "pipeline.Dockerfile"
    assert _args(dockerfile, "CMD") == ['["trademaster", "pipeline", "run"]']
    assert not _args(dockerfile, "ENTRYPOINT"), "Airflow's chart and executor pass commands"
    assert any(args.startswith("dags/") for args in _args(dockerfile, "COPY"))
    values = yaml.safe_load((PROJECT_ROOT / "k8s/airflow/values.yaml").read_text())
    assert _user(dockerfile) == values["uid"] == _k8s_run_as_user("mlflow/deployment.yaml")
    lock = _lock("requirements/pipeline.lock")
    assert "apache-airflow-providers-cncf-kubernetes" in lock, "KubernetesExecutor"
    assert lock["torch"].endswith("+cpu"), "the CPU build, from PyTorch's index"
    assert any("download.pytorch.org/whl/cpu" in args for args in _args(dockerfile, "RUN"))


def test_triton_image_adds_the_serving_lock_to_ngc() -> None:
    dockerfile = DOCKER / "triton.Dockerfile"
    (base,) = _args(dockerfile, "FROM")
    assert base == "nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-py3"
    assert any("requirements/serving.lock" in args for args in _args(dockerfile, "COPY"))
    assert "numpy==1." in (PROJECT_ROOT / "requirements/serving.lock").read_text()
    assert _user(dockerfile) == _k8s_run_as_user("triton/deployment.yaml")
