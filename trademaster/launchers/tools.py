"""Where the serving binaries live, and how to launch them.

`make bootstrap` unpacks the `nvidia-pytriton` wheel into `.tools/pytriton` (a real `tritonserver`
with the python backend) and the `tritonclient==2.50` wheel into `.tools/perf` (`perf_analyzer`
plus `libcudart.so.12`). Nothing here is imported from those folders; only their files are used.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trademaster.contract.atomic_file import replacing

BACKEND_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
STUB_NAME = "triton_python_backend_stub"


class MissingToolError(RuntimeError):
    """A binary or library the serving stack needs is not installed."""


def project_root() -> Path:
    """The repository root (this file is `<root>/trademaster/launchers/tools.py`)."""
    return Path(__file__).resolve().parents[2]


def kubectl() -> str:
    """The machine's kubectl, else the one make bootstrap installs where there is none
    (``kubectl kustomize`` renders k8s/ without a cluster); MissingToolError otherwise."""
    bundled = project_root() / ".tools" / "kubectl" / "bin" / "kubectl"
    found = shutil.which("kubectl") or (str(bundled) if bundled.is_file() else None)
    if found is None:
        raise MissingToolError("kubectl is not installed (make bootstrap): cannot render k8s/")
    return found


@dataclass(frozen=True)
class ServingTools:
    """Paths to the serving tools installed under `<root>/.tools` and the serving venv."""

    tritonserver: Path
    pytriton_libs: Path
    backend_files: tuple[Path, ...]
    python_stub: Path
    serving_venv_bin: Path
    perf_analyzer: Path
    cudart_lib_dir: Path

    @classmethod
    def from_project_root(cls, root: Path | None = None) -> ServingTools:
        root = project_root() if root is None else root
        pytriton = root / ".tools" / "pytriton"
        server_dir = pytriton / "pytriton" / "tritonserver"
        python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
        perf = root / ".tools" / "perf"
        return cls(
            tritonserver=server_dir / "bin" / "tritonserver",
            pytriton_libs=pytriton / "nvidia_pytriton.libs",
            backend_files=tuple(server_dir / "backends" / "python" / f for f in BACKEND_FILES),
            python_stub=server_dir / "python_backend_stubs" / python_version / STUB_NAME,
            serving_venv_bin=root / ".venv-serving" / "bin",
            perf_analyzer=perf / "bin" / "perf_analyzer",
            cudart_lib_dir=perf / "nvidia" / "cuda_runtime" / "lib",
        )

    def triton_paths(self) -> tuple[Path, ...]:
        """What `tritonserver` with the python backend needs."""
        return (
            self.tritonserver,
            self.pytriton_libs,
            *self.backend_files,
            self.python_stub,
            self.serving_venv_bin / "python3",
        )

    def perf_analyzer_paths(self) -> tuple[Path, ...]:
        """What `perf_analyzer` needs."""
        return (self.perf_analyzer, self.cudart_lib_dir / "libcudart.so.12")

    def require(self, *, triton: bool = True, perf_analyzer: bool = True) -> None:
        """Raise `MissingToolError` naming the first missing path of the selected tools."""
        wanted: list[Path] = []
        if triton:
            wanted.extend(self.triton_paths())
        if perf_analyzer:
            wanted.extend(self.perf_analyzer_paths())
        for path in wanted:
            if not path.exists():
                raise MissingToolError(f"{path} is missing: run `make bootstrap`")


def prepare_backend_dir(tools: ServingTools, dest: Path) -> Path:
    """Assemble a Triton backend directory at `dest` (the python backend lives in `dest/python`).

    Returns `dest`, the value for `--backend-directory`. Safe to call again, even while a server
    runs the stub: unchanged files are left alone and changed ones are replaced atomically.
    """
    python_dir = dest / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for source in (*tools.backend_files, tools.python_stub):
        _copy_if_changed(source, python_dir / source.name)
    return dest


def _copy_if_changed(source: Path, target: Path) -> None:
    src_stat = source.stat()
    if target.exists():
        dst_stat = target.stat()
        if dst_stat.st_size == src_stat.st_size and dst_stat.st_mtime == src_stat.st_mtime:
            return
    # Writing over a running executable fails with ETXTBSY; a rename does not.
    with replacing(target) as temporary:
        shutil.copy2(source, temporary)


def triton_environment(
    tools: ServingTools, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for `tritonserver`, starting from `base` (default: `os.environ`).

    The python-backend stub ignores PYTHONPATH: it finds its interpreter (and so its
    site-packages) by looking up `python3` on PATH, so the serving venv's `bin` goes first.
    """
    env = dict(os.environ if base is None else base)
    for variable in ("PYTHONPATH", "PYTHONHOME"):
        env.pop(variable, None)
    env["PATH"] = _prepend(str(tools.serving_venv_bin), env.get("PATH"))
    env["VIRTUAL_ENV"] = str(tools.serving_venv_bin.parent)
    libdir = sysconfig.get_config_var("LIBDIR")
    lib_path = env.get("LD_LIBRARY_PATH")
    if libdir:
        lib_path = _prepend(str(libdir), lib_path)
    env["LD_LIBRARY_PATH"] = _prepend(str(tools.pytriton_libs), lib_path)
    # The served models are small: BLAS thread pools in every model instance only fight for
    # the cores (portfolio solves measured ~2x slower at n=60 with threads on).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _prepend(entry: str, path_list: str | None) -> str:
    return entry if not path_list else f"{entry}{os.pathsep}{path_list}"
