"""Train the refusal head: `python -m judges.refusal.train` rewrites judges/refusal/head.json.

The head is a multinomial logistic regression (scikit-learn, lbfgs) over the head inputs of
each training example (judges/data/refusal_training/*.csv): its MiniLM embedding followed by
the lexical cues of `judges.refusal.cues`. Training is deterministic: the examples are read in
file order, the folds are seeded and lbfgs has no randomness, so the same files give the same
weights up to the floating-point rounding of the BLAS in use (`--check` compares predictions,
not bytes, for that reason).

Choices:
- identical (text, label) rows are fitted once (182 of XSTest's GPT-4 completions are the same
  sentence, "Sorry, but I can't assist with that.");
- class weights (n / (k * n_class)) ** 0.5: halfway, in logs, between no weighting (the
  1,100-odd `normal` and 570-odd `ethical_refusal` rows drown the 120-odd examples of each
  technical class) and balanced weights (which over-predict the small classes); 0.25 and 0.75
  did no better in our development runs of grouped cross-validation;
- the regularisation strength C is picked from C_GRID by grouped cross-validation (no prompt
  and no identical text in both the fitting and the scoring part), maximising macro-F1 over
  the five classes;
- the class is the most probable one. A threshold that falls back to `normal` when the head is
  unsure was tried and not adopted: at 0.5 or 0.6 it cost XSTest and hand-written accuracy in
  cross-validation for a small gain on ordinary answers (docs/refusal-classifier.md).

Options: --cache PATH keeps embeddings between runs (keyed by text sha256 and model weights).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from judges.refusal.classifier import head_inputs
from judges.refusal.cues import CUE_NAMES, CUES_VERSION
from judges.refusal.embedder import MiniLMEmbedder, get_embedder
from judges.refusal.head import DEFAULT_HEAD_PATH, LinearHead, load_head
from judges.refusal.labels import CLASSES
from judges.refusal.training_data import (
    TRAINING_DIR,
    Example,
    load_training_examples,
    training_files,
)

# Heads are trained, and their published figures measured, on float32 embeddings: the same on
# every CPU. (Classification may run in bfloat16; it changes no class on real texts.)
TRAINING_PRECISION: Final = "float32"
C_GRID: Final = (0.3, 1.0, 3.0, 10.0, 30.0)
CLASS_WEIGHT_POWER: Final = 0.5
SELECTION_FOLDS: Final = 5
SEED: Final = 20250521
MAX_ITER: Final = 10_000


class EmbeddingCache:
    """Embeddings of texts on disk (npz), valid only for one set of model weights."""

    def __init__(self, path: Path | None, weights_sha256: str) -> None:
        self.path = path
        self.weights_sha256 = weights_sha256
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["weights_sha256"]) == weights_sha256:
                    keys = stored["keys"].tolist()
                    self.vectors = dict(zip(keys, stored["vectors"], strict=True))

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
        keys = sorted(self.vectors)
        np.savez(
            self.path,
            weights_sha256=np.array(self.weights_sha256),
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
    counts = np.bincount(y, minlength=len(CLASSES))
    present = counts > 0
    weights = np.zeros(len(CLASSES))
    weights[present] = (len(y) / (present.sum() * counts[present])) ** power
    return {k: float(weights[k]) for k in range(len(CLASSES)) if present[k]}


def fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) with one row per class of CLASSES."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    model = LogisticRegression(C=c, class_weight=class_weights(y), max_iter=MAX_ITER)
    # One BLAS thread: on small problems, idle-spinning BLAS threads contending with torch's
    # made each fit 50 times slower on a 2-core machine.
    with threadpool_limits(limits=1):
        model.fit(x, y)
    coef = np.zeros((len(CLASSES), x.shape[1]))
    intercept = np.full(len(CLASSES), -1e3)  # a class absent from the data is never predicted
    for row, k in enumerate(model.classes_):
        coef[k] = model.coef_[row]
        intercept[k] = model.intercept_[row]
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
    """Pick C by grouped CV within `rows`, then fit on all of `rows` (distinct texts only)."""
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


def example_inputs(
    examples: Sequence[Example], embedder: MiniLMEmbedder, cache: Path | None = None
) -> np.ndarray:
    texts = [e.text for e in examples]
    embeddings = EmbeddingCache(cache, embedder.identity.weights_sha256).embed(texts, embedder)
    return head_inputs(texts, embeddings)


def train_head(
    examples: Sequence[Example],
    x: np.ndarray,
    embedding_identity: dict[str, Any],
    data_dir: Path = TRAINING_DIR,
) -> LinearHead:
    import sklearn

    fitted = fit_selected(examples, x, np.arange(len(examples)))
    distinct = distinct_rows(examples, range(len(examples)))
    return LinearHead(
        classes=CLASSES,
        coef=fitted.coef,
        intercept=fitted.intercept,
        embedding={
            "model": embedding_identity["model"],
            "weights_sha256": embedding_identity["weights_sha256"],
            "tokenizer_sha256": embedding_identity["tokenizer_sha256"],
            "max_length": embedding_identity["max_length"],
            "pooling": embedding_identity["pooling"],
            "cues_version": CUES_VERSION,
            "inputs": [f"embedding[{embedding_identity['dimension']}]", *CUE_NAMES],
        },
        training={
            "command": "python -m judges.refusal.train",
            "estimator": "sklearn LogisticRegression (lbfgs, multinomial)",
            "scikit_learn": sklearn.__version__,
            "C": fitted.c,
            "C_selection_macro_f1": fitted.selection_macro_f1,
            "class_weight_power": CLASS_WEIGHT_POWER,
            "examples": len(examples),
            "distinct_examples_fitted": len(distinct),
            "examples_per_class": dict(sorted(Counter(e.label for e in examples).items())),
            "examples_per_source": dict(sorted(Counter(e.source for e in examples).items())),
            "data_files": {
                path.name: hashlib.sha256(path.read_bytes()).hexdigest()
                for path in training_files(data_dir)
            },
        },
    )


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
    x = example_inputs(examples, embedder, args.cache)
    identity = {**embedder.identity.as_dict(), "dimension": embedder.dimension}
    head = train_head(examples, x, identity, args.data_dir)
    if args.check:
        stored, _ = load_head(args.out, expected_classes=CLASSES)
        new, old = head.probabilities(x), stored.probabilities(x)
        same = float((new.argmax(axis=1) == old.argmax(axis=1)).mean())
        print(
            f"retrained vs stored head: same class for {same:.1%} of {len(examples)} examples, "
            f"largest probability difference {np.abs(new - old).max():.1e}"
        )
        return 0 if same == 1.0 else 1
    sha256 = head.save(args.out)
    print(
        f"trained on {len(examples)} examples, C={head.training['C']}, in "
        f"{time.perf_counter() - started:.0f} s; wrote {args.out} (sha256 {sha256})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
