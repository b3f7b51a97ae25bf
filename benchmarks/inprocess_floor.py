"""The floor under Triton's figures: each served model run in this process on the same inputs
as perf_analyzer's, with the same runtime, artifact and thread count the served config names
(ONNX Runtime, or TorchScript for the price LSTM; the sentiment ensemble's tokenizer, encoder and
head in sequence; the portfolio's solver once per portfolio). No RPC, no queue, no batcher:
what one call of the work itself costs.
"""

from __future__ import annotations

import functools
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporters.triton_config import RUNNER_TEMPLATE
from trademaster.contract.source_files import import_path
from trademaster.portfolio.optimizer import solve_portfolio
from trademaster.sentiment import encoder as sentence_encoder

Arrays = list[np.ndarray]
Entry = Mapping[str, Any]
Runner = Callable[[Sequence[Entry]], Arrays]
ConfigOf = Callable[[str], Mapping[str, Any]]

_NUMPY_TYPES = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64, "TYPE_INT32": np.int32}
BACKEND_UTILS = "triton_python_backend_utils"
ENSEMBLE_STEPS = ("sentiment-tokenizer", "sentiment-encoder", "sentiment-head")


@dataclass(frozen=True)
class FloorRow:
    model: str
    batch_size: int
    calls: int
    inferences_per_s: float
    p50_ms: float
    p99_ms: float


def parameters_of(config: Mapping[str, Any]) -> dict[str, str]:
    return {key: value["string_value"] for key, value in config.get("parameters", {}).items()}


def entry_array(
    entry: Entry, name: str, dtype: Any, dims: Sequence[int | str] | None = None
) -> np.ndarray:
    """One perf_analyzer data entry's tensor: ``{"content", "shape"}``, or a flat list in the
    config's ``dims`` (as perf_analyzer reads it)."""
    value = entry[name]
    if isinstance(value, Mapping):
        return np.asarray(value["content"], dtype=dtype).reshape(value["shape"])
    array = np.asarray(value, dtype=dtype)
    if dims is not None and all(int(d) > 0 for d in dims):
        return array.reshape([int(d) for d in dims])
    return array


def runner_loaders() -> Mapping[str, Callable[[Path, int], Callable[[Arrays], Arrays]]]:
    """The served runner's own loaders (`exporters/backends/runtime_model.py`), so the floor
    builds each session exactly as Triton's stub does. The runner imports Triton's
    python-backend utilities, which exist only inside Triton; its loaders do not use them."""
    loaders: Mapping[str, Callable[[Path, int], Callable[[Arrays], Arrays]]]
    loaders = _runner_module()._LOADERS
    return loaders


@functools.cache
def _runner_module() -> types.ModuleType:
    placeholder = BACKEND_UTILS not in sys.modules
    if placeholder:
        sys.modules[BACKEND_UTILS] = types.ModuleType(BACKEND_UTILS)
    try:
        return import_path("served_runtime_runner", RUNNER_TEMPLATE)
    finally:
        if placeholder:
            del sys.modules[BACKEND_UTILS]


def _load(runtime: str, path: Path, threads: int) -> Callable[[Arrays], Arrays]:
    return runner_loaders()[runtime](path, threads)


def runtime_runner(folder: Path, config: Mapping[str, Any]) -> Runner:
    """A model served by the CPU runner (`exporters/backends/runtime_model.py`)."""
    parameters = parameters_of(config)
    runtime = parameters.get("runtime", "onnx")
    default_file = "model.onnx" if runtime == "onnx" else "model.pt"
    artifact = folder / parameters.get("model_filename", default_file)
    run = _load(runtime, artifact, int(parameters.get("intra_op_threads", "1")))
    inputs = [(i["name"], _NUMPY_TYPES[i["data_type"]], i["dims"]) for i in config["input"]]

    def call(entries: Sequence[Entry]) -> Arrays:
        return run(
            [
                np.stack([entry_array(e, name, dtype, dims) for e in entries])
                for name, dtype, dims in inputs
            ]
        )

    return call


def sentiment_runner(repository: Path, config_of: ConfigOf) -> Runner:
    """The ensemble's three steps in sequence, each as its config serves it."""
    tokenizer_name, encoder_name, head_name = ENSEMBLE_STEPS
    tokenizer_params = parameters_of(config_of(tokenizer_name))
    folder = repository / tokenizer_name / str(newest_version(repository / tokenizer_name))
    tokenizer = sentence_encoder.load_tokenizer(
        folder / tokenizer_params.get("tokenizer_filename", sentence_encoder.TOKENIZER_FILE)
    )
    encoder = runtime_session(repository, encoder_name, config_of(encoder_name))
    head = runtime_session(repository, head_name, config_of(head_name))

    def call(entries: Sequence[Entry]) -> Arrays:
        texts = [str(entry["text"][0]) for entry in entries]
        ids, mask = sentence_encoder.tokenize(tokenizer, texts)
        (embedding,) = encoder([ids, mask])
        return head([embedding])

    return call


def runtime_session(
    repository: Path, name: str, config: Mapping[str, Any]
) -> Callable[[Arrays], Arrays]:
    """An ensemble step served by the runner, its inputs in the config's order."""
    parameters = parameters_of(config)
    version = newest_version(repository / name)
    threads = int(parameters.get("intra_op_threads", "1"))
    return _load("onnx", repository / name / str(version) / "model.onnx", threads)


def portfolio_runner(config: Mapping[str, Any]) -> Runner:
    """The served solver, once per portfolio, with the config's defaults."""
    parameters = parameters_of(config)
    max_weight = float(parameters["default_max_weight"])
    risk_aversion = float(parameters["default_risk_aversion"])
    solver_options: dict[str, Any] = {}
    if "tolerance" in parameters:
        solver_options["tolerance"] = float(parameters["tolerance"])
    if "max_iterations" in parameters:
        solver_options["max_iterations"] = int(parameters["max_iterations"])

    def call(entries: Sequence[Entry]) -> Arrays:
        weights = []
        for entry in entries:
            mu = entry_array(entry, "expected_returns", np.float64)
            sigma = entry_array(entry, "covariance", np.float64)
            cap = max(max_weight, 1.0 / mu.size)
            solution = solve_portfolio(mu, sigma, cap, risk_aversion, **solver_options)
            weights.append(solution.weights.astype(np.float32))
        return [np.stack(weights)]

    return call


def newest_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"{model_dir} has no version folder")
    return max(versions)


def floor_runner(repository: Path, model: str, config_of: ConfigOf) -> Runner:
    """What serves ``model`` in Triton, built in this process from the served config."""
    if model == "sentiment-analyzer":
        return sentiment_runner(repository, config_of)
    config = config_of(model)
    if config.get("backend") == "python" and "runtime" not in parameters_of(config):
        return portfolio_runner(config)
    folder = repository / model / str(newest_version(repository / model))
    return runtime_runner(folder, config)


def batches(entries: Sequence[Entry], batch_size: int) -> list[list[Entry]]:
    """Consecutive runs of ``batch_size`` entries, wrapping around, at least one batch."""
    count = max(1, len(entries) // batch_size)
    return [
        [entries[(i * batch_size + j) % len(entries)] for j in range(batch_size)]
        for i in range(count)
    ]


def measure_floor(
    model: str,
    runner: Runner,
    entries: Sequence[Entry],
    batch_size: int,
    seconds: float = 1.0,
    min_calls: int = 20,
    warm_up_calls: int = 5,
) -> FloorRow:
    """Back-to-back calls of ``batch_size`` entries for ``seconds`` (at least ``min_calls``)."""
    work = batches(entries, batch_size)
    for i in range(warm_up_calls):
        runner(work[i % len(work)])
    took: list[float] = []
    started = time.perf_counter()
    while len(took) < min_calls or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        runner(work[len(took) % len(work)])
        took.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    ms = np.asarray(took) * 1e3
    return FloorRow(
        model=model,
        batch_size=batch_size,
        calls=len(took),
        inferences_per_s=len(took) * batch_size / elapsed,
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
    )
