"""The classifier head: a multinomial logistic regression over MiniLM embeddings, as JSON.

Stored as plain JSON (no pickle: loading it runs no code) next to this module in `head.json`;
`python -m judges.refusal.train` rebuilds it. Prediction is a matrix product and a softmax in
numpy, so classifying needs no scikit-learn; tests check it against scikit-learn's own
`predict_proba` for the same weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

FORMAT: Final = "tribunal-refusal-head/1"
DEFAULT_HEAD_PATH: Final = Path(__file__).resolve().parent / "head.json"


class HeadFileError(ValueError):
    """head.json is missing, malformed or does not fit the label set / embedding size."""


@dataclass(frozen=True)
class LinearHead:
    classes: tuple[str, ...]
    coef: np.ndarray  # (n_classes, dimension)
    intercept: np.ndarray  # (n_classes,)
    embedding: dict[str, Any] = field(default_factory=dict)  # what the inputs must come from
    training: dict[str, Any] = field(default_factory=dict)  # provenance, informational

    def __post_init__(self) -> None:
        if self.coef.ndim != 2 or self.coef.shape[0] != len(self.classes):
            raise HeadFileError(
                f"coef has shape {self.coef.shape}, expected ({len(self.classes)}, dimension)"
            )
        if self.intercept.shape != (len(self.classes),):
            raise HeadFileError(
                f"intercept has shape {self.intercept.shape}, expected ({len(self.classes)},)"
            )
        if not (np.isfinite(self.coef).all() and np.isfinite(self.intercept).all()):
            raise HeadFileError("the head holds a non-finite weight")

    @property
    def dimension(self) -> int:
        return int(self.coef.shape[1])

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, n_classes) class probabilities (softmax of the linear scores)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dimension:
            raise ValueError(f"embeddings must have shape (n, {self.dimension}), got {x.shape}")
        scores = x @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, one line per class row, floats at full precision."""
        metadata = {
            "format": FORMAT,
            "classes": list(self.classes),
            "embedding": self.embedding,
            "training": self.training,
        }
        text = json.dumps(metadata, sort_keys=True, indent=1, allow_nan=False)
        rows = ",\n  ".join(
            json.dumps([float(v) for v in row], allow_nan=False) for row in self.coef
        )
        intercept = json.dumps([float(v) for v in self.intercept], allow_nan=False)
        # `text` ends with "\n}": reopen it to append the weights after the metadata.
        return f'{text[:-2]},\n "intercept": {intercept},\n "coef": [\n  {rows}\n ]\n}}\n'

    def save(self, path: Path) -> str:
        """Write the head; returns the file's sha256."""
        data = self.to_json().encode("utf-8")
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def _float_matrix(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise HeadFileError(f"{where} must hold numbers only") from error
    return array


def parse_head(data: bytes, *, source: str, expected_classes: Sequence[str]) -> LinearHead:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HeadFileError(f"{source} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise HeadFileError(f"{source} is not a {FORMAT} file")
    classes = tuple(document.get("classes") or ())
    if classes != tuple(expected_classes):
        raise HeadFileError(
            f"{source} was trained for classes {list(classes)}, expected {list(expected_classes)}"
        )
    coef = _float_matrix(document.get("coef"), f"{source}: coef")
    intercept = _float_matrix(document.get("intercept"), f"{source}: intercept")
    try:
        return LinearHead(
            classes=classes,
            coef=coef,
            intercept=intercept,
            embedding=dict(document.get("embedding") or {}),
            training=dict(document.get("training") or {}),
        )
    except HeadFileError as error:
        raise HeadFileError(f"{source}: {error}") from error


def load_head(path: Path, *, expected_classes: Sequence[str]) -> tuple[LinearHead, str]:
    """The head stored at `path` and the file's sha256."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise HeadFileError(f"cannot read the refusal head {path}: {error.strerror}") from error
    head = parse_head(data, source=str(path), expected_classes=expected_classes)
    return head, hashlib.sha256(data).hexdigest()


def log_loss(probabilities: np.ndarray, truth: Sequence[int]) -> float:
    """Mean negative log-likelihood of the true classes (used in training reports)."""
    picked = probabilities[np.arange(len(truth)), np.asarray(truth)]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0)))) if len(truth) else math.nan
