"""Text features of responses: length, markdown style, prompt similarity, and refusal class.

Pure functions over lists of texts (no Django). What each feature counts:

- `length_chars`: Unicode code points (Python `len`), not bytes or grapheme clusters.
- `length_tokens`: all-MiniLM-L6-v2 WordPiece tokens (lower-cased BERT vocabulary), without
  [CLS]/[SEP] and never truncated: the same tokenizer the embeddings use, so one pass serves
  both. Roughly 1.3 tokens per English word.
- markdown counts (`headers`, `list_items`, `bold`): `judges.core.markdown`, whose rules the
  analysis counts texts with too (METHODS.md section 5).
- `prompt_similarity`: cosine of the all-MiniLM-L6-v2 embeddings of prompt and response (both
  cut to their first 94 tokens, `embedder.MAX_LENGTH`), as in METHODS.md section 4; None when
  there is no prompt.
- `style_difference(f_a, f_b) = (f_a - f_b) / (f_a + f_b + 1)` (METHODS.md section 5).

`analyse_responses` classifies and featurises a batch in one pass: each response is tokenised
once and embedded once, and that embedding feeds both the refusal head and the similarity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

import numpy as np

from judges.core import markdown
from judges.core.markdown import MarkdownCounts
from judges.refusal.embedder import (
    DEFAULT_BATCH_SIZE,
    MODEL_NAME,
    MiniLMEmbedder,
    TokenCounter,
    check_texts,
    get_embedder,
    get_token_counter,
)

if TYPE_CHECKING:
    from judges.refusal.classifier import Classification, RefusalClassifier

MARKDOWN_RULES_VERSION = markdown.MARKDOWN_RULES_VERSION


@dataclass(frozen=True)
class ResponseFeatures:
    length_chars: int
    length_tokens: int
    headers: int
    list_items: int
    bold: int
    prompt_similarity: float | None


@dataclass(frozen=True)
class AnalysedResponse:
    classification: Classification
    features: ResponseFeatures


def char_lengths(texts: Sequence[str]) -> list[int]:
    return [len(text) for text in check_texts(texts)]


def token_counts(texts: Sequence[str], *, counter: TokenCounter | None = None) -> list[int]:
    """MiniLM WordPiece tokens per text (no special tokens, not truncated)."""
    counter = counter or get_token_counter()
    return [int(n) for n in counter.count(texts)]


def markdown_counts(texts: Sequence[str]) -> list[MarkdownCounts]:
    return [markdown.markdown_count(text) for text in check_texts(texts)]


@overload
def style_difference(f_a: float, f_b: float) -> float: ...
@overload
def style_difference(f_a: np.ndarray, f_b: np.ndarray) -> np.ndarray: ...
def style_difference(f_a: float | np.ndarray, f_b: float | np.ndarray) -> float | np.ndarray:
    """(f_a - f_b) / (f_a + f_b + 1) for non-negative counts; in (-1, 1), 0 when equal."""
    a = np.asarray(f_a, dtype=np.float64)
    b = np.asarray(f_b, dtype=np.float64)
    if (a < 0).any() or (b < 0).any():
        raise ValueError("style counts must be non-negative")
    result = (a - b) / (a + b + 1.0)
    return float(result) if result.ndim == 0 else result


def _check_pairs(prompts: Sequence[str | None], responses: Sequence[str]) -> list[str]:
    checked = check_texts(responses, "responses")
    if len(prompts) != len(checked):
        raise ValueError(f"{len(prompts)} prompts for {len(checked)} responses")
    for index, prompt in enumerate(prompts):
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompts[{index}] is {type(prompt).__name__}, expected str or None")
    return checked


def _cosines(
    prompts: Sequence[str | None],
    response_vectors: np.ndarray,
    embedder: MiniLMEmbedder,
    batch_size: int,
) -> list[float | None]:
    present = [i for i, p in enumerate(prompts) if p is not None and p.strip()]
    similarities: list[float | None] = [None] * len(prompts)
    if present:
        prompt_vectors = embedder.embed([prompts[i] or "" for i in present], batch_size=batch_size)
        dots = np.einsum("ij,ij->i", prompt_vectors, response_vectors[present])
        for i, dot in zip(present, dots, strict=True):
            similarities[i] = float(np.clip(dot, -1.0, 1.0))
    return similarities


def prompt_response_similarity(
    prompts: Sequence[str | None],
    responses: Sequence[str],
    *,
    embedder: MiniLMEmbedder | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[float | None]:
    """Cosine similarity of each prompt with its response (None where the prompt is missing)."""
    checked = _check_pairs(prompts, responses)
    embedder = embedder or get_embedder()
    vectors = embedder.embed(checked, batch_size=batch_size)
    return _cosines(prompts, vectors, embedder, batch_size)


def _features(
    texts: list[str], token_totals: np.ndarray, similarities: Sequence[float | None]
) -> list[ResponseFeatures]:
    result = []
    for text, tokens, similarity in zip(texts, token_totals, similarities, strict=True):
        style = markdown.markdown_count(text)
        result.append(
            ResponseFeatures(
                length_chars=len(text),
                length_tokens=int(tokens),
                headers=style.headers,
                list_items=style.list_items,
                bold=style.bold,
                prompt_similarity=similarity,
            )
        )
    return result


def response_features(
    prompts: Sequence[str | None],
    responses: Sequence[str],
    *,
    embedder: MiniLMEmbedder | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[ResponseFeatures]:
    """Every feature of each response (one tokenisation and one embedding per response)."""
    checked = _check_pairs(prompts, responses)
    embedder = embedder or get_embedder()
    vectors, totals = _embed_responses(checked, embedder, batch_size)
    return _features(checked, totals, _cosines(prompts, vectors, embedder, batch_size))


def _embed_responses(
    responses: list[str], embedder: MiniLMEmbedder, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and full token counts from one tokenisation of the distinct responses."""
    unique = list(dict.fromkeys(responses))
    encoded = embedder.tokens.encode(unique)
    vectors = embedder.embed_ids(encoded.model_ids, batch_size=batch_size)
    if len(unique) == len(responses):
        return vectors, encoded.token_counts
    row_of = {text: row for row, text in enumerate(unique)}
    rows = [row_of[text] for text in responses]
    return vectors[rows], encoded.token_counts[rows]


def analyse_responses(
    prompts: Sequence[str | None],
    responses: Sequence[str],
    *,
    classifier: RefusalClassifier | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[AnalysedResponse]:
    """Refusal class and features for each (prompt, response), embedding each text once.

    With the default classifier the response embeddings feed both its head and the
    similarity; any other classifier (e.g. a user's transformers model) runs on its own.
    """
    from judges.refusal.classifier import DefaultRefusalClassifier, load_default_classifier

    checked = _check_pairs(prompts, responses)
    classifier = classifier if classifier is not None else load_default_classifier()
    embedder = (
        classifier.embedder if isinstance(classifier, DefaultRefusalClassifier) else get_embedder()
    )
    vectors, totals = _embed_responses(checked, embedder, batch_size)
    if isinstance(classifier, DefaultRefusalClassifier):
        classes = classifier.classify_embedded(checked, vectors)
    else:
        classes = classifier.classify(checked)
    features = _features(checked, totals, _cosines(prompts, vectors, embedder, batch_size))
    return [
        AnalysedResponse(classification=c, features=f)
        for c, f in zip(classes, features, strict=True)
    ]


def extractor_fingerprint(embedder: MiniLMEmbedder | None = None) -> str:
    """sha256 identifying how the features were computed (model files and counting rules)."""
    identity = (embedder or get_embedder()).identity
    payload = {
        "schema": 1,
        "embedding_model": MODEL_NAME,
        "embedding_weights_sha256": identity.weights_sha256,
        "tokenizer_sha256": identity.tokenizer_sha256,
        "max_length": identity.max_length,
        "pooling": identity.pooling,
        **({"precision": identity.precision} if identity.precision != "float32" else {}),
        "markdown_rules": MARKDOWN_RULES_VERSION,
        "length_chars": "unicode code points",
        "length_tokens": "MiniLM WordPiece, no special tokens, untruncated",
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
