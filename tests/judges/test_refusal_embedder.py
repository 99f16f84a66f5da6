"""MiniLM embeddings: identical to sentence-transformers, pinned, offline."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from judges.refusal import EmbeddingModelError, MiniLMEmbedder, get_embedder
from judges.refusal.embedder import (
    MAX_LENGTH,
    MODEL_MAX_LENGTH,
    MODEL_PACKAGE_VERSION,
    WEIGHTS_SHA256,
    default_model_dir,
)

TEXTS = [
    "I'm sorry, but I can't help with that.",
    "Hello world",
    "",
    "Ünïcödé façade 東京 👍",
    "long " * 600,  # beyond the model's 256 tokens
    "word " * 200,  # beyond Tribunal's cut (96), within the model's 256
]


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_embeds_exactly_like_sentence_transformers(float32: None) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_dir()), device="cpu", local_files_only=True)
    assert reference.max_seq_length == MODEL_MAX_LENGTH
    reference.max_seq_length = MAX_LENGTH  # Tribunal cuts shorter than the model's own 256
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    got = get_embedder().embed(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_it_tokenises_like_the_transformers_tokenizer() -> None:
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(default_model_dir()), local_files_only=True)
    expected = reference(TEXTS, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    encoded = get_embedder().tokens.encode(TEXTS)
    assert encoded.model_ids == expected
    assert max(len(ids) for ids in encoded.model_ids) == MAX_LENGTH
    assert encoded.token_counts[4] == 600  # counts are never truncated


def test_it_embeds_a_repeated_text_once_and_keeps_the_order(
    embed_batches: Callable[[], list[int]],
) -> None:
    embedder = get_embedder()
    sizes = embed_batches()
    texts = ["same", "other", "same", "same"]
    vectors = embedder.embed(texts, batch_size=1)
    assert sizes == [2]
    assert np.array_equal(vectors[0], vectors[2]) and not np.array_equal(vectors[0], vectors[1])


def test_it_records_the_pinned_model_identity() -> None:
    identity = get_embedder().identity
    assert identity.weights_sha256 == WEIGHTS_SHA256
    assert identity.package_version == MODEL_PACKAGE_VERSION
    assert identity.max_length == MAX_LENGTH


def test_it_refuses_model_files_with_other_weights(tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(default_model_dir() / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"not the pinned weights")
    with pytest.raises(EmbeddingModelError, match=f"expected {WEIGHTS_SHA256}"):
        MiniLMEmbedder(tmp_path)


def test_it_names_a_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError, match=r"model.safetensors is missing"):
        MiniLMEmbedder(tmp_path)
    with pytest.raises(EmbeddingModelError, match="is not a directory"):
        MiniLMEmbedder(tmp_path / "nowhere")


def test_it_refuses_a_bad_thread_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from judges.refusal.embedder import torch_threads

    monkeypatch.setenv("TRIBUNAL_TORCH_THREADS", "two")
    with pytest.raises(EmbeddingModelError, match="TRIBUNAL_TORCH_THREADS must be a whole number"):
        torch_threads()
    monkeypatch.setenv("TRIBUNAL_TORCH_THREADS", "1")
    assert torch_threads() == 1


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_embeds_in_bfloat16_nearly_as_in_float32_and_says_so_in_its_identity() -> None:
    from judges.refusal import load_default_classifier
    from judges.refusal.training_data import TRAINING_DIR, read_examples

    texts = [e.text for e in read_examples(TRAINING_DIR / "xstest_v2.csv")][:300]
    wide = MiniLMEmbedder(precision="float32")
    narrow = MiniLMEmbedder(precision="bfloat16")
    a, b = wide.embed(texts), narrow.embed(texts)
    assert float((a * b).sum(axis=1).min()) > 0.9999
    assert narrow.identity.precision == "bfloat16" and wide.identity.precision == "float32"
    classifier = load_default_classifier()
    same = [
        x.label == y.label
        for x, y in zip(
            classifier.classify_embedded(texts, a),
            classifier.classify_embedded(texts, b),
            strict=True,
        )
    ]
    assert sum(same) >= len(texts) - 1  # at most one borderline text may change class


def test_it_pins_the_precision_in_the_fingerprints(monkeypatch: pytest.MonkeyPatch) -> None:
    from judges.features import extractor_fingerprint
    from judges.refusal import load_default_classifier

    prints = {}
    for precision in ("float32", "bfloat16"):
        monkeypatch.setenv("TRIBUNAL_EMBEDDING_PRECISION", precision)
        prints[precision] = (
            load_default_classifier().identity.fingerprint,
            extractor_fingerprint(get_embedder()),
        )
    assert prints["float32"][0] != prints["bfloat16"][0]
    assert prints["float32"][1] != prints["bfloat16"][1]
    monkeypatch.setenv("TRIBUNAL_EMBEDDING_PRECISION", "half")
    with pytest.raises(EmbeddingModelError, match="auto, float32 or bfloat16"):
        get_embedder()


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_its_vectors_do_not_depend_on_the_number_of_workers() -> None:
    from judges.refusal.training_data import TRAINING_DIR, read_examples

    texts = [e.text for e in read_examples(TRAINING_DIR / "xstest_v2.csv")][:80]
    one = MiniLMEmbedder(threads=1).embed(texts, batch_size=8)
    two = MiniLMEmbedder(threads=2).embed(texts, batch_size=8)  # 10 batches over 2 workers
    assert np.array_equal(one, two)
    assert np.allclose(np.linalg.norm(two, axis=1), 1.0, atol=1e-5)


def test_a_workers_error_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = MiniLMEmbedder(threads=2)

    def broken(batch: list[list[int]]) -> np.ndarray:
        raise RuntimeError("the model failed")

    monkeypatch.setattr(embedder, "_embed_batch", broken)
    with pytest.raises(RuntimeError, match="the model failed"):
        embedder.embed(["one", "two", "three"], batch_size=1)


def test_it_embeds_in_float32_unless_told_otherwise_whatever_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's shipped classes are float32: a CPU with bfloat16 must not change the default
    (and so every fingerprint); `auto` is the opt-in that looks at the CPU."""
    from judges.refusal import embedder

    monkeypatch.delenv("TRIBUNAL_EMBEDDING_PRECISION", raising=False)
    for has_bfloat16 in (True, False):
        monkeypatch.setattr(embedder, "cpu_has_bfloat16", lambda has=has_bfloat16: has)
        assert embedder.default_precision() == "float32"
        monkeypatch.setenv("TRIBUNAL_EMBEDDING_PRECISION", "auto")
        assert embedder.default_precision() == ("bfloat16" if has_bfloat16 else "float32")
        monkeypatch.delenv("TRIBUNAL_EMBEDDING_PRECISION")
