"""sentiment-analyzer: a Triton ensemble that takes raw text.

    sentiment-analyzer (platform "ensemble"): text (BYTES [1]) -> probabilities (FP32 [3]),
                                              score (FP32 [1])
      1. sentiment-tokenizer  python backend, `tokenizers` + the shipped tokenizer.json
      2. sentiment-encoder    all-MiniLM-L6-v2 + mean pooling + L2 norm, ONNX
      3. sentiment-head       the registered head, ONNX; score = P(positive) - P(negative)

Every composing model uses the head's MLflow version number, and the ensemble pins those
versions, so one ensemble version always runs the tokenizer, encoder and head it was
exported with. Loading `sentiment-analyzer` in explicit mode loads the three.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporters.model_spec import ModelSpec, TensorSpec
from exporters.onnx_export import export_onnx, parity_check
from exporters.triton_config import (
    join_sections,
    parameter_lines,
    publish_version_folder,
    quote,
    render_cpu_config,
    render_gpu_config,
    render_python_config,
    tensor_lines,
    write_configs,
    write_model_version,
)
from trademaster import registry
from trademaster.contract.models import ModelName
from trademaster.contract.parameters import Parameter, TaskKind
from trademaster.sentiment import encoder as sentence_encoder
from trademaster.sentiment.encoder import (
    ATTENTION_MASK,
    EMBEDDING,
    EMBEDDING_DIM,
    INPUT_IDS,
    SentenceEncoder,
)
from trademaster.sentiment.model import CLASS_LABELS, ScoredHead
from trademaster.sentiment.pipeline import parity_headlines
from trademaster.settings import PipelineSettings
from trademaster.training.parity import ExportParityError, max_abs_diff, require_parity

log = logging.getLogger(__name__)

ENSEMBLE = ModelName.SENTIMENT.value
TOKENIZER = "sentiment-tokenizer"
ENCODER = "sentiment-encoder"
HEAD = "sentiment-head"
TEXT, PROBABILITIES, SCORE = "text", "probabilities", "score"
TOKENIZER_BACKEND = Path(__file__).resolve().parent / "backends" / "tokenizer_model.py"
# Parity batches of this many headlines: each is padded to its own longest, as in serving.
PARITY_BATCH = 32
# A composing model is not called by clients; the gateway skips these.
_STEP_PARAMETERS = {Parameter.TASK: TaskKind.ENSEMBLE_STEP.value, Parameter.ENSEMBLE: ENSEMBLE}
# One version of each, always: an ensemble config pins its steps' versions, so an older
# ensemble version kept loaded (canary, shadow) would silently run the newest steps.
VERSIONS_SERVED = 1


def tokenizer_spec() -> ModelSpec:
    return ModelSpec(
        name=TOKENIZER,
        versions_served=VERSIONS_SERVED,
        inputs=(TensorSpec(TEXT, "BYTES", (1,)),),
        outputs=(
            TensorSpec(INPUT_IDS, "INT64", (-1,)),
            TensorSpec(ATTENTION_MASK, "INT64", (-1,)),
        ),
        max_batch_size=256,
        preferred_batch_sizes=(8, 32, 64),
        max_queue_delay_us=500,
        parameters={
            **_STEP_PARAMETERS,
            Parameter.TOKENIZER_FILENAME: sentence_encoder.TOKENIZER_FILE,
            Parameter.MAX_TOKENS: str(sentence_encoder.MAX_TOKENS),
        },
    )


def encoder_spec() -> ModelSpec:
    identity = sentence_encoder.encoder_identity()
    return ModelSpec(
        name=ENCODER,
        versions_served=VERSIONS_SERVED,
        inputs=(
            TensorSpec(INPUT_IDS, "INT64", (-1,)),
            TensorSpec(ATTENTION_MASK, "INT64", (-1,)),
        ),
        outputs=(TensorSpec(EMBEDDING, "FP32", (EMBEDDING_DIM,)),),
        max_batch_size=256,
        preferred_batch_sizes=(8, 32, 64),
        max_queue_delay_us=500,
        parameters={
            **_STEP_PARAMETERS,
            # The one heavy step: two ONNX Runtime threads on the CPU target.
            Parameter.INTRA_OP_THREADS: "2",
            Parameter.ENCODER: identity["encoder"],
            Parameter.ENCODER_PACKAGE: identity["encoder_package"],
        },
    )


def head_spec() -> ModelSpec:
    return ModelSpec(
        name=HEAD,
        versions_served=VERSIONS_SERVED,
        inputs=(TensorSpec(EMBEDDING, "FP32", (EMBEDDING_DIM,)),),
        outputs=(
            TensorSpec(PROBABILITIES, "FP32", (len(CLASS_LABELS),)),
            TensorSpec(SCORE, "FP32", (1,)),
        ),
        max_batch_size=1024,
        preferred_batch_sizes=(8, 32, 128),
        max_queue_delay_us=200,
        parameters={**_STEP_PARAMETERS, Parameter.CLASS_LABELS: ",".join(CLASS_LABELS)},
    )


def ensemble_spec() -> ModelSpec:
    identity = sentence_encoder.encoder_identity()
    return ModelSpec(
        name=ENSEMBLE,
        versions_served=VERSIONS_SERVED,
        inputs=(TensorSpec(TEXT, "BYTES", (1,)),),
        outputs=(
            TensorSpec(PROBABILITIES, "FP32", (len(CLASS_LABELS),)),
            TensorSpec(SCORE, "FP32", (1,)),
        ),
        # At most the smallest max_batch_size of its steps.
        max_batch_size=128,
        preferred_batch_sizes=(),
        parameters={
            Parameter.TASK: TaskKind.TEXT_SENTIMENT.value,
            Parameter.CLASS_LABELS: ",".join(CLASS_LABELS),
            Parameter.SCORE: "P(positive) - P(negative)",
            Parameter.ENCODER: identity["encoder"],
            Parameter.MAX_TOKENS: str(sentence_encoder.MAX_TOKENS),
        },
    )


def render_tokenizer_config(spec: ModelSpec) -> str:
    """Both targets: tokenizing is CPU work, on a GPU node too (whose python backend then
    needs `tokenizers` installed). Its own ``model.py``, so none of the runner's knobs."""
    return render_python_config(spec, spec.parameters)


def _step(model: str, version: int, inputs: Mapping[str, str], outputs: Sequence[str]) -> str:
    lines = ["    {", f"      model_name: {quote(model)}", f"      model_version: {version}"]
    lines += [f"      input_map {{ key: {quote(k)} value: {quote(v)} }}" for k, v in inputs.items()]
    lines += [f"      output_map {{ key: {quote(n)} value: {quote(n)} }}" for n in outputs]
    return "\n".join([*lines, "    }"])


def render_ensemble_config(spec: ModelSpec, version: int) -> str:
    """The ensemble (the same text for both targets): text -> tokenizer -> encoder -> head."""
    steps = [
        _step(TOKENIZER, version, {TEXT: TEXT}, (INPUT_IDS, ATTENTION_MASK)),
        _step(
            ENCODER, version, {INPUT_IDS: INPUT_IDS, ATTENTION_MASK: ATTENTION_MASK}, (EMBEDDING,)
        ),
        _step(HEAD, version, {EMBEDDING: EMBEDDING}, (PROBABILITIES, SCORE)),
    ]
    scheduling = ["ensemble_scheduling {", "  step [", ",\n".join(steps), "  ]", "}"]
    return join_sections(
        [
            f"name: {quote(spec.name)}",
            'platform: "ensemble"',
            f"max_batch_size: {spec.max_batch_size}",
            f"version_policy: {{ latest: {{ num_versions: {spec.versions_served} }} }}",
        ],
        tensor_lines("input", spec.inputs),
        tensor_lines("output", spec.outputs),
        scheduling,
        parameter_lines(dict(spec.parameters)),
    )


def _encoder_parity(encoder: SentenceEncoder, onnx_path: Path, texts: Sequence[str]) -> float:
    tokenizer = sentence_encoder.load_tokenizer()
    reference = sentence_encoder.torch_runner(encoder)
    exported = sentence_encoder.onnx_runner(onnx_path)
    worst = 0.0
    for start in range(0, len(texts), PARITY_BATCH):
        ids, mask = sentence_encoder.tokenize(tokenizer, texts[start : start + PARITY_BATCH])
        worst = max(worst, max_abs_diff(reference(ids, mask), exported(ids, mask)))
    return worst


def _pipeline_parity(
    encoder: SentenceEncoder,
    head: torch.nn.Module,
    encoder_onnx: Path,
    head_onnx: Path,
    texts: Sequence[str],
) -> float:
    """Tokenizer -> ONNX encoder -> ONNX head against tokenizer -> torch encoder -> torch
    head, on probabilities and score together."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(head_onnx), providers=["CPUExecutionProvider"])
    tokenizer = sentence_encoder.load_tokenizer()
    reference = sentence_encoder.torch_runner(encoder)
    exported = sentence_encoder.onnx_runner(encoder_onnx)
    scored = ScoredHead(head).eval()
    worst = 0.0
    for start in range(0, len(texts), PARITY_BATCH):
        ids, mask = sentence_encoder.tokenize(tokenizer, texts[start : start + PARITY_BATCH])
        with torch.inference_mode():
            want = [t.numpy() for t in scored(torch.from_numpy(reference(ids, mask)))]
        got = session.run([PROBABILITIES, SCORE], {EMBEDDING: exported(ids, mask)})
        worst = max(
            worst, *(max_abs_diff(w, np.asarray(g)) for w, g in zip(want, got, strict=True))
        )
    return worst


def export_version(
    settings: PipelineSettings, version: registry.RegisteredVersion
) -> dict[str, Any]:
    """Exports encoder and head to ONNX, checks parity on the real held-out headlines stored
    with the run, and writes the four models (configs for both targets, version folders)."""
    tags = registry.version_tags(settings, version)
    identity = sentence_encoder.encoder_identity()
    if tags.get("encoder_sha256") != identity["encoder_sha256"]:
        raise ExportParityError(
            f"{version.name} v{version.version} was trained on encoder "
            f"{tags.get('encoder_package')} ({tags.get('encoder_sha256')}), but "
            f"{identity['encoder_package']} ({identity['encoder_sha256']}) is installed"
        )
    texts = parity_headlines(settings, version)
    head = registry.load_torch_model(settings, version)
    encoder = sentence_encoder.load_encoder()
    repo = settings.model_repository
    with tempfile.TemporaryDirectory() as tmp:
        encoder_onnx = sentence_encoder.export_encoder_onnx(encoder, Path(tmp) / "encoder.onnx")
        embeddings = sentence_encoder.torch_runner(encoder)(
            *sentence_encoder.tokenize(sentence_encoder.load_tokenizer(), texts)
        )
        head_onnx = export_onnx(
            ScoredHead(head),
            torch.from_numpy(embeddings[:4]),
            Path(tmp) / "head.onnx",
            EMBEDDING,
            [PROBABILITIES, SCORE],
        )
        diffs = {
            "encoder_parity_max_abs_diff": _encoder_parity(encoder, encoder_onnx, texts),
            "head_parity_max_abs_diff": parity_check(ScoredHead(head), head_onnx, embeddings),
            "pipeline_parity_max_abs_diff": _pipeline_parity(
                encoder, head, encoder_onnx, head_onnx, texts
            ),
        }
        require_parity(diffs, f"{version.name} v{version.version}", settings.parity_tolerance)
        log.info("parity on %d real headlines: %s", len(texts), diffs)

        tokenizer, encoder_model, head_model = tokenizer_spec(), encoder_spec(), head_spec()
        tokenizer_config = render_tokenizer_config(tokenizer)
        write_configs(repo, TOKENIZER, tokenizer_config, tokenizer_config)
        tokenizer_file = sentence_encoder.TOKENIZER_FILE
        publish_version_folder(
            repo,
            TOKENIZER,
            version.version,
            {
                "model.py": TOKENIZER_BACKEND,
                tokenizer_file: sentence_encoder.model_dir() / tokenizer_file,
            },
            overwrite=True,
        )
        write_configs(
            repo,
            ENCODER,
            render_cpu_config(encoder_model),
            # No TensorRT: every new range of sequence lengths would rebuild its engine.
            render_gpu_config(encoder_model, precision_mode=None),
        )
        write_model_version(repo, encoder_model, version.version, encoder_onnx, overwrite=True)
        # FP32 like the encoder's GPU config, so both targets give the same numbers.
        write_configs(
            repo,
            HEAD,
            render_cpu_config(head_model),
            render_gpu_config(head_model, precision_mode="FP32"),
        )
        write_model_version(repo, head_model, version.version, head_onnx, overwrite=True)
    ensemble_config = render_ensemble_config(ensemble_spec(), version.version)
    # The ensemble last: its config names versions that now exist.
    write_configs(repo, ENSEMBLE, ensemble_config, ensemble_config)
    target = repo / ENSEMBLE / str(version.version)
    target.mkdir(parents=True, exist_ok=True)
    registry.log_version_metrics(settings, version, diffs)
    return {
        "model_name": version.name,
        "version": version.version,
        "path": str(target),
        "composing_models": [TOKENIZER, ENCODER, HEAD],
        "parity_headlines": len(texts),
        **diffs,
    }
