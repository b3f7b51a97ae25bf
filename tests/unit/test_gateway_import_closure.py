"""The gateway's import closure: ``import gateway.app`` in a fresh interpreter must load none of
the training stack. The gateway image installs only requirements/gateway.lock, so a module of
that stack imported at start-up would fail there; here, in the dev environment that has it all,
the probe makes them unimportable, as in the image (Feast, for one, tries ``import torch`` and
carries on without it), and fails on any attempt made by the project's own code. A fresh
interpreter, because this test session has imported plenty."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trademaster.settings import PROJECT_ROOT

FORBIDDEN = (
    "airflow",
    "mlflow",
    "torch",
    "transformers",
    "sentence_transformers",
    "onnx",
    "onnxruntime",
    "sklearn",
    "trademaster.training",
    "exporters",
    # tritonclient.http needs it; the image has tritonclient's gRPC client only.
    "geventhttpclient",
)
# What runs from the gateway image: the gateway, and the serving agent sidecar of Triton pods.
ENTRY_POINTS = ("gateway.app", "trademaster.serving.__main__")

# Imports gateway.app with the forbidden modules unimportable and prints, as JSON, the loaded
# modules and, for each forbidden module asked for, the chain of imports (file:line, source)
# that first asked for it.
PROBE = """
import importlib.abc, json, sys, traceback

FORBIDDEN = {forbidden!r}
chains = {{}}


def forbidden(name):
    return next((f for f in FORBIDDEN if name == f or name.startswith(f + ".")), None)


class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        root = forbidden(name)
        if root and root not in chains:
            chains[root] = [
                f"{{frame.filename}}:{{frame.lineno}}  {{frame.line}}"
                for frame in traceback.extract_stack()[:-1]
                if not frame.filename.startswith("<")
            ]
        if root:
            raise ModuleNotFoundError(f"{{name}} is not in the gateway image", name=name)
        return None


sys.meta_path.insert(0, Recorder())
importlib.import_module({module!r})

loaded = sorted(name for name, module in sys.modules.items() if module is not None)
print(json.dumps({{"loaded": loaded, "chains": chains}}))
"""


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_importing_the_gateway_loads_none_of_the_training_stack(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN, module=module)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "FEAST_USAGE": "False"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"import {module} failed:\n{result.stderr}"
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    loaded: list[str] = probe["loaded"]
    packages = {name.split(".")[0] for name in loaded}
    print(f"{module} import closure: {len(loaded)} modules, {len(packages)} top-level packages")

    offending = {
        root: [name for name in loaded if name == root or name.startswith(root + ".")]
        for root in FORBIDDEN
    }
    offending = {root: names for root, names in offending.items() if names}
    report = "\n".join(
        f"{root} ({len(names)} modules) imported via:\n    "
        + "\n    ".join(
            line.replace(str(PROJECT_ROOT) + "/", "") for line in probe["chains"].get(root, [])
        )
        for root, names in offending.items()
    )
    assert not offending, f"import {module} loads the training stack:\n{report}"
    project = (f"{PROJECT_ROOT}/{package}/" for package in ("gateway", "trademaster", "exporters"))
    prefixes = tuple(project)
    asked = {
        root: chain
        for root, chain in probe["chains"].items()
        # The innermost frame is the import statement that asked.
        if chain and chain[-1].startswith(prefixes)
    }
    assert not asked, f"{module}'s own code asks for the training stack: {asked}"
