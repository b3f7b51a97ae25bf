"""The serving sweep's parts on real Triton: the in-process floor answers as Triton does on the
same inputs, and tuning loads and measures each candidate and leaves its choice served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient

from benchmarks.batching_tuning import current_settings
from benchmarks.inprocess_floor import entry_array, floor_runner
from benchmarks.models import perf_inputs
from benchmarks.serving_sweep import MODELS, Measure, Plan, sweep, tune
from exporters.cpu_batching import CpuBatching
from trademaster.launchers.tools import MissingToolError, ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.settings import PipelineSettings

ROWS = 8
RISK = "risk-assessment-model"


@pytest.fixture(scope="module")
def perf_data(
    pipeline_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("perf-data")
    return {model: path for model, (path, _) in perf_inputs(pipeline_settings, folder).items()}


def triton_inputs(config: dict[str, Any], entries: list[dict[str, Any]]) -> list[Any]:
    """The entries as one batched request, for the inputs they carry."""
    inputs = []
    for spec in config["input"]:
        name = spec["name"]
        if name not in entries[0]:
            continue
        if spec["data_type"] == "TYPE_STRING":
            array = np.array([[e[name][0].encode()] for e in entries], dtype=np.object_)
            tensor = httpclient.InferInput(name, list(array.shape), "BYTES")
        else:
            dtype = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64}[spec["data_type"]]
            array = np.stack([entry_array(e, name, dtype, spec["dims"]) for e in entries])
            tensor = httpclient.InferInput(name, list(array.shape), spec["data_type"][5:])
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("model", MODELS)
def test_the_floor_answers_as_triton_does_on_the_same_inputs(
    model: str,
    triton: TritonServer,
    pipeline_settings: PipelineSettings,
    perf_data: dict[str, Path],
) -> None:
    entries = json.loads(perf_data[model].read_text())["data"][:ROWS]
    config = triton.model_config(model)
    floor = floor_runner(pipeline_settings.model_repository, model, triton.model_config)
    expected = floor(entries)[0]
    with httpclient.InferenceServerClient(triton.http_url, network_timeout=60) as client:
        result = client.infer(model, triton_inputs(config, entries))
    served = result.as_numpy(config["output"][0]["name"])
    assert served.shape == expected.shape
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-5)


@pytest.fixture
def risk_only_triton(pipeline_settings: PipelineSettings, tmp_path: Path) -> Iterator[TritonServer]:
    tools = ServingTools.from_project_root()
    try:
        tools.require()
    except MissingToolError as exc:
        pytest.skip(f"tritonserver or perf_analyzer not installed: {exc}")
    with TritonServer(pipeline_settings.model_repository, tmp_path, models=[RISK]) as server:
        yield server


def test_tuning_measures_every_candidate_and_leaves_its_choice_loaded(
    risk_only_triton: TritonServer, perf_data: dict[str, Path]
) -> None:
    # What is checked is that each step runs on real servers, not the figures: on a 2-core
    # machine shared with the suite, any stability target would fail some windows.
    plan = Plan(
        models=(RISK,),
        concurrency=(1,),
        batch_sizes=(1, 8),
        delays_us=(0, 1000),
        instance_counts=(1,),
        rounds=1,
        budget_concurrency=1,
        tune_concurrency=2,
        measurement_interval_ms=300,
        stability_percentage=100,
    )
    measure = Measure(risk_only_triton, perf_data, plan)
    before = current_settings(risk_only_triton.model_config(RISK))
    result = tune(risk_only_triton, measure, RISK, plan)

    assert result.errors == []
    assert {t.candidate for t in result.trials} == {
        before,
        *(CpuBatching(1, d) for d in plan.delays_us),
    }
    assert all(t.mean_throughput > 0 and t.worst_p99_ms > 0 for t in result.trials)
    assert result.decision is not None
    assert current_settings(risk_only_triton.model_config(RISK)) == result.decision.chosen
    assert len(result.batching_per_s) == len(result.no_batching_per_s) == 1

    points = sweep(measure, RISK, 1024, plan)
    assert [(p.batch_size, p.status) for p in points] == [(1, "measured"), (8, "measured")]
    assert points[1].inferences_per_s is not None
    assert points[1].inferences_per_s > 0
