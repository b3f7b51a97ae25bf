"""Triton python-backend tokenizer for sentiment-analyzer (copied as `<version>/model.py`).

Raw UTF-8 text (TYPE_STRING, one string per row) -> `input_ids` and `attention_mask` (INT64),
with the `tokenizer.json` that sits beside this file: truncation at the config's
`max_tokens`, padding to the longest text of the dynamic batch, so every request of one batch
gets the same width and the encoder's dynamic batcher can merge them. Runs with the serving
virtualenv (numpy < 2, `tokenizers`); the main package never imports it.

A request whose text is not valid UTF-8 gets its own error; the others are still answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

TEXT, INPUT_IDS, ATTENTION_MASK = "text", "input_ids", "attention_mask"


def _log(level: str, message: str) -> None:
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        getattr(logger, f"log_{level}")(message)
    else:
        print(message, flush=True)


def load_tokenizer(path: Path, max_tokens: int) -> Tokenizer:
    """The same settings as `trademaster.sentiment.encoder.load_tokenizer`."""
    tokenizer = Tokenizer.from_file(str(path))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(
        pad_id=int(padding.get("pad_id", 0)), pad_token=str(padding.get("pad_token", "[PAD]"))
    )
    return tokenizer


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class TritonPythonModel:
    """One `encode_batch` call per dynamic batch."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {
            key: value["string_value"] for key, value in config.get("parameters", {}).items()
        }
        path = (
            Path(args["model_repository"])
            / args["model_version"]
            / parameters.get("tokenizer_filename", "tokenizer.json")
        )
        self.model_name = config["name"]
        self.max_tokens = int(parameters.get("max_tokens", "128"))
        self.tokenizer = load_tokenizer(path, self.max_tokens)
        _log("info", f"{self.model_name}: tokenizer {path}, max {self.max_tokens} tokens")

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        texts: list[str] = []
        spans: list[tuple[int, int, int]] = []
        for index, request in enumerate(requests):
            try:
                batch = self._read_texts(request)
            except Exception as exc:
                responses[index] = self._error(exc)
                continue
            spans.append((index, len(texts), len(texts) + len(batch)))
            texts.extend(batch)
        if not texts:
            return responses
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        for index, start, stop in spans:
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor(INPUT_IDS, np.ascontiguousarray(ids[start:stop])),
                    pb_utils.Tensor(ATTENTION_MASK, np.ascontiguousarray(mask[start:stop])),
                ]
            )
        return responses

    def _read_texts(self, request: Any) -> list[str]:
        tensor = pb_utils.get_input_tensor_by_name(request, TEXT)
        if tensor is None:
            raise ValueError(f"missing input {TEXT!r}")
        values = tensor.as_numpy()
        if values.ndim != 2 or values.shape[1] != 1:
            raise ValueError(f"{TEXT!r} must have shape [batch, 1], got {list(values.shape)}")
        return [_decode(value) for value in values[:, 0]]

    def _error(self, exc: Exception) -> Any:
        return pb_utils.InferenceResponse(
            output_tensors=[], error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
        )
