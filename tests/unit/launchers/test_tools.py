from __future__ import annotations

import os
import stat
import sys
import sysconfig
from pathlib import Path

import pytest

from trademaster.launchers.tools import (
    MissingToolError,
    ServingTools,
    prepare_backend_dir,
    project_root,
    triton_environment,
)


def _fake_tools(root: Path) -> ServingTools:
    tools = ServingTools.from_project_root(root)
    for path in (*tools.backend_files, tools.python_stub, tools.tritonserver):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(path.name.encode())
    tools.python_stub.chmod(0o755)
    return tools


def test_project_root_is_the_repository() -> None:
    assert (project_root() / "pyproject.toml").is_file()
    assert (project_root() / "trademaster" / "launchers" / "tools.py").is_file()


def test_paths_follow_the_bootstrap_layout(tmp_path: Path) -> None:
    tools = ServingTools.from_project_root(tmp_path)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    server = tmp_path / ".tools" / "pytriton" / "pytriton" / "tritonserver"
    assert tools.tritonserver == server / "bin" / "tritonserver"
    assert tools.python_stub == (
        server / "python_backend_stubs" / version / "triton_python_backend_stub"
    )
    assert tools.pytriton_libs == tmp_path / ".tools" / "pytriton" / "nvidia_pytriton.libs"
    assert tools.serving_venv_bin == tmp_path / ".venv-serving" / "bin"
    assert tools.perf_analyzer == tmp_path / ".tools" / "perf" / "bin" / "perf_analyzer"
    assert tools.cudart_lib_dir.name == "lib"


def test_require_names_the_missing_path(tmp_path: Path) -> None:
    tools = ServingTools.from_project_root(tmp_path)

    with pytest.raises(MissingToolError, match="make bootstrap") as info:
        tools.require()
    assert str(tools.tritonserver) in str(info.value)
    with pytest.raises(MissingToolError, match="perf_analyzer"):
        tools.require(triton=False)


def test_prepare_backend_dir_is_idempotent_and_keeps_stub_executable(tmp_path: Path) -> None:
    tools = _fake_tools(tmp_path / "root")
    dest = tmp_path / "backends"

    assert prepare_backend_dir(tools, dest) == dest
    first = {p.name: p.stat().st_ino for p in (dest / "python").iterdir()}
    prepare_backend_dir(tools, dest)
    second = {p.name: p.stat().st_ino for p in (dest / "python").iterdir()}

    assert sorted(first) == [
        "libtriton_python.so",
        "triton_python_backend_stub",
        "triton_python_backend_utils.py",
    ]
    assert first == second
    assert os.stat(dest / "python" / "triton_python_backend_stub").st_mode & stat.S_IXUSR


def test_prepare_backend_dir_replaces_changed_files(tmp_path: Path) -> None:
    tools = _fake_tools(tmp_path / "root")
    dest = prepare_backend_dir(tools, tmp_path / "backends")
    tools.python_stub.write_bytes(b"new stub build")
    os.utime(tools.python_stub, (1, 1))

    prepare_backend_dir(tools, dest)

    assert (dest / "python" / "triton_python_backend_stub").read_bytes() == b"new stub build"
    assert [p.name for p in (dest / "python").iterdir() if p.name.startswith(".")] == []


def test_triton_environment_puts_serving_venv_first(tmp_path: Path) -> None:
    tools = ServingTools.from_project_root(tmp_path)
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/main/site", "LD_LIBRARY_PATH": "/opt/lib"}

    env = triton_environment(tools, base)

    assert env["PATH"].split(os.pathsep) == [str(tools.serving_venv_bin), "/usr/bin"]
    assert "PYTHONPATH" not in env
    lib_path = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert lib_path[0] == str(tools.pytriton_libs)
    assert lib_path[1] == sysconfig.get_config_var("LIBDIR")
    assert lib_path[-1] == "/opt/lib"
