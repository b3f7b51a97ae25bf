"""What a training run is a function of, as one hash: the data it trains on, the code that
trains, and its parameters. Two runs with the same fingerprint would register the same model,
so the pipeline reuses the version already registered with that fingerprint instead of
training it again (a rerun after a failed run creates no duplicate versions).

The code is every source file of the model's package and of ``trademaster.training`` (the
fit loops, gates and metrics every model shares): a change to either trains anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from trademaster import registry
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import candidate_report

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "training_fingerprint"
SHARED_TRAINING_CODE = Path(__file__).resolve().parent


def frame_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's column names, dtypes and values, in row order (the index ignored)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(np.ascontiguousarray(rows).tobytes())
    return digest.hexdigest()


def source_digest(*folders: Path) -> str:
    """sha256 of every ``.py`` file under ``folders`` (their paths within them and bytes)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_code(package: ModuleType) -> str:
    """The code version of a model package: its sources and the shared training code."""
    if package.__file__ is None:
        raise ValueError(f"{package.__name__} has no source files")
    return source_digest(Path(package.__file__).resolve().parent, SHARED_TRAINING_CODE)


def training_fingerprint(data: Mapping[str, str], code: str, params: Mapping[str, Any]) -> str:
    """One hash of the data digests (name -> digest), the code digest and the parameters."""
    body = {
        "data": dict(sorted(data.items())),
        "code": code,
        "params": {key: repr(value) for key, value in sorted(params.items())},
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def reused_candidate(
    settings: PipelineSettings, model_name: str, fingerprint: str
) -> dict[str, Any] | None:
    """The candidate report of the version already registered with ``fingerprint`` (its
    run's metrics), or None when this data, code and parameters were never trained."""
    version = registry.version_with_tag(settings, model_name, FINGERPRINT_TAG, fingerprint)
    if version is None:
        return None
    log.info(
        "%s: version %d was trained on the same data, code and parameters (%s %s): reused, "
        "not trained again",
        model_name,
        version.version,
        FINGERPRINT_TAG,
        fingerprint[:12],
    )
    return candidate_report(version, registry.run_metrics(settings, version.run_id))
