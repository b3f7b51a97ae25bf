"""Embeddings outlive the process: a second process (a later task, a rerun) encodes only the
texts the first did not, and a damaged cache file costs a re-encode, never a wrong vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trademaster.sentiment.embedding_cache import PersistedEmbedder, cache_path, read_cache
from trademaster.sentiment.encoder import EMBEDDING_DIM, SentenceEmbedder, load_tokenizer
from trademaster.settings import PipelineSettings


class HashingRunner:
    """Stands in for the encoder: a vector that depends on the token ids, calls counted."""

    def __init__(self) -> None:
        self.texts = 0

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.texts += len(ids)
        seeds = (ids * mask).sum(axis=1)
        return np.stack(
            [np.random.default_rng(int(seed)).random(EMBEDDING_DIM) for seed in seeds]
        ).astype(np.float32)


@pytest.fixture
def settings(tmp_path: Path) -> PipelineSettings:
    return PipelineSettings(environment="test", data_dir=tmp_path / "var")


def _process(runner: HashingRunner, settings: PipelineSettings) -> PersistedEmbedder:
    """What a new task process gets: a fresh in-process embedder over the same cache file."""
    return PersistedEmbedder(settings, lambda: SentenceEmbedder(runner, load_tokenizer()))


def test_a_later_process_encodes_only_new_texts(settings: PipelineSettings) -> None:
    runner = HashingRunner()
    first = _process(runner, settings).embed(["rally", "slump", "rally"])
    assert runner.texts == 2

    later = _process(runner, settings)
    again = later.embed(["slump", "rally", "a new day's headline"])

    assert runner.texts == 3
    assert later.encoded_texts == 1
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])
    fresh = SentenceEmbedder(HashingRunner(), load_tokenizer()).embed(["a new day's headline"])
    np.testing.assert_array_equal(again[2], fresh[0])
    assert set(read_cache(cache_path(settings))) == {"rally", "slump", "a new day's headline"}


def test_a_process_that_finds_everything_builds_no_encoder(settings: PipelineSettings) -> None:
    _process(HashingRunner(), settings).embed(["rally"])

    def no_encoder() -> SentenceEmbedder:
        raise AssertionError("the encoder was built although every text was cached")

    vectors = PersistedEmbedder(settings, no_encoder).embed(["rally", "rally"])
    assert vectors.shape == (2, EMBEDDING_DIM)
    assert PersistedEmbedder(settings, no_encoder).embed([]).shape == (0, EMBEDDING_DIM)


def test_a_damaged_cache_is_ignored_and_rebuilt(settings: PipelineSettings) -> None:
    path = cache_path(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    runner = HashingRunner()

    vectors = _process(runner, settings).embed(["rally"])

    assert runner.texts == 1
    np.testing.assert_array_equal(read_cache(path)["rally"], vectors[0])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
