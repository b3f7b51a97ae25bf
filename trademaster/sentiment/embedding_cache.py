"""Headline embeddings kept on disk between processes, per encoder.

Embedding the default warehouse's 14K distinct headlines takes about 30 s on two cores, and
under Airflow's scheduler every task is its own process: without a cache, training the
sentiment head, the feature build (the champion scores every headline) and each rerun
would embed them all again. A new trading day only adds its own headlines.

One parquet file per encoder (named by the hash of its weights and its token limit), with a
``text`` and an ``embedding`` (384 float32) column. Writes go to a temporary file renamed
over the old one, merging what another process wrote meanwhile, so a reader never sees half
a file; a file that does not read cleanly is ignored and rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trademaster.contract.atomic_file import replacing
from trademaster.sentiment.encoder import (
    EMBEDDING_DIM,
    SentenceEmbedder,
    default_embedder,
    encoder_identity,
)
from trademaster.settings import PipelineSettings

log = logging.getLogger(__name__)

TEXT = "text"
EMBEDDING = "embedding"


def cache_path(settings: PipelineSettings) -> Path:
    identity = encoder_identity()
    name = f"{identity['encoder_sha256'][:16]}-{identity['max_tokens']}.parquet"
    return settings.resolved_data_dir / "embeddings" / name


def read_cache(path: Path) -> dict[str, np.ndarray]:
    """Text -> embedding from ``path``; empty when the file is missing or unreadable."""
    if not path.exists():
        return {}
    try:
        table = pq.read_table(path)
        texts = table.column(TEXT).to_pylist()
        flat = table.column(EMBEDDING).combine_chunks().flatten().to_numpy()
        vectors = np.asarray(flat, dtype=np.float32).reshape(len(texts), EMBEDDING_DIM)
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        log.warning("ignoring the embedding cache %s (%s); it will be rebuilt", path, exc)
        return {}
    return dict(zip(texts, vectors, strict=True))


def write_cache(path: Path, entries: dict[str, np.ndarray]) -> None:
    """Atomically replaces ``path`` with ``entries`` plus what it holds that they lack."""
    merged = {**read_cache(path), **entries}
    texts = list(merged)
    vectors = np.stack([merged[text] for text in texts]).astype(np.float32).reshape(-1)
    table = pa.table(
        {
            TEXT: pa.array(texts, pa.string()),
            EMBEDDING: pa.FixedSizeListArray.from_arrays(pa.array(vectors), EMBEDDING_DIM),
        }
    )
    with replacing(path) as temporary:
        pq.write_table(table, temporary)


class PersistedEmbedder:
    """Embeds texts through the settings' cache file: only texts it lacks reach the encoder
    (which is built, about 4 s, only then), and those are written back at once."""

    def __init__(
        self,
        settings: PipelineSettings,
        make_embedder: Callable[[], SentenceEmbedder] = default_embedder,
    ) -> None:
        self.path = cache_path(settings)
        self._known = read_cache(self.path)
        self._make_embedder = make_embedder
        self.encoded_texts = 0
        if self._known:
            log.info("embedding cache: %d texts in %s", len(self._known), self.path)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), 384], as ``SentenceEmbedder.embed``."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._known]
        if missing:
            fresh = dict(zip(missing, self._make_embedder().embed(missing), strict=True))
            self._known.update(fresh)
            write_cache(self.path, fresh)
            self.encoded_texts += len(missing)
            log.info(
                "embedding cache: %d new texts encoded, %d kept in %s",
                len(missing),
                len(self._known),
                self.path,
            )
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._known[text] for text in texts])
