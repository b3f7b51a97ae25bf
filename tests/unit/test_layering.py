"""Dependencies point one way: warehouse -> features -> training -> registry/exporters ->
pipeline -> CLI, and the gateway imports only the dependency-free contract and a few numpy or
Feast helpers. Read from the source (every ``import``, module level or inside a function), so
a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from trademaster.settings import PROJECT_ROOT

# Lower layers never import higher ones; a layer may import itself and anything below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("trademaster.settings", "trademaster.contract"),
    ("trademaster.launchers", "trademaster.serving"),
    ("trademaster.warehouse",),
    ("trademaster.features",),
    ("trademaster.registry",),
    ("trademaster.training", "trademaster.monitoring"),
    (
        "trademaster.sentiment",
        "trademaster.risk",
        "trademaster.behavior",
        "trademaster.price_lstm",
        "trademaster.portfolio",
    ),
    ("exporters",),
    ("trademaster.rollout",),
    ("trademaster.pipeline",),
    ("trademaster.stack", "trademaster.cli", "dags"),
)
MODEL_PACKAGES = LAYERS[6]
# What the gateway may import from the project (its image has no training stack).
GATEWAY_ALLOWED = (
    "gateway",
    "trademaster.contract",
    "trademaster.settings",
    "trademaster.features.store",
    "trademaster.portfolio.covariance",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _layer(name: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if _within(name, prefixes):
            return index
    return None


def _sources(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if "backends" not in path.parts
    ]


def test_the_layers_cover_every_project_module() -> None:
    unplaced = [
        _module_name(path)
        for path in _sources("trademaster", "exporters", "dags")
        if _layer(_module_name(path)) is None and _module_name(path) != "trademaster"
    ]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


@pytest.mark.parametrize("path", _sources("trademaster", "exporters", "dags"), ids=str)
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    module = _module_name(path)
    own = _layer(module)
    assert own is not None or module == "trademaster"
    upward = sorted(
        name
        for name in _imports(path)
        if (layer := _layer(name)) is not None and own is not None and layer > own
    )
    assert not upward, f"{module} (layer {own}) imports higher layers: {upward}"


@pytest.mark.parametrize("path", _sources("trademaster"), ids=str)
def test_a_model_package_does_not_import_another(path: Path) -> None:
    module = _module_name(path)
    own = next((prefix for prefix in MODEL_PACKAGES if _within(module, (prefix,))), None)
    if own is None:
        return
    others = tuple(prefix for prefix in MODEL_PACKAGES if prefix != own)
    crossing = sorted(name for name in _imports(path) if _within(name, others))
    assert not crossing, f"{module} imports another model's package: {crossing}"


@pytest.mark.parametrize("path", _sources("gateway"), ids=str)
def test_the_gateway_imports_only_the_contract_from_the_project(path: Path) -> None:
    project = ("trademaster", "exporters", "dags", "gateway")
    outside = sorted(
        name
        for name in _imports(path)
        if _within(name, project) and not _within(name, GATEWAY_ALLOWED)
    )
    assert not outside, f"{_module_name(path)} imports {outside}"
