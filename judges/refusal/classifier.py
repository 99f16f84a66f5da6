"""Refusal classifiers: the offline default (MiniLM + cues + head) and a user's local model.

Every classifier has a pinned identity whose sha256 `fingerprint` is stored with each
classification, so classes from different classifiers are never mixed up:

- default: the embedding model's name, weights and tokenizer sha256, truncation and pooling,
  the version of the lexical cues the head reads, the sha256 of the head file, and the label
  set;
- a user's `transformers` model: the sha256 of its config, weight and tokenizer files, the
  label mapping and the label set.

The package version the MiniLM files came from is recorded in `identity.components` but not
hashed: the same weight file from another source gives the same classes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from judges.refusal.cues import (
    CUE_NAMES_BY_VERSION,
    CUES_VERSION,
    SUPPORTED_CUES_VERSIONS,
    cue_matrix,
)
from judges.refusal.embedder import (
    MiniLMEmbedder,
    available_cpus,
    check_texts,
    default_precision,
    file_sha256,
    get_embedder,
    go_offline,
)
from judges.refusal.head import DEFAULT_HEAD_PATH, Head, HeadOutputs, load_head, summed_outputs
from judges.refusal.labels import CLASSES

FINGERPRINT_SCHEMA: Final = 1


class ClassifierLoadError(RuntimeError):
    """A classifier cannot be loaded as configured (the message says what to fix)."""


@dataclass(frozen=True)
class Classification:
    """One response's class. `refusal_probability` is P(the response declined), ethical or
    technical: calibrated for the default two-stage head, the sum of the two refusal classes'
    probabilities for other classifiers. `uncertain` follows the head's rule (head.py)."""

    label: str  # one of CLASSES
    score: float  # probability of `label`
    classifier: str  # the classifier's fingerprint
    scores: dict[str, float] = field(default_factory=dict)  # probability of every class
    refusal_probability: float | None = None
    uncertain: bool = False


@dataclass(frozen=True)
class ClassifierIdentity:
    kind: str
    hashed: dict[str, Any]  # what the fingerprint covers
    components: dict[str, Any] = field(default_factory=dict)  # informational, not hashed

    @property
    def fingerprint(self) -> str:
        payload = {"schema": FINGERPRINT_SCHEMA, "kind": self.kind, **self.hashed}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RefusalClassifier(Protocol):
    identity: ClassifierIdentity

    def classify(self, texts: Sequence[str]) -> list[Classification]: ...


def _classifications(
    outputs: HeadOutputs, classes: Sequence[str], fingerprint: str
) -> list[Classification]:
    return [
        Classification(
            label=classes[int(k)],
            score=float(row[k]),
            classifier=fingerprint,
            scores={name: float(p) for name, p in zip(classes, row, strict=True)},
            refusal_probability=float(refused),
            uncertain=bool(unsure),
        )
        for row, k, refused, unsure in zip(
            outputs.probabilities,
            outputs.labels,
            outputs.refusal_probability,
            outputs.uncertain,
            strict=True,
        )
    ]


def head_inputs(
    texts: Sequence[str], embeddings: np.ndarray, cues_version: int = CUES_VERSION
) -> np.ndarray:
    """What the head reads: the MiniLM embedding followed by the lexical cues."""
    return np.hstack([np.asarray(embeddings, dtype=np.float64), cue_matrix(texts, cues_version)])


class DefaultRefusalClassifier:
    """MiniLM sentence embedding + lexical cues -> linear head -> one of the five classes."""

    def __init__(self, embedder: MiniLMEmbedder, head: Head, head_sha256: str) -> None:
        trained_on = head.embedding.get("weights_sha256")
        if trained_on != embedder.identity.weights_sha256:
            raise ClassifierLoadError(
                f"the refusal head was trained on embedding weights {trained_on}, but the "
                f"loaded model's weights are {embedder.identity.weights_sha256}"
            )
        cut = head.embedding.get("max_length")
        if cut is not None and cut != embedder.identity.max_length:
            raise ClassifierLoadError(
                f"the refusal head was trained on texts cut to {cut} tokens, but the embedder "
                f"cuts them to {embedder.identity.max_length}: retrain it with "
                f"python -m judges.refusal.train"
            )
        cues_version = head.embedding.get("cues_version")
        if cues_version not in SUPPORTED_CUES_VERSIONS:
            raise ClassifierLoadError(
                f"the refusal head was trained with cues version {cues_version!r}, this code "
                f"computes versions {list(SUPPORTED_CUES_VERSIONS)} (the current one is "
                f"{CUES_VERSION}): retrain it with python -m judges.refusal.train"
            )
        cue_count = len(CUE_NAMES_BY_VERSION[cues_version])
        if head.dimension != embedder.dimension + cue_count:
            raise ClassifierLoadError(
                f"the head expects {head.dimension} inputs, the model and cues give "
                f"{embedder.dimension + cue_count}"
            )
        self.embedder = embedder
        self.head = head
        self.cues_version: int = cues_version
        embedding = embedder.identity
        self.identity = ClassifierIdentity(
            kind="minilm-head",
            hashed={
                "embedding_model": embedding.model,
                "embedding_weights_sha256": embedding.weights_sha256,
                "embedding_tokenizer_sha256": embedding.tokenizer_sha256,
                "embedding_max_length": embedding.max_length,
                "embedding_pooling": embedding.pooling,
                # Added only when not float32, so float32 fingerprints stay as they were.
                **(
                    {"embedding_precision": embedding.precision}
                    if embedding.precision != "float32"
                    else {}
                ),
                "cues_version": cues_version,
                "head_sha256": head_sha256,
                "labels": list(head.classes),
            },
            components={
                "embedding_package": f"{embedding.package}=={embedding.package_version}",
                "head": head.training,
            },
        )

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        checked = check_texts(texts)
        return self.classify_embedded(checked, self.embedder.embed(checked))

    def classify_embedded(
        self, texts: Sequence[str], embeddings: np.ndarray
    ) -> list[Classification]:
        """Classes for texts already embedded by this classifier's embedder."""
        outputs = self.head.outputs(head_inputs(texts, embeddings, self.cues_version))
        return _classifications(outputs, self.head.classes, self.identity.fingerprint)


_default_lock = threading.Lock()
_defaults: dict[tuple[Path, Path | None, str], DefaultRefusalClassifier] = {}


def load_default_classifier(
    head_path: Path | None = None, model_dir: Path | None = None
) -> DefaultRefusalClassifier:
    """The shipped classifier (or another head over the same embeddings); one per process."""
    head_file = Path(head_path or DEFAULT_HEAD_PATH).resolve()
    key = (
        head_file,
        Path(model_dir).resolve() if model_dir is not None else None,
        default_precision(),
    )
    with _default_lock:
        classifier = _defaults.get(key)
        if classifier is None:
            head, head_sha256 = load_head(head_file, expected_classes=CLASSES)
            classifier = DefaultRefusalClassifier(get_embedder(model_dir), head, head_sha256)
            _defaults[key] = classifier
        return classifier


# --- a user's own transformers text-classification model ------------------------------------

_TOKENIZER_FILES: Final = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


class TransformersRefusalClassifier:
    """A local `AutoModelForSequenceClassification` whose labels map onto our classes.

    Probabilities are the softmax of the model's logits; when several model labels map to the
    same class, their probabilities are added.
    """

    def __init__(
        self,
        model_dir: Path,
        label_map: Mapping[str, str],
        *,
        max_length: int = 512,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        go_offline()
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ClassifierLoadError(f"{model_dir} is not a directory")
        config_file = model_dir / "config.json"
        if not config_file.is_file():
            raise ClassifierLoadError(
                f"{model_dir} has no config.json: save the model with save_pretrained()"
            )
        if batch_size < 1 or max_length < 2:
            raise ClassifierLoadError("batch_size must be >= 1 and max_length >= 2")

        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError, KeyError) as error:
            raise ClassifierLoadError(f"cannot load a model from {model_dir}: {error}") from error
        model.eval()
        id2label = {int(i): str(name) for i, name in model.config.id2label.items()}
        self.model_labels = [id2label[i] for i in sorted(id2label)]
        self.label_map = _checked_label_map(label_map, self.model_labels, model_dir)
        # Column j of `self._merge` adds model label probabilities into our class j.
        merge = np.zeros((len(self.model_labels), len(CLASSES)))
        for i, name in enumerate(self.model_labels):
            merge[i, CLASSES.index(self.label_map[name])] = 1.0
        self._merge = merge
        limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 1 < limit < 1_000_000:
            max_length = min(max_length, limit)
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads if threads is not None else available_cpus()
        self._torch = torch
        self._tokenizer = tokenizer
        self._model = model
        self.model_dir = model_dir
        self.identity = ClassifierIdentity(
            kind="transformers",
            hashed={
                "config_sha256": file_sha256(config_file),
                "weights_sha256": _sha256_of(model_dir, ("*.safetensors", "*.bin")),
                "tokenizer_sha256": _sha256_of(model_dir, _TOKENIZER_FILES),
                "max_length": max_length,
                "label_map": dict(sorted(self.label_map.items())),
                "labels": list(CLASSES),
            },
            components={"model_dir": str(model_dir), "model_labels": self.model_labels},
        )

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, len(CLASSES)) probabilities, model labels merged into our classes."""
        checked = check_texts(texts)
        torch = self._torch
        out = np.zeros((len(checked), len(CLASSES)))
        order = sorted(range(len(checked)), key=lambda i: len(checked[i]))
        # Set on every call: the MiniLM embedder's workers set torch to one thread each.
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [checked[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                logits = self._model(**batch).logits.double()
                model_probabilities = torch.softmax(logits, dim=-1).numpy()
                out[rows] = model_probabilities @ self._merge
        return out

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        outputs = summed_outputs(self.probabilities(texts), CLASSES)
        return _classifications(outputs, CLASSES, self.identity.fingerprint)


def _checked_label_map(
    label_map: Mapping[str, str], model_labels: Sequence[str], model_dir: Path
) -> dict[str, str]:
    mapping = {str(k): str(v) for k, v in label_map.items()}
    unknown_targets = sorted({v for v in mapping.values() if v not in CLASSES})
    if unknown_targets:
        raise ClassifierLoadError(
            f"label mapping targets {unknown_targets} are not classes; use {list(CLASSES)}"
        )
    unmapped = [name for name in model_labels if name not in mapping]
    if unmapped:
        raise ClassifierLoadError(
            f"model labels {unmapped} of {model_dir} have no entry in the label mapping; "
            f"the model's labels are {list(model_labels)}"
        )
    extra = sorted(set(mapping) - set(model_labels))
    if extra:
        raise ClassifierLoadError(
            f"label mapping keys {extra} are not labels of {model_dir}; "
            f"the model's labels are {list(model_labels)}"
        )
    return mapping


def _sha256_of(model_dir: Path, patterns: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pattern in patterns:
        for path in sorted(model_dir.glob(pattern)):
            if path.is_file():
                found[path.name] = file_sha256(path)
    return dict(sorted(found.items()))


def load_transformers_classifier(
    model_dir: Path | str,
    label_map: Mapping[str, str],
    *,
    max_length: int = 512,
    batch_size: int = 16,
) -> TransformersRefusalClassifier:
    """A user's own fine-tuned classifier from a local directory (never downloads).

    `label_map` maps each of the model's labels (`config.id2label` values, e.g. "REFUSAL" or
    "LABEL_1") to one of CLASSES; every model label must be mapped.
    """
    return TransformersRefusalClassifier(
        Path(model_dir), label_map, max_length=max_length, batch_size=batch_size
    )
