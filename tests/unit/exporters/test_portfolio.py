from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from exporters import portfolio
from exporters.portfolio import (
    ExportCheckError,
    PortfolioServingSpec,
    check_solver,
    export_version,
    refresh_model_code,
    render_cpu_config,
    render_gpu_config,
    write_configs,
    write_version,
)
from exporters.registered import export_champion, is_exported
from tests.unit.portfolio.support import equal_weights, top_level_imports
from trademaster import registry
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.portfolio import optimizer
from trademaster.portfolio.registration import log_solver_version
from trademaster.portfolio.solver_source import SOLVER_FILENAME, SOLVER_SOURCE
from trademaster.settings import PipelineSettings

SPEC = PortfolioServingSpec("portfolio-optimizer")


def _parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def _inputs(config: mc.ModelConfig) -> list[tuple[str, int, list[int], bool]]:
    return [(t.name, t.data_type, list(t.dims), t.optional) for t in config.input]


@pytest.mark.parametrize("render", [render_cpu_config, render_gpu_config])
def test_both_configs_describe_the_same_contract(render: object) -> None:
    config = _parse(render(SPEC))  # type: ignore[operator]

    assert config.name == "portfolio-optimizer"
    assert config.backend == "python"
    assert config.max_batch_size == portfolio.MAX_PORTFOLIOS  # portfolios per request
    assert not config.HasField("dynamic_batching")
    assert _inputs(config) == [
        ("expected_returns", mc.TYPE_FP32, [-1], False),
        ("covariance", mc.TYPE_FP32, [-1, -1], False),
        ("holdings", mc.TYPE_INT32, [1], True),
        ("max_weight", mc.TYPE_FP32, [1], True),
        ("risk_aversion", mc.TYPE_FP32, [1], True),
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("weights", mc.TYPE_FP32, [-1]),
        ("error", mc.TYPE_STRING, [1]),
    ]
    assert {key: value.string_value for key, value in config.parameters.items()} == {
        "task": "portfolio_optimization",
        "default_risk_aversion": "3.0",
        "default_max_weight": "0.35",
        "tolerance": repr(optimizer.DEFAULT_TOLERANCE),
        "max_iterations": str(optimizer.DEFAULT_MAX_ITERATIONS),
    }


def test_gpu_nodes_run_more_cpu_instances_and_say_why() -> None:
    cpu, gpu = render_cpu_config(SPEC), render_gpu_config(SPEC)

    assert [(g.kind, g.count) for g in _parse(cpu).instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, 2)
    ]
    assert [(g.kind, g.count) for g in _parse(gpu).instance_group] == [
        (mc.ModelInstanceGroup.KIND_CPU, 4)
    ]
    assert "still KIND_CPU" in gpu
    assert "No dynamic batching" in cpu


@pytest.mark.parametrize(
    "fields",
    [
        {"default_risk_aversion": 0.0},
        {"default_max_weight": 0.0},
        {"default_max_weight": 1.5},
        {"cpu_instance_count": 0},
    ],
)
def test_a_spec_refuses_unusable_defaults(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        PortfolioServingSpec("portfolio-optimizer", **fields)  # type: ignore[arg-type]


def test_configs_are_written_where_triton_looks(tmp_path: Path) -> None:
    cpu_path, gpu_path = write_configs(tmp_path, SPEC)

    assert cpu_path == tmp_path / "portfolio-optimizer" / "config.pbtxt"
    assert gpu_path == tmp_path / "portfolio-optimizer" / "configs" / "gpu.pbtxt"
    assert cpu_path.read_text() == render_cpu_config(SPEC)


@pytest.mark.parametrize("render", [render_cpu_config, render_gpu_config])
def test_the_warm_up_is_a_portfolio_the_solver_solves_from_files_beside_the_config(
    render: object, tmp_path: Path
) -> None:
    """Triton refuses to load a model whose warm-up request fails, so the warm-up must be a
    valid problem: files of the dims the config names, decoded as the solver gets them."""
    write_configs(tmp_path, SPEC)
    (sample,) = _parse(render(SPEC)).model_warmup  # type: ignore[operator]
    assert sample.batch_size == 1
    assert sample.count >= 1
    decoded = {}
    for name, value in sample.inputs.items():
        assert value.data_type == mc.TYPE_FP32
        raw = (tmp_path / "portfolio-optimizer" / "warmup" / value.input_data_file).read_bytes()
        decoded[name] = np.frombuffer(raw, "<f4").reshape(list(value.dims)).astype(np.float64)
    assert set(decoded) == {"expected_returns", "covariance"}  # the optional ones: defaults
    n = decoded["expected_returns"].shape[0]
    assert decoded["covariance"].shape == (n, n)
    assert np.array_equal(decoded["covariance"], decoded["covariance"].T)
    assert np.linalg.eigvalsh(decoded["covariance"]).min() > 0

    solution = optimizer.solve_portfolio(
        decoded["expected_returns"],
        decoded["covariance"],
        max(SPEC.default_max_weight, 1 / n),
        SPEC.default_risk_aversion,
    )

    assert solution.converged
    assert solution.weights.sum() == pytest.approx(1.0)


def test_a_version_folder_holds_the_model_and_the_solver(tmp_path: Path) -> None:
    target = write_version(tmp_path, "portfolio-optimizer", 3, SOLVER_SOURCE)

    assert sorted(p.name for p in target.iterdir()) == ["model.py", SOLVER_FILENAME]
    assert (target / "model.py").read_bytes() == portfolio.MODEL_TEMPLATE.read_bytes()
    assert (target / SOLVER_FILENAME).read_bytes() == SOLVER_SOURCE.read_bytes()
    assert [p.name for p in (tmp_path / "portfolio-optimizer").iterdir()] == ["3"]


def test_an_existing_version_is_kept_unless_overwrite(tmp_path: Path) -> None:
    other = tmp_path / "other.py"
    other.write_text("# another solver\n")
    write_version(tmp_path, "portfolio-optimizer", 1, SOLVER_SOURCE)

    with pytest.raises(FileExistsError):
        write_version(tmp_path, "portfolio-optimizer", 1, other)
    target = write_version(tmp_path, "portfolio-optimizer", 1, other, overwrite=True)

    assert (target / SOLVER_FILENAME).read_text() == "# another solver\n"
    assert [p.name for p in (tmp_path / "portfolio-optimizer").iterdir()] == ["1"]


def test_older_versions_get_the_model_code_that_matches_the_config(tmp_path: Path) -> None:
    """One config serves every version: an older version's model.py (from before batched
    requests) is replaced, its registered solver kept."""
    old = write_version(tmp_path, "portfolio-optimizer", 1, SOLVER_SOURCE)
    (old / "model.py").write_text("# one portfolio per request\n")
    write_version(tmp_path, "portfolio-optimizer", 2, SOLVER_SOURCE)

    assert refresh_model_code(tmp_path, "portfolio-optimizer") == [1]

    assert (old / "model.py").read_bytes() == portfolio.MODEL_TEMPLATE.read_bytes()
    assert (old / SOLVER_FILENAME).read_bytes() == SOLVER_SOURCE.read_bytes()
    assert refresh_model_code(tmp_path, "portfolio-optimizer") == []  # nothing left to do
    assert refresh_model_code(tmp_path, "never-exported") == []


def test_the_model_template_imports_only_what_the_serving_env_has() -> None:
    imported = top_level_imports(portfolio.MODEL_TEMPLATE)

    standard = {"__future__", "collections", "hashlib", "importlib", "json", "pathlib", "sys"}
    assert imported - standard - {"types", "typing"} == {"numpy", "triton_python_backend_utils"}


def test_the_check_refuses_a_solver_that_is_not_optimal() -> None:
    with pytest.raises(ExportCheckError, match="utility differs from scipy's"):
        check_solver(SimpleNamespace(solve_portfolio=equal_weights), seed=1, cases=8)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> PipelineSettings:
    root = tmp_path_factory.mktemp("export")
    return PipelineSettings(
        environment="test", data_dir=root / "var", model_repository=root / "repository"
    )


def test_export_writes_the_registered_solver_and_records_the_check(
    store: PipelineSettings,
) -> None:
    version = log_solver_version(store, "portfolio-optimizer", {}, {}, {"task": "t"})
    registry.promote(store, version, "test")
    definition = catalog_definition("portfolio-optimizer")

    report = export_champion(store, definition.name, definition.exporter.export_version)

    folder = store.model_repository / "portfolio-optimizer" / str(version.version)
    assert report["exported"]
    assert report["path"] == str(folder)
    assert report["export_max_rel_objective_diff"] < 1e-9
    assert is_exported(store.model_repository, "portfolio-optimizer", version.version)
    assert (folder / SOLVER_FILENAME).read_bytes() == SOLVER_SOURCE.read_bytes()
    metrics = registry.run_metrics(store, version.run_id)
    assert metrics["export_max_rel_objective_diff"] == report["export_max_rel_objective_diff"]
    assert not export_champion(store, definition.name, definition.exporter.export_version)[
        "exported"
    ]


def test_export_serves_the_registered_code_not_the_working_tree(
    store: PipelineSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Registered from a solver that differs from today's optimizer.py (as after an edit).
    earlier = tmp_path / "optimizer.py"
    earlier.write_bytes(SOLVER_SOURCE.read_bytes() + b"\n# as registered last month\n")
    monkeypatch.setattr("trademaster.portfolio.registration.SOLVER_SOURCE", earlier)
    version = log_solver_version(store, "portfolio-optimizer", {}, {}, {})
    monkeypatch.undo()

    report = export_version(store, version)

    assert (Path(report["path"]) / SOLVER_FILENAME).read_bytes() == earlier.read_bytes()
