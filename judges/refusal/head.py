"""The classifier head over MiniLM embeddings and lexical cues, stored as JSON.

Stored as plain JSON (no pickle: loading it runs no code) next to this module in `head.json`;
`python -m judges.refusal.train` rebuilds it. Prediction is matrix products, a sigmoid and a
softmax in numpy, so classifying needs no scikit-learn; tests check it against scikit-learn's
own `predict_proba` for the same weights. Two formats:

- `tribunal-refusal-head/1` (`LinearHead`, the first two heads): one multinomial logistic
  regression over the five classes; the class is the most probable one.
- `tribunal-refusal-head/2` (`TwoStageHead`, the current head): first *did it decline?*, then
  *why?*. Stage 1 is a binary logistic regression whose logit z is calibrated,
  `P(declined) = sigmoid(a * z + b)` (the trainer fits a temperature a on out-of-source logits
  and keeps b = 0; see train.py). Stage 2 has two
  parts: for a declined response, a binary logistic regression gives `P(technical | declined)`;
  for an answered one, a multinomial one gives `P(normal | answered)`, `P(ethical_disclaimer |
  answered)` and `P(technical_disclaimer | answered)`. The five class probabilities are the
  products (e.g. `P(ethical_refusal) = P(declined) * (1 - P(technical | declined))`), so they
  add up to 1 and `P(ethical_refusal) + P(technical_refusal) = P(declined)`. The label follows
  the same order: a refusal when `P(declined) >= 0.5` (ethical or technical, whichever is more
  probable), else the most probable of the three answered classes. So `score`, the probability
  of the label, is usually but not always the largest of the five (a response declined with
  P = 0.6 split 0.3 / 0.3 between the reasons is a refusal, though `normal` may have 0.4).
  `uncertain` is true when `P(declined)` is inside the head's `uncertain_band`, or the reason
  for a refusal (or the class of an answer) has a probability below `uncertain_below`.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

FORMAT: Final = "tribunal-refusal-head/1"
FORMAT_TWO_STAGE: Final = "tribunal-refusal-head/2"
# Classes an answered response can have, in the order of the answered stage's rows.
ANSWERED: Final = ("normal", "ethical_disclaimer", "technical_disclaimer")
REFUSED: Final = ("ethical_refusal", "technical_refusal")
DEFAULT_HEAD_PATH: Final = Path(__file__).resolve().parent / "head.json"


class HeadFileError(ValueError):
    """head.json is missing, malformed or does not fit the label set / embedding size."""


@dataclass(frozen=True)
class HeadOutputs:
    """What a head says about n responses."""

    probabilities: np.ndarray  # (n, 5), columns in the head's class order, rows sum to 1
    refusal_probability: np.ndarray  # (n,) P(declined): ethical or technical refusal
    labels: np.ndarray  # (n,) index of each response's label in the class order
    uncertain: np.ndarray  # (n,) bool


class _Head(ABC):
    """What both formats share: they read rows of `dimension` numbers, and save as JSON."""

    @abstractmethod
    def input_weights(self) -> np.ndarray:
        """The weights whose last axis runs over the inputs."""

    @abstractmethod
    def to_json(self) -> str: ...

    @property
    def dimension(self) -> int:
        return int(self.input_weights().shape[-1])

    def input_rows(self, values: np.ndarray, name: str = "inputs") -> np.ndarray:
        """``values`` as an (n, dimension) float64 matrix; a ValueError naming ``name`` if not."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dimension:
            raise ValueError(f"{name} must have shape (n, {self.dimension}), got {x.shape}")
        return x

    def save(self, path: Path) -> str:
        """Write the head; returns the file's sha256."""
        data = self.to_json().encode("utf-8")
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def summed_outputs(probabilities: np.ndarray, classes: Sequence[str]) -> HeadOutputs:
    """For one probability per class (a format-1 head, a user's model): the label is the most
    probable class, P(declined) the sum of the two refusal classes' probabilities (not
    calibrated), and a response is uncertain when no class reaches 0.5."""
    refused = [list(classes).index(name) for name in REFUSED]
    return HeadOutputs(
        probabilities=probabilities,
        refusal_probability=probabilities[:, refused].sum(axis=1),
        labels=probabilities.argmax(axis=1),
        uncertain=probabilities.max(axis=1) < 0.5,
    )


@dataclass(frozen=True)
class LinearHead(_Head):
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

    def input_weights(self) -> np.ndarray:
        return self.coef

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, n_classes) class probabilities (softmax of the linear scores)."""
        return softmax(self.input_rows(embeddings, "embeddings") @ self.coef.T + self.intercept)

    def outputs(self, inputs: np.ndarray) -> HeadOutputs:
        return summed_outputs(self.probabilities(inputs), self.classes)

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


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow


def softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TwoStageHead(_Head):
    """Did it decline (calibrated), then why (see the module docstring)."""

    classes: tuple[str, ...]
    declined_coef: np.ndarray  # (dimension,)
    declined_intercept: float
    calibration: tuple[float, float]  # (a, b): P(declined) = sigmoid(a * z + b)
    reason_coef: np.ndarray  # (dimension,): logit of P(technical | declined)
    reason_intercept: float
    answered_coef: np.ndarray  # (3, dimension), rows in ANSWERED order
    answered_intercept: np.ndarray  # (3,)
    uncertain_band: tuple[float, float]  # P(declined) strictly inside: uncertain
    uncertain_below: float  # reason or answered-class probability below this: uncertain
    embedding: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.declined_coef.shape
        if len(d) != 1 or self.reason_coef.shape != d or self.answered_coef.shape != (3, d[0]):
            raise HeadFileError(
                f"stage weights have shapes {self.declined_coef.shape}, {self.reason_coef.shape}"
                f" and {self.answered_coef.shape}; expected (d,), (d,) and (3, d)"
            )
        if self.answered_intercept.shape != (3,):
            raise HeadFileError("answered_intercept must hold 3 numbers")
        if tuple(self.classes) != (*ANSWERED[:1], REFUSED[0], ANSWERED[1], REFUSED[1], ANSWERED[2]):
            raise HeadFileError(f"a two-stage head needs the classes in order, got {self.classes}")
        numbers = [
            self.declined_coef,
            self.reason_coef,
            self.answered_coef,
            self.answered_intercept,
            np.array([self.declined_intercept, self.reason_intercept, *self.calibration]),
            np.array([*self.uncertain_band, self.uncertain_below]),
        ]
        if not all(np.isfinite(n).all() for n in numbers):
            raise HeadFileError("the head holds a non-finite weight")
        low, high = self.uncertain_band
        if not (0.0 <= low <= 0.5 <= high <= 1.0 and 0.0 <= self.uncertain_below <= 1.0):
            raise HeadFileError("uncertain_band must be (low <= 0.5 <= high) within [0, 1]")

    def input_weights(self) -> np.ndarray:
        return self.declined_coef

    def declined_logit(self, inputs: np.ndarray) -> np.ndarray:
        """Stage 1's logit before calibration."""
        return self.input_rows(inputs) @ self.declined_coef + self.declined_intercept

    def outputs(self, inputs: np.ndarray) -> HeadOutputs:
        x = np.asarray(inputs, dtype=np.float64)
        a, b = self.calibration
        declined = sigmoid(a * self.declined_logit(x) + b)
        technical = sigmoid(x @ self.reason_coef + self.reason_intercept)
        answered = softmax(x @ self.answered_coef.T + self.answered_intercept)
        probabilities = np.zeros((x.shape[0], len(self.classes)))
        probabilities[:, self.classes.index(REFUSED[0])] = declined * (1.0 - technical)
        probabilities[:, self.classes.index(REFUSED[1])] = declined * technical
        for column, name in enumerate(ANSWERED):
            probabilities[:, self.classes.index(name)] = (1.0 - declined) * answered[:, column]
        refused = declined >= 0.5
        reason = np.where(technical >= 0.5, REFUSED[1], REFUSED[0])
        answer = np.array(ANSWERED)[answered.argmax(axis=1)]
        names = np.where(refused, reason, answer)
        labels = np.array([self.classes.index(str(name)) for name in names], dtype=int)
        low, high = self.uncertain_band
        second = np.where(refused, np.maximum(technical, 1.0 - technical), answered.max(axis=1))
        uncertain = ((declined > low) & (declined < high)) | (second < self.uncertain_below)
        return HeadOutputs(probabilities, declined, labels, uncertain)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        return self.outputs(inputs).probabilities

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, metadata first, weights one row per line."""
        metadata = {
            "format": FORMAT_TWO_STAGE,
            "classes": list(self.classes),
            "calibration": {
                "formula": "P(declined) = sigmoid(a * z + b), z = stage 1's logit",
                "a": self.calibration[0],
                "b": self.calibration[1],
            },
            "uncertain": {"band": list(self.uncertain_band), "below": self.uncertain_below},
            "embedding": self.embedding,
            "training": self.training,
        }
        text = json.dumps(metadata, sort_keys=True, indent=1, allow_nan=False)

        def row(values: np.ndarray) -> str:
            return json.dumps([float(v) for v in values], allow_nan=False)

        weights = (
            f' "declined": {{"intercept": {float(self.declined_intercept)!r}, '
            f'"coef": {row(self.declined_coef)}}},\n'
            f' "reason": {{"intercept": {float(self.reason_intercept)!r}, '
            f'"coef": {row(self.reason_coef)}}},\n'
            f' "answered": {{"intercept": {row(self.answered_intercept)}, "coef": [\n  '
            + ",\n  ".join(row(r) for r in self.answered_coef)
            + "\n ]}"
        )
        return f"{text[:-2]},\n{weights}\n}}\n"


Head = LinearHead | TwoStageHead


def _float_matrix(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise HeadFileError(f"{where} must hold numbers only") from error
    return array


def _two_stage(document: dict[str, Any], source: str, classes: tuple[str, ...]) -> TwoStageHead:
    def part(name: str) -> dict[str, Any]:
        value = document.get(name)
        if not isinstance(value, dict):
            raise HeadFileError(f"{source}: {name} must be an object with intercept and coef")
        return value

    declined, reason, answered = part("declined"), part("reason"), part("answered")
    calibration = part("calibration")
    uncertain = part("uncertain")
    try:
        band = [float(v) for v in uncertain["band"]]
        return TwoStageHead(
            classes=classes,
            declined_coef=_float_matrix(declined.get("coef"), f"{source}: declined.coef"),
            declined_intercept=float(declined["intercept"]),
            calibration=(float(calibration["a"]), float(calibration["b"])),
            reason_coef=_float_matrix(reason.get("coef"), f"{source}: reason.coef"),
            reason_intercept=float(reason["intercept"]),
            answered_coef=_float_matrix(answered.get("coef"), f"{source}: answered.coef"),
            answered_intercept=_float_matrix(
                answered.get("intercept"), f"{source}: answered.intercept"
            ),
            uncertain_band=(band[0], band[1]),
            uncertain_below=float(uncertain["below"]),
            embedding=dict(document.get("embedding") or {}),
            training=dict(document.get("training") or {}),
        )
    except (KeyError, TypeError, ValueError, IndexError) as error:
        if isinstance(error, HeadFileError):
            raise HeadFileError(f"{source}: {error}") from error
        raise HeadFileError(f"{source}: malformed two-stage head ({error!r})") from error


def parse_head(data: bytes, *, source: str, expected_classes: Sequence[str]) -> Head:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HeadFileError(f"{source} is not valid JSON: {error}") from error
    formats = (FORMAT, FORMAT_TWO_STAGE)
    if not isinstance(document, dict) or document.get("format") not in formats:
        raise HeadFileError(f"{source} is not a {FORMAT} or {FORMAT_TWO_STAGE} file")
    classes = tuple(document.get("classes") or ())
    if classes != tuple(expected_classes):
        raise HeadFileError(
            f"{source} was trained for classes {list(classes)}, expected {list(expected_classes)}"
        )
    if document["format"] == FORMAT_TWO_STAGE:
        return _two_stage(document, source, classes)
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


def load_head(path: Path, *, expected_classes: Sequence[str]) -> tuple[Head, str]:
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
