"""Train the refusal head: `python -m judges.refusal.train` rewrites judges/refusal/head.json.

Two recipes, both used by the evaluation (`python -m judges.refusal.evaluate`), which trains
each of them again without the model or data set it scores:

- `two-stage` (the shipped head, `TwoStageHead`): inputs are the MiniLM embedding and the
  version-3 lexical cues. Stage 1, *did it decline?*, is a binary logistic regression with
  class weights `(n / (k * n_class)) ** 0.5`; its logit is calibrated by a temperature fitted
  on out-of-source logits (each training source scored by a stage 1 trained without it), with
  no offset, so the decision stays at P = 0.5 of the weighted fit. Stage 2 has a binary
  logistic regression for *ethical or technical?* on the declined rows (balanced weights) and
  a multinomial one for *normal, ethical or technical disclaimer?* on the answered rows
  (unweighted, so that ordinary answers stay `normal`). These choices (weights, temperature
  rather than Platt scaling, no embedding of the opening) were made by comparing held-out
  results; docs/refusal-classifier.md says what that means for the figures.
- `first-heads` (the recipe of the first two heads, `LinearHead`, to score them with the same
  evaluation code): one multinomial logistic regression over the five classes on the
  embedding and the version-2 cues, class weights `(n / (k * n_class)) ** 0.5`, C chosen for
  macro-F1. Trained on the data of commit 4cf34e6 it gives that commit's head.

Choices common to both: identical (text, label) rows are fitted once (182 of XSTest's GPT-4
completions are the same sentence); every regularisation strength C is picked from a grid by
grouped cross-validation (no prompt and no identical text on both sides, seeded folds) within
the rows being fitted, never on the rows being scored. Training is deterministic: the examples
are read in file order, the folds are seeded and lbfgs has no randomness, so the same files
give the same weights up to the floating-point rounding of the BLAS in use (`--check` compares
predictions, not bytes, for that reason).

Options: --cache PATH keeps embeddings between runs (keyed by text sha256, model weights and
the cut, MAX_LENGTH).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from judges.refusal.classifier import head_inputs
from judges.refusal.cues import CUE_NAMES_BY_VERSION, CUES_VERSION
from judges.refusal.embedder import MiniLMEmbedder, get_embedder
from judges.refusal.head import (
    ANSWERED,
    DEFAULT_HEAD_PATH,
    Head,
    LinearHead,
    TwoStageHead,
    load_head,
    sigmoid,
    softmax,
)
from judges.refusal.labels import CLASSES, REFUSALS, TECHNICAL_REFUSAL
from judges.refusal.training_data import (
    TRAINING_DIR,
    Example,
    load_training_examples,
    training_files,
)

# Heads are trained, and their published figures measured, on float32 embeddings: the same on
# every CPU. (Classification may run in bfloat16; it changes almost no class on real texts.)
TRAINING_PRECISION: Final = "float32"
C_GRID: Final = (0.3, 1.0, 3.0, 10.0, 30.0)  # the first heads' grid
STAGE_C_GRID: Final = (0.1, 0.3, 1.0, 3.0, 10.0)
CLASS_WEIGHT_POWER: Final = 0.5  # the first heads' five classes
DECLINED_WEIGHT_POWER: Final = 0.5  # stage 1, declined vs answered
REASON_WEIGHT_POWER: Final = 1.0  # stage 2, ethical vs technical: balanced
ANSWERED_WEIGHT_POWER: Final = 0.0  # stage 2, normal vs disclaimers: unweighted
# `--check`: embeddings computed in other batches differ in the last float bits, which moves
# probabilities by up to about 1e-5; a changed recipe or data set moves them by far more.
CHECK_TOLERANCE: Final = 1e-4
TEMPERATURE_GRID: Final = tuple(round(0.05 * k, 2) for k in range(4, 61))  # 0.2 ... 3.0
SELECTION_FOLDS: Final = 5
SEED: Final = 20250521
MAX_ITER: Final = 10_000
# The uncertain rule stored in new heads (head.py says how it is applied).
UNCERTAIN_BAND: Final = (0.2, 0.8)
UNCERTAIN_BELOW: Final = 0.6


class EmbeddingCache:
    """Embeddings of texts on disk (npz), valid only for one set of model weights and one cut
    (a cache written without the cut, before it was recorded, is ignored)."""

    def __init__(self, path: Path | None, weights_sha256: str, max_length: int) -> None:
        self.path = path
        self.weights_sha256 = weights_sha256
        self.max_length = max_length
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as stored:
                if (
                    str(stored["weights_sha256"]) == weights_sha256
                    and "max_length" in stored.files
                    and int(stored["max_length"]) == max_length
                ):
                    keys = stored["keys"].tolist()
                    self.vectors = dict(zip(keys, stored["vectors"], strict=True))

    @classmethod
    def of(cls, path: Path | None, embedder: MiniLMEmbedder) -> EmbeddingCache:
        identity = embedder.identity
        return cls(path, identity.weights_sha256, identity.max_length)

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def embed(self, texts: Sequence[str], embedder: MiniLMEmbedder) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = list(
            dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self.vectors)
        )
        if missing:
            for text, vector in zip(missing, embedder.embed(missing), strict=True):
                self.vectors[self.key(text)] = vector
            self.save()
        if not keys:
            return np.zeros((0, embedder.dimension), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        np.savez(
            self.path,
            weights_sha256=np.array(self.weights_sha256),
            max_length=np.array(self.max_length),
            keys=np.array(keys),
            vectors=np.stack([self.vectors[k] for k in keys]),
        )


def labels_of(examples: Sequence[Example]) -> np.ndarray:
    return np.array([CLASSES.index(e.label) for e in examples], dtype=int)


def groups_of(examples: Sequence[Example]) -> np.ndarray:
    """Group ids such that rows sharing a prompt or an identical text share a group.

    XSTest has two completions per prompt, and the same refusal sentence under many prompts:
    splitting either across fitting and scoring would score the head on what it was fitted on.
    """
    parent = list(range(len(examples)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_row: dict[str, int] = {}
    for row, example in enumerate(examples):
        keys = [f"text:{example.text}"] + ([f"prompt:{example.prompt}"] if example.prompt else [])
        for key in keys:
            if key in first_row:
                parent[root(row)] = root(first_row[key])
            else:
                first_row[key] = row
    return np.array([root(i) for i in range(len(examples))])


def distinct_rows(examples: Sequence[Example], rows: Iterable[int]) -> np.ndarray:
    """`rows` without repeats of the same (text, label)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        row = int(row)
        key = (examples[row].text, examples[row].label)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return np.array(kept, dtype=int)


def class_weights(y: np.ndarray, power: float = CLASS_WEIGHT_POWER) -> dict[int, float]:
    """(n / (k * n_class)) ** power for the classes present: 1 is 'balanced', 0 is none."""
    values, counts = np.unique(y, return_counts=True)
    return {
        int(v): float((len(y) / (len(values) * c)) ** power)
        for v, c in zip(values, counts, strict=True)
    }


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, c: float, weights: dict[int, float]
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn LogisticRegression (lbfgs): (coef, intercept) as it stores them."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    model = LogisticRegression(C=c, class_weight=weights, max_iter=MAX_ITER)
    # One BLAS thread: on small problems, idle-spinning BLAS threads contending with torch's
    # made each fit 50 times slower on a 2-core machine.
    with threadpool_limits(limits=1):
        model.fit(x, y)
    return np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, np.float64)


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Five-class (coef, intercept), one row per class of CLASSES (the first heads' model)."""
    present = np.unique(y)
    fitted_coef, fitted_intercept = _fit_logistic(x, y, c, class_weights(y))
    coef = np.zeros((len(CLASSES), x.shape[1]))
    intercept = np.full(len(CLASSES), -1e3)  # a class absent from the data is never predicted
    for row, k in enumerate(present):
        coef[k] = fitted_coef[row]
        intercept[k] = fitted_intercept[row]
    return coef, intercept


def probabilities(coef: np.ndarray, intercept: np.ndarray, x: np.ndarray) -> np.ndarray:
    scores = x @ coef.T + intercept
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int = SEED
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


@dataclass(frozen=True)
class FittedHead:
    coef: np.ndarray
    intercept: np.ndarray
    c: float
    selection_macro_f1: dict[str, float]


def fit_selected(examples: Sequence[Example], x: np.ndarray, rows: np.ndarray) -> FittedHead:
    """The first heads: pick C by grouped CV within `rows` (macro-F1), then fit on all of
    `rows` (distinct texts only)."""
    from sklearn.metrics import f1_score

    subset = [examples[i] for i in rows]
    y = labels_of(subset)
    folds = grouped_folds(y, groups_of(subset), SELECTION_FOLDS)
    scores: dict[str, float] = {}
    for c in C_GRID:
        predicted = np.zeros(len(subset), dtype=int)
        for fit_part, score_part in folds:
            fit_rows = distinct_rows(subset, fit_part)
            coef, intercept = fit(x[rows][fit_rows], y[fit_rows], c)
            predicted[score_part] = probabilities(coef, intercept, x[rows][score_part]).argmax(1)
        scores[repr(c)] = float(f1_score(y, predicted, average="macro"))
    best = max(C_GRID, key=lambda c: (scores[repr(c)], -c))
    final_rows = rows[distinct_rows(subset, range(len(subset)))]
    coef, intercept = fit(x[final_rows], labels_of([examples[i] for i in final_rows]), best)
    return FittedHead(coef=coef, intercept=intercept, c=best, selection_macro_f1=scores)


# --- the two-stage head -------------------------------------------------------------------------


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood; p is P(y = 1) (n,) for a binary y, (n, k) for k classes."""
    picked = np.where(y == 1, p, 1.0 - p) if p.ndim == 1 else p[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))


@dataclass(frozen=True)
class Stage:
    coef: np.ndarray  # (d,) binary or (k, d)
    intercept: np.ndarray  # (1,) or (k,)
    c: float
    selection_log_loss: dict[str, float]


def fit_stage(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    weight_power: float,
) -> Stage:
    """Logistic regression with C chosen by grouped CV log-loss (ties: the smaller C), then
    refitted on all rows."""
    weights = class_weights(y, weight_power)
    folds = grouped_folds(y, groups, SELECTION_FOLDS)
    binary = len(np.unique(y)) == 2
    losses: dict[str, float] = {}
    for c in STAGE_C_GRID:
        scores = np.zeros(len(y)) if binary else np.zeros((len(y), len(np.unique(y))))
        for fit_part, score_part in folds:
            coef, intercept = _fit_logistic(x[fit_part], y[fit_part], c, weights)
            raw = x[score_part] @ coef.T + intercept
            scores[score_part] = raw[:, 0] if binary else raw
        losses[repr(c)] = _log_loss(sigmoid(scores) if binary else softmax(scores), y)
    best = min(STAGE_C_GRID, key=lambda c: (losses[repr(c)], c))
    coef, intercept = _fit_logistic(x, y, best, weights)
    return Stage(coef, intercept, best, losses)


def source_temperature(x: np.ndarray, y: np.ndarray, sources: np.ndarray, c: float) -> float:
    """The temperature (a in sigmoid(a * logit)) that maximises the likelihood of `y` under
    stage-1 logits computed out of source: each training source scored by a stage 1 fitted
    at C = `c` without it. So it is fitted on what an unseen model's or data set's responses
    look like to the head, not on rows like the ones it was trained on; and having no offset,
    it does not move the decision boundary (logit 0, P = 0.5). Searched on a grid of 0.05."""
    weights = class_weights(y, DECLINED_WEIGHT_POWER)
    logits = np.zeros(len(y))
    for source in np.unique(sources):
        inside = sources == source
        if len(np.unique(y[~inside])) < 2:
            raise ValueError(f"without {source} the training rows have one class only")
        coef, intercept = _fit_logistic(x[~inside], y[~inside], c, weights)
        logits[inside] = x[inside] @ coef[0] + intercept[0]
    return float(min(TEMPERATURE_GRID, key=lambda t: (_log_loss(sigmoid(t * logits), y), t)))


def fit_two_stage(
    examples: Sequence[Example],
    x: np.ndarray,
    rows: np.ndarray,
    *,
    embedding: dict[str, Any],
    training: dict[str, Any],
) -> TwoStageHead:
    """The two-stage head fitted on `rows` of `examples` (distinct (text, label) rows only)."""
    kept = rows[distinct_rows([examples[i] for i in rows], range(len(rows)))]
    subset = [examples[i] for i in kept]
    xs = x[kept]
    labels = [e.label for e in subset]
    groups = groups_of(subset)
    declined = np.array([label in REFUSALS for label in labels], dtype=int)
    stage1 = fit_stage(xs, declined, groups, weight_power=DECLINED_WEIGHT_POWER)
    sources = np.array([e.source for e in subset])
    temperature = source_temperature(xs, declined, sources, stage1.c)
    refused = np.flatnonzero(declined == 1)
    technical = np.array([labels[i] == TECHNICAL_REFUSAL for i in refused], dtype=int)
    reason = fit_stage(xs[refused], technical, groups[refused], weight_power=REASON_WEIGHT_POWER)
    answered_rows = np.flatnonzero(declined == 0)
    answered_y = np.array([ANSWERED.index(labels[i]) for i in answered_rows])
    answered = fit_stage(
        xs[answered_rows], answered_y, groups[answered_rows], weight_power=ANSWERED_WEIGHT_POWER
    )
    if answered.coef.shape[0] != len(ANSWERED):
        raise ValueError("the answered stage needs examples of all three answered classes")
    return TwoStageHead(
        classes=CLASSES,
        declined_coef=stage1.coef[0],
        declined_intercept=float(stage1.intercept[0]),
        calibration=(temperature, 0.0),
        reason_coef=reason.coef[0],
        reason_intercept=float(reason.intercept[0]),
        answered_coef=answered.coef,
        answered_intercept=answered.intercept,
        uncertain_band=UNCERTAIN_BAND,
        uncertain_below=UNCERTAIN_BELOW,
        embedding=embedding,
        training={
            **training,
            "stages": {
                "declined": {
                    "C": stage1.c,
                    "C_selection_log_loss": stage1.selection_log_loss,
                    "class_weight_power": DECLINED_WEIGHT_POWER,
                    "rows": len(declined),
                    "declined_rows": int(declined.sum()),
                },
                "reason": {
                    "C": reason.c,
                    "C_selection_log_loss": reason.selection_log_loss,
                    "class_weight_power": REASON_WEIGHT_POWER,
                    "rows": len(refused),
                    "technical_rows": int(technical.sum()),
                },
                "answered": {
                    "C": answered.c,
                    "C_selection_log_loss": answered.selection_log_loss,
                    "class_weight_power": ANSWERED_WEIGHT_POWER,
                    "rows": len(answered_rows),
                    "rows_per_class": {
                        name: int((answered_y == k).sum()) for k, name in enumerate(ANSWERED)
                    },
                },
            },
            "calibration": "temperature of stage 1's logits, fitted on logits computed with each "
            "training source left out",
            "examples": len(rows),
            "distinct_examples_fitted": len(kept),
        },
    )


# --- recipes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How a head is made from labelled examples (the evaluation trains each recipe again
    without the model or data set it scores)."""

    name: str
    cues_version: int
    build: Callable[[Sequence[Example], np.ndarray, np.ndarray, dict[str, Any]], Head]

    def inputs(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        return head_inputs(texts, embeddings, self.cues_version)

    def train(
        self,
        examples: Sequence[Example],
        embeddings: np.ndarray,
        rows: np.ndarray | None = None,
        identity: dict[str, Any] | None = None,
    ) -> Head:
        """A head fitted on `rows` (default: all) of `examples`, whose embeddings are given."""
        chosen = np.arange(len(examples)) if rows is None else np.asarray(rows, dtype=int)
        x = self.inputs([e.text for e in examples], embeddings)
        return self.build(examples, x, chosen, identity or {})


def _embedding_metadata(identity: dict[str, Any], cues_version: int) -> dict[str, Any]:
    if not identity:
        return {"cues_version": cues_version}
    return {
        "model": identity["model"],
        "weights_sha256": identity["weights_sha256"],
        "tokenizer_sha256": identity["tokenizer_sha256"],
        "max_length": identity["max_length"],
        "pooling": identity["pooling"],
        "cues_version": cues_version,
        "inputs": [f"embedding[{identity['dimension']}]", *CUE_NAMES_BY_VERSION[cues_version]],
    }


def _build_two_stage(
    examples: Sequence[Example], x: np.ndarray, rows: np.ndarray, identity: dict[str, Any]
) -> Head:
    import sklearn

    return fit_two_stage(
        examples,
        x,
        rows,
        embedding=_embedding_metadata(identity, 3),
        training={
            "command": "python -m judges.refusal.train",
            "recipe": "two-stage",
            "estimator": "sklearn LogisticRegression (lbfgs) per stage",
            "scikit_learn": sklearn.__version__,
            "examples_per_class": dict(sorted(Counter(examples[i].label for i in rows).items())),
            "examples_per_source": dict(sorted(Counter(examples[i].source for i in rows).items())),
        },
    )


def _build_first_heads(
    examples: Sequence[Example], x: np.ndarray, rows: np.ndarray, identity: dict[str, Any]
) -> Head:
    fitted = fit_selected(examples, x, rows)
    return LinearHead(
        classes=CLASSES,
        coef=fitted.coef,
        intercept=fitted.intercept,
        embedding=_embedding_metadata(identity, 2),
        training={"recipe": "first-heads", "C": fitted.c, "examples": len(rows)},
    )


TWO_STAGE: Final = Recipe("two-stage", 3, _build_two_stage)
FIRST_HEADS: Final = Recipe("first-heads", 2, _build_first_heads)
assert TWO_STAGE.cues_version == CUES_VERSION


def embed_examples(
    examples: Sequence[Example], embedder: MiniLMEmbedder, cache: Path | None = None
) -> np.ndarray:
    texts = [e.text for e in examples]
    return EmbeddingCache.of(cache, embedder).embed(texts, embedder)


def train_head(
    examples: Sequence[Example],
    embeddings: np.ndarray,
    embedding_identity: dict[str, Any],
    data_dir: Path = TRAINING_DIR,
) -> Head:
    """The shipped head: the two-stage recipe on every training example."""
    head = TWO_STAGE.train(examples, embeddings, identity=embedding_identity)
    assert isinstance(head, TwoStageHead)
    head.training["data_files"] = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in training_files(data_dir)
    }
    head.training["examples"] = len(examples)
    return head


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the refusal head from the CSVs.")
    parser.add_argument("--data-dir", type=Path, default=TRAINING_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_HEAD_PATH)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="train, then compare with the stored head instead of writing it",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    examples = load_training_examples(args.data_dir)
    embedder = get_embedder(precision=TRAINING_PRECISION)
    embeddings = embed_examples(examples, embedder, args.cache)
    identity = {**embedder.identity.as_dict(), "dimension": embedder.dimension}
    head = train_head(examples, embeddings, identity, args.data_dir)
    x = TWO_STAGE.inputs([e.text for e in examples], embeddings)
    if args.check:
        stored, _ = load_head(args.out, expected_classes=CLASSES)
        new, old = head.outputs(x), stored.outputs(x)
        same = float((new.labels == old.labels).mean())
        gap = float(np.abs(new.probabilities - old.probabilities).max())
        print(
            f"retrained vs stored head: same class for {same:.1%} of {len(examples)} examples, "
            f"largest probability difference {gap:.1e}"
        )
        return 0 if same == 1.0 and gap < CHECK_TOLERANCE else 1
    sha256 = head.save(args.out)
    stages = head.training["stages"]
    chosen = ", ".join(f"{name} C={stage['C']}" for name, stage in stages.items())
    print(
        f"trained on {len(examples)} examples ({chosen}) in "
        f"{time.perf_counter() - started:.0f} s; wrote {args.out} (sha256 {sha256})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
