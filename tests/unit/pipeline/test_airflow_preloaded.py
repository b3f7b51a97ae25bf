"""The scheduler's preload covers every module a task imports, so no task imports one again."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import trademaster.pipeline.tasks as tasks_module


def _ours(name: str) -> bool:
    return name.split(".")[0] in {"trademaster", "exporters"}


def _is_module(name: str) -> bool:
    try:
        return _ours(name) and importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # an attribute of a module, not a submodule
        return False


def _modules_tasks_import() -> set[str]:
    tree = ast.parse(Path(str(tasks_module.__file__)).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from package import module`` imports a module too.
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if _is_module(f"{node.module}.{alias.name}")
            )
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if _ours(name)}


def test_preloading_imports_every_module_the_tasks_import() -> None:
    expected = _modules_tasks_import()
    assert "trademaster.rollout.canary" in expected  # the parse found the lazy imports
    code = (
        "import json, sys\n"
        "from trademaster.pipeline.airflow_preloaded import preload\n"
        "preload()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    loaded = set(json.loads(completed.stdout.splitlines()[-1]))
    assert expected - loaded == set()
    # The heavy libraries are what the preload is for.
    assert {"torch", "mlflow", "feast", "onnxruntime", "sklearn"} <= loaded
