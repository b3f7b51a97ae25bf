"""sentiment-analyzer end to end: train on generated headlines in a temporary MLflow store,
promote, export the ensemble and serve raw text from a real `tritonserver`."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from exporters.registered import export_champion
from exporters.sentiment import ENCODER, ENSEMBLE, HEAD, TOKENIZER
from tests.fingerprints import forget_fingerprint
from tests.integration.stack import (
    TritonProtocol,
    isolated_settings,
    metric_total,
    triton_infer,
    triton_inputs,
)
from trademaster import registry
from trademaster.launchers.tools import ServingTools
from trademaster.launchers.triton import TritonServer
from trademaster.pipeline.catalog import definition as catalog_definition
from trademaster.sentiment.encoder import (
    load_encoder,
    load_tokenizer,
    tokenize,
    torch_runner,
)
from trademaster.sentiment.model import ScoredHead
from trademaster.sentiment.pipeline import score_headlines, train_and_register
from trademaster.settings import PipelineSettings
from trademaster.training.promotion import validate_candidate
from trademaster.warehouse.headlines import generate_headlines, is_held_out
from trademaster.warehouse.market import business_calendar, generate_symbols

pytestmark = pytest.mark.integration

DEFINITION = catalog_definition(ENSEMBLE)
STEPS = (TOKENIZER, ENCODER, HEAD)
ATOL = 1e-4


@dataclass
class Served:
    server: TritonServer
    settings: PipelineSettings
    export: dict[str, Any]
    texts: list[str]
    probabilities: np.ndarray
    scores: np.ndarray


def _headlines() -> pd.DataFrame:
    calendar = business_calendar(pd.Timestamp("2026-06-30").date(), 70)
    bars, table = generate_symbols(10, calendar, np.random.default_rng(21))
    sectors = dict(zip(table["symbol"], table["sector"], strict=True))
    return generate_headlines(bars, np.random.default_rng(22), sectors)


def _torch_reference(settings: PipelineSettings, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The champion in process with the torch encoder: what Triton must reproduce."""
    champion = registry.version_for_alias(settings, ENSEMBLE, registry.CHAMPION)
    assert champion is not None
    head = ScoredHead(registry.load_torch_model(settings, champion)).eval()
    embeddings = torch_runner(load_encoder())(*tokenize(load_tokenizer(), texts))
    with torch.inference_mode():
        probabilities, scores = head(torch.from_numpy(embeddings))
    return probabilities.numpy(), scores.numpy()


@pytest.fixture(scope="module")
def served(tools: ServingTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("sentiment")
    settings = isolated_settings(root)
    registry.configure_mlflow(settings)
    headlines = _headlines()
    decision = validate_candidate(
        settings,
        DEFINITION.name,
        DEFINITION.training.decide,
        train_and_register(settings, headlines),
    )
    assert decision["promoted"], decision["reason"]
    report = export_champion(settings, DEFINITION.name, DEFINITION.exporter.export_version)
    held_out = headlines[is_held_out(headlines["template_id"])]
    texts = held_out["headline"].drop_duplicates().sample(50, random_state=0).tolist()
    probabilities, scores = _torch_reference(settings, texts)
    with TritonServer(settings.model_repository, root / "work", tools=tools) as server:
        server.load_model(ENSEMBLE)
        yield Served(server, settings, report, texts, probabilities, scores)


def _text_array(texts: list[str] | list[bytes]) -> np.ndarray:
    return np.array([[t.encode() if isinstance(t, str) else t] for t in texts], dtype=object)


def _infer(protocol: TritonProtocol, url: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and scores of a batch of texts, one per row."""
    probabilities, scores = triton_infer(
        protocol, url, ENSEMBLE, {"text": _text_array(texts)}, ("probabilities", "score")
    )
    return probabilities, scores


async def _grpc_one_by_one(url: str, texts: list[bytes]) -> list[Any]:
    """Every text as its own request, all sent at once; a result is the score or the error."""
    async with grpcaio.InferenceServerClient(url) as client:

        async def one(text: bytes) -> np.ndarray:
            result = await client.infer(
                ENSEMBLE, triton_inputs(grpcaio, {"text": _text_array([text])})
            )
            return np.asarray(result.as_numpy("score"))

        return await asyncio.gather(*(one(t) for t in texts), return_exceptions=True)


def _metric(server: TritonServer, name: str, model: str) -> float:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:  # noqa: S310
        return metric_total(response.read().decode(), name, default=0.0, model=model)


def test_loading_the_ensemble_loads_its_steps(served: Served) -> None:
    version = str(served.export["version"])

    for model in (ENSEMBLE, *STEPS):
        assert served.server.is_model_ready(model, version), model


def test_the_ensemble_config_is_the_contract(served: Served) -> None:
    client = httpclient.InferenceServerClient(served.server.http_url)
    try:
        config = client.get_model_config(ENSEMBLE)
    finally:
        client.close()

    assert config["platform"] == "ensemble"
    assert config["max_batch_size"] > 0
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
        ("text", "TYPE_STRING", [1])
    ]
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["output"]] == [
        ("probabilities", "TYPE_FP32", [3]),
        ("score", "TYPE_FP32", [1]),
    ]
    parameters = {k: v["string_value"] for k, v in config["parameters"].items()}
    assert parameters["task"] == "text_sentiment"
    assert parameters["class_labels"] == "negative,neutral,positive"
    steps = config["ensemble_scheduling"]["step"]
    assert [step["model_name"] for step in steps] == list(STEPS)


def test_export_checked_parity_on_real_headlines(served: Served) -> None:
    for key in ("encoder", "head", "pipeline"):
        assert served.export[f"{key}_parity_max_abs_diff"] < ATOL
    assert served.export["parity_headlines"] > 50


def test_every_model_has_a_cpu_and_a_gpu_config(served: Served) -> None:
    repo = served.settings.model_repository

    for model in (ENSEMBLE, *STEPS):
        assert (repo / model / "config.pbtxt").is_file()
        assert (repo / model / "configs" / "gpu.pbtxt").is_file()
    ensemble = repo / ENSEMBLE
    assert (ensemble / "config.pbtxt").read_text() == (ensemble / "configs/gpu.pbtxt").read_text()
    encoder_gpu = (repo / ENCODER / "configs" / "gpu.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in encoder_gpu
    assert "KIND_GPU" in encoder_gpu
    assert "KIND_CPU" in (repo / TOKENIZER / "configs" / "gpu.pbtxt").read_text()


def test_raw_text_over_grpc_matches_in_process_torch(served: Served) -> None:
    probabilities, scores = _infer("grpc", served.server.grpc_url, served.texts)

    assert probabilities.shape == (50, 3)
    assert scores.shape == (50, 1)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(probabilities, served.probabilities, atol=ATOL)
    np.testing.assert_allclose(scores, served.scores, atol=ATOL)


def test_raw_text_over_http_matches_in_process_torch(served: Served) -> None:
    probabilities, scores = _infer("http", served.server.http_url, served.texts[:10])

    np.testing.assert_allclose(probabilities, served.probabilities[:10], atol=ATOL)
    np.testing.assert_allclose(scores, served.scores[:10], atol=ATOL)


def test_score_headlines_in_process_matches_the_served_score(served: Served) -> None:
    frame = pd.DataFrame({"headline": served.texts}, index=range(100, 150))

    scores = score_headlines(served.settings, frame)

    np.testing.assert_allclose(scores.to_numpy(), served.scores[:, 0], atol=ATOL)


def test_concurrent_single_headlines_are_batched_dynamically(served: Served) -> None:
    server = served.server
    before = {m: _metric(server, "nv_inference_exec_count", m) for m in STEPS}
    counted = {m: _metric(server, "nv_inference_count", m) for m in STEPS}
    texts = served.texts[:32]

    results = asyncio.run(_grpc_one_by_one(server.grpc_url, [t.encode() for t in texts]))

    for result, expected in zip(results, served.scores[:32], strict=True):
        assert isinstance(result, np.ndarray), result
        np.testing.assert_allclose(result[0], expected, atol=ATOL)
    for model in STEPS:
        inferences = _metric(server, "nv_inference_count", model) - counted[model]
        executions = _metric(server, "nv_inference_exec_count", model) - before[model]
        assert inferences == 32, model
        assert executions < inferences, model


def test_text_that_is_not_utf8_gets_its_own_error(served: Served) -> None:
    good = [t.encode() for t in served.texts[:3]]

    results = asyncio.run(
        _grpc_one_by_one(served.server.grpc_url, [good[0], b"\xff\xfe broken", *good[1:]])
    )

    assert isinstance(results[1], InferenceServerException)
    assert "utf-8" in str(results[1]).lower()
    for result, expected in zip((results[0], *results[2:]), served.scores[:3], strict=True):
        assert isinstance(result, np.ndarray), result
        np.testing.assert_allclose(result[0], expected, atol=ATOL)


def test_an_empty_headline_is_scored(served: Served) -> None:
    probabilities, scores = _infer("grpc", served.server.grpc_url, [""])

    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)
    assert -1.0 <= float(scores[0, 0]) <= 1.0


def test_a_new_champion_is_served_by_reloading_the_ensemble(served: Served) -> None:
    # Last in this module: it moves the served version. Same data and seed, so the new
    # version's head is the same and its answers must not change (trained again, not reused).
    settings, server = served.settings, served.server
    forget_fingerprint(settings, DEFINITION.name, int(served.export["version"]))
    candidate = train_and_register(settings, _headlines())
    assert validate_candidate(settings, DEFINITION.name, DEFINITION.training.decide, candidate)[
        "promoted"
    ]
    report = export_champion(settings, DEFINITION.name, DEFINITION.exporter.export_version)
    new, old = str(report["version"]), str(served.export["version"])

    server.load_model(ENSEMBLE)

    assert new != old
    for model in (ENSEMBLE, *STEPS):
        assert server.is_model_ready(model, new), model
        assert not server.is_model_ready(model, old), model
    _, scores = _infer("grpc", server.grpc_url, served.texts)
    np.testing.assert_allclose(scores, served.scores, atol=ATOL)
