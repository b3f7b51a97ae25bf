"""portfolio-optimizer: Triton configs for CPU and GPU nodes, and the version folder.

A version folder holds `model.py` (`exporters/backends/portfolio_model.py`) and
`portfolio_optimizer.py`, the registered version's solver file (hash checked against the
registry), which imports only numpy. Before anything is written, that file is run on problems
the training suite did not use and compared with scipy (the same tolerances as promotion).

Batching: one request carries up to `MAX_PORTFOLIOS` portfolios, padded to one width with a
`holdings` count per row (`exporters/backends/portfolio_model.py`), so the gateway answers a
batch of portfolios with one call. Triton's dynamic batcher is left off: n differs between
requests and each solve is its own iterative problem, so it could only join requests of equal
n and would save no work. Concurrency comes from instances (separate stub processes).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from exporters.cpu_batching import CpuBatching, tuned_settings
from exporters.model_spec import TensorSpec
from exporters.triton_config import (
    GPU_CONFIG_NAME,
    model_warmup_lines,
    publish_version_folder,
    triton_data_type,
    write_text_atomic,
)
from trademaster import registry
from trademaster.contract.atomic_file import replacing
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.portfolio import validation
from trademaster.portfolio.optimizer import DEFAULT_MAX_ITERATIONS, DEFAULT_TOLERANCE
from trademaster.portfolio.problems import validation_problems
from trademaster.portfolio.registration import download_solver
from trademaster.portfolio.solver_source import SOLVER_FILENAME
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

MODEL_TEMPLATE = Path(__file__).resolve().parent / "backends" / "portfolio_model.py"
EXPORT_CHECK_CASES = 24
# Seed offset so the export check uses problems the training suite did not.
EXPORT_CHECK_SEED_OFFSET = 1_000

# Portfolios per request: a gateway batch of more is sent in calls of this many.
MAX_PORTFOLIOS = 64
# Dims without the batch dimension (one row per portfolio).
INPUTS = (
    TensorSpec("expected_returns", "FP32", (-1,)),
    TensorSpec("covariance", "FP32", (-1, -1)),
    TensorSpec("holdings", "INT32", (1,)),
    TensorSpec("max_weight", "FP32", (1,)),
    TensorSpec("risk_aversion", "FP32", (1,)),
)
# Omitted optional inputs (or a row's NaN) take the config's default_* parameters; omitted
# holdings: every row is n wide.
OPTIONAL_INPUTS = frozenset({"holdings", "max_weight", "risk_aversion"})
OUTPUTS = (TensorSpec("weights", "FP32", (-1,)), TensorSpec("error", "BYTES", (1,)))

# One portfolio Triton solves on every instance before it reports the model ready: an
# instance's first request otherwise took 24 ms against 2 ms for the next (a 5-holding solve,
# tritonserver on CPU, 2026-12-07). Zero or random warm-up data would be refused (the
# covariance must be symmetric positive semi-definite), so the inputs are raw little-endian
# FP32 files in `<model>/warmup/`, where Triton reads `input_data_file`.
WARMUP_HOLDINGS = 5
WARMUP_FOLDER = "warmup"
WARMUP_SEED = 0


def warmup_problem() -> dict[str, np.ndarray]:
    """The warm-up portfolio: expected returns [n] and the sample covariance [n, n] of 60
    days of returns (symmetric PSD), n = ``WARMUP_HOLDINGS``, as FP32."""
    rng = np.random.default_rng(WARMUP_SEED)
    returns = rng.normal(0.0, 0.02, size=(60, WARMUP_HOLDINGS))
    return {
        "expected_returns": rng.normal(0.001, 0.002, WARMUP_HOLDINGS).astype(np.float32),
        "covariance": np.cov(returns.T).astype(np.float32),
    }


def warmup_lines() -> list[str]:
    inputs = [
        f"    inputs {{ key: {_quote(name)} value: {{ data_type: TYPE_FP32 "
        f"dims: [ {', '.join(map(str, values.shape))} ] input_data_file: {_quote(name)} }} }}"
        for name, values in warmup_problem().items()
    ]
    return model_warmup_lines(f"{WARMUP_HOLDINGS}_holdings", inputs)


def write_warmup_inputs(repo: Path, name: str) -> None:
    """`repo/<name>/warmup/<input>` for each input of ``warmup_problem``, each atomically."""
    for input_name, values in warmup_problem().items():
        with replacing(repo / name / WARMUP_FOLDER / input_name) as temporary:
            temporary.write_bytes(values.astype("<f4").tobytes())


CPU_HEADER = (
    "# portfolio-optimizer on CPU: python backend, numpy solver, up to max_batch_size",
    "# portfolios per request (padded to one width; holdings counts each row's real entries).",
    "# No dynamic batching: n differs between requests and every solve is its own iterative",
    "# problem, so the batcher could only join equal-n requests and would save no work.",
)
GPU_HEADER = (
    "# portfolio-optimizer on GPU nodes (--model-config-name=gpu): the same python backend,",
    "# still KIND_CPU. The solver is numpy (no native backend can run it) and a few dozen",
    "# holdings are far too small for a GPU to pay off; KIND_GPU would only pin instances to",
    "# devices and reserve GPU memory for nothing. GPU nodes have more cores: more instances.",
)


class ExportCheckError(RuntimeError):
    """The registered solver disagrees with scipy on the export check problems."""


@dataclass(frozen=True)
class PortfolioServingSpec:
    name: str
    default_risk_aversion: float = 3.0
    # An omitted max_weight is raised to 1/n for fewer than 3 holdings (see model.py).
    default_max_weight: float = 0.35
    cpu_instance_count: int = 2
    gpu_node_instance_count: int = 4
    tolerance: float = DEFAULT_TOLERANCE
    max_iterations: int = DEFAULT_MAX_ITERATIONS

    def __post_init__(self) -> None:
        if not self.default_risk_aversion > 0:
            raise ValueError(f"default_risk_aversion must be > 0, got {self.default_risk_aversion}")
        if not 0 < self.default_max_weight <= 1:
            raise ValueError(
                f"default_max_weight must lie in (0, 1], got {self.default_max_weight}"
            )
        if self.cpu_instance_count < 1 or self.gpu_node_instance_count < 1:
            raise ValueError("instance counts must be >= 1")

    @property
    def parameters(self) -> dict[str, str]:
        return {
            Parameter.TASK: TaskKind.PORTFOLIO_OPTIMIZATION.value,
            Parameter.DEFAULT_RISK_AVERSION: repr(self.default_risk_aversion),
            Parameter.DEFAULT_MAX_WEIGHT: repr(self.default_max_weight),
            Parameter.TOLERANCE: repr(self.tolerance),
            Parameter.MAX_ITERATIONS: str(self.max_iterations),
        }


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tensor(tensor: TensorSpec) -> str:
    lines = [
        "  {",
        f"    name: {_quote(tensor.name)}",
        f"    data_type: {triton_data_type(tensor.data_type)}",
        f"    dims: [ {', '.join(str(d) for d in tensor.dims)} ]",
    ]
    if tensor.name in OPTIONAL_INPUTS:
        lines.append("    optional: true")
    return "\n".join([*lines, "  }"])


def _parameter(key: str, value: str) -> str:
    return f"parameters: {{\n  key: {_quote(key)}\n  value: {{ string_value: {_quote(value)} }}\n}}"


def render_config(spec: PortfolioServingSpec, header: tuple[str, ...], instances: int) -> str:
    sections = [
        "\n".join(
            [
                *header,
                f"name: {_quote(spec.name)}",
                'backend: "python"',
                f"max_batch_size: {MAX_PORTFOLIOS}",
                "version_policy: { latest: { num_versions: 1 } }",
            ]
        ),
        "input [\n" + ",\n".join(_tensor(t) for t in INPUTS) + "\n]",
        "output [\n" + ",\n".join(_tensor(t) for t in OUTPUTS) + "\n]",
        f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]",
        "\n".join(warmup_lines()),
        "\n".join(_parameter(key, value) for key, value in sorted(spec.parameters.items())),
    ]
    return "\n\n".join(sections) + "\n"


def render_cpu_config(
    spec: PortfolioServingSpec, tuning: Mapping[str, CpuBatching] | None = None
) -> str:
    """With the measured CPU instance count of ``tuning`` (default:
    `exporters/cpu_batching.json`), else the spec's."""
    tuned = tuned_settings(spec.name, tuning)
    instances = spec.cpu_instance_count if tuned is None else tuned.instance_count
    return render_config(spec, CPU_HEADER, instances)


def render_gpu_config(spec: PortfolioServingSpec) -> str:
    return render_config(spec, GPU_HEADER, spec.gpu_node_instance_count)


def write_configs(repo: Path, spec: PortfolioServingSpec) -> tuple[Path, Path]:
    """`repo/<name>/config.pbtxt` (CPU) and `repo/<name>/configs/gpu.pbtxt` (GPU nodes), after
    the warm-up inputs they name."""
    cpu_path = repo / spec.name / "config.pbtxt"
    gpu_path = repo / spec.name / "configs" / f"{GPU_CONFIG_NAME}.pbtxt"
    write_warmup_inputs(repo, spec.name)
    write_text_atomic(cpu_path, render_cpu_config(spec))
    write_text_atomic(gpu_path, render_gpu_config(spec))
    return cpu_path, gpu_path


def write_version(
    repo: Path, name: str, version: int, solver_file: Path, overwrite: bool = False
) -> Path:
    """Publish `repo/<name>/<version>/` (model.py + the solver), complete or not at all."""
    if not solver_file.is_file():
        raise FileNotFoundError(f"solver file {solver_file} does not exist")
    files = {"model.py": MODEL_TEMPLATE, SOLVER_FILENAME: solver_file}
    return publish_version_folder(repo, name, version, files, overwrite)


def refresh_model_code(repo: Path, name: str) -> list[int]:
    """Puts today's ``model.py`` in every version folder of ``name`` that holds another; the
    versions refreshed. Triton has one config per model, and the config and ``model.py`` must
    agree on the request layout: a version exported before batching, still served beside the
    new one, would otherwise get batched requests it cannot read. Each file is replaced
    atomically; the registered solver beside it is not touched."""
    template = MODEL_TEMPLATE.read_text(encoding="utf-8")
    refreshed = []
    entry = repo / name
    for folder in sorted(entry.iterdir() if entry.is_dir() else (), key=lambda p: p.name):
        code = folder / "model.py"
        if folder.name.isdigit() and code.is_file() and code.read_text("utf-8") != template:
            write_text_atomic(code, template)
            refreshed.append(int(folder.name))
    return refreshed


def check_solver(
    solver: ModuleType, seed: int, cases: int = EXPORT_CHECK_CASES
) -> dict[str, float]:
    """The solver against scipy on fresh problems; raises ``ExportCheckError`` on failure."""
    problems = validation_problems(cases, seed + EXPORT_CHECK_SEED_OFFSET)
    with validation.single_threaded_blas():
        references = validation.solve_references(problems)
        results = validation.evaluate(problems, references, solver.solve_portfolio)
    metrics = validation.summarise(results)
    reasons = validation.failures(metrics)
    if reasons:
        raise ExportCheckError("; ".join(reasons))
    return metrics


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    """Checks the registered solver against scipy, then writes the configs and version folder."""
    spec = PortfolioServingSpec(version.name)
    with tempfile.TemporaryDirectory() as tmp:
        solver_file, solver = download_solver(settings, version, Path(tmp))
        metrics = check_solver(solver, settings.seed)
        log.info(
            "%s v%d export check on %d problems: max relative utility difference %.3g",
            version.name,
            version.version,
            EXPORT_CHECK_CASES,
            metrics["max_rel_objective_diff"],
        )
        if refreshed := refresh_model_code(settings.model_repository, version.name):
            log.info("%s: model.py of versions %s matches the config now", version.name, refreshed)
        write_configs(settings.model_repository, spec)
        target = write_version(
            settings.model_repository, version.name, version.version, solver_file, overwrite=True
        )
    report = {
        "export_max_rel_objective_diff": metrics["max_rel_objective_diff"],
        "export_max_sum_violation": metrics["max_sum_violation"],
        "export_max_bound_violation": metrics["max_bound_violation"],
    }
    registry.log_version_metrics(settings, version, report)
    return {
        "model_name": version.name,
        "version": version.version,
        "path": str(target),
        "check_cases": EXPORT_CHECK_CASES,
        **report,
    }
