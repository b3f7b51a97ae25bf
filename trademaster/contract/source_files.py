"""Python files imported by path: the Feast definitions, the runner Triton copies."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def import_path(module_name: str, path: Path) -> ModuleType:
    """Executes ``path`` as a new module named ``module_name`` (not put in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no Python module at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
