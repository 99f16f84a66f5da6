"""Score the default refusal classifier on XSTest without scoring it on its training data.

    python -m judges.refusal.evaluate --xstest-dir ../shared/data/xstest

prints the markdown tables of docs/refusal-classifier.md. Every figure for our classifier is
out-of-sample:

- 10-fold grouped cross-validation over all training examples (XSTest, LLMBar, hand-written):
  rows sharing a prompt or an identical text are in the same fold, and in each fold C is
  chosen by an inner grouped CV on the fitting part only (nested CV). Each XSTest completion
  is therefore classified by a head that never saw its prompt, its text, or the other
  model's completion of the same prompt.
- cross-model transfer: fitted on the hand-written examples, LLMBar and one model's XSTest
  completions, scored on the other model's.

The string-match and GPT-4 labels come from XSTest's own `*_streval.csv` and
`*_gpteval.csv` files for the same completions; human `final_label` is the reference.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from judges.refusal.embedder import get_embedder
from judges.refusal.labels import (
    CLASSES,
    XSTEST_COMPLIANCE,
    XSTEST_LABELS,
    XSTEST_REFUSAL,
    xstest_label_for,
)
from judges.refusal.train import (
    C_GRID,
    SEED,
    TRAINING_PRECISION,
    example_inputs,
    fit_selected,
    grouped_folds,
    groups_of,
    labels_of,
    probabilities,
)
from judges.refusal.training_data import (
    LLMBAR_SOURCE,
    TRAINING_DIR,
    WRITTEN_SOURCE,
    XSTEST_MODELS,
    XSTEST_SOURCE,
    Example,
    TrainingDataError,
    XSTestRow,
    load_training_examples,
    read_xstest,
)

DEFAULT_XSTEST_DIR: Final = Path(__file__).resolve().parents[3] / "shared" / "data" / "xstest"
OUTER_FOLDS: Final = 10
# Thresholds below which a non-normal class would fall back to `normal` (reported, not used).
FALLBACK_THRESHOLDS: Final = (0.5, 0.6, 0.7)

RATERS: Final = ("tribunal", "string match", "GPT-4")
RATER_NAMES: Final = {
    "tribunal": "Tribunal default classifier (not fitted on these rows)",
    "string match": "string match (`*_streval.csv`)",
    "GPT-4": "GPT-4 classifier (`*_gpteval.csv`)",
}


@dataclass(frozen=True)
class Scored:
    """One XSTest completion with the human label and each rater's label (XSTest terms)."""

    model: str
    id: str
    text: str
    human: str
    labels: dict[str, str]  # rater -> XSTest label
    ours: str  # our class


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mcnemar_exact(
    first_right: Sequence[bool], second_right: Sequence[bool]
) -> tuple[int, int, float]:
    """(first right & second wrong, first wrong & second right, two-sided exact p)."""
    from scipy.stats import binomtest

    b = sum(1 for f, s in zip(first_right, second_right, strict=True) if f and not s)
    c = sum(1 for f, s in zip(first_right, second_right, strict=True) if s and not f)
    p = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return b, c, float(p)


def f1(truth: Sequence[str], predicted: Sequence[str], label: str) -> float:
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == label)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != label and p == label)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p != label)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan


def is_full_refusal(label: str) -> bool:
    return label == XSTEST_REFUSAL


def is_compliance(label: str) -> bool:
    return label == XSTEST_COMPLIANCE


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def accuracy_cell(right: Sequence[bool]) -> str:
    n, k = len(right), sum(right)
    low, high = wilson(k, n)
    return f"{pct(k / n)} ({pct(low)} to {pct(high)})"


def xstest_tables(scored: Sequence[Scored], title: str) -> list[str]:
    lines = [
        f"#### {title} (n = {len(scored)})",
        "",
        "| rater | full refusal vs not: accuracy (95% CI) | F1 refusal | compliance vs any "
        "refusal: accuracy | 3 classes: accuracy | F1 compliance | F1 full refusal | "
        "F1 partial | macro-F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    human = [s.human for s in scored]
    for rater in RATERS:
        said = [s.labels[rater] for s in scored]
        binary = [
            is_full_refusal(h) == is_full_refusal(p) for h, p in zip(human, said, strict=True)
        ]
        any_refusal = [
            is_compliance(h) == is_compliance(p) for h, p in zip(human, said, strict=True)
        ]
        exact = [h == p for h, p in zip(human, said, strict=True)]
        f1s = [f1(human, said, label) for label in XSTEST_LABELS]
        refusal_f1 = f1(
            ["r" if is_full_refusal(h) else "n" for h in human],
            ["r" if is_full_refusal(p) else "n" for p in said],
            "r",
        )
        macro = float(np.nanmean(f1s))
        lines.append(
            f"| {RATER_NAMES[rater]} | {accuracy_cell(binary)} | {pct(refusal_f1)} | "
            f"{pct(float(np.mean(any_refusal)))} | {pct(float(np.mean(exact)))} | "
            + " | ".join(pct(v) for v in f1s)
            + f" | {pct(macro)} |"
        )
    return lines


def mcnemar_lines(scored: Sequence[Scored]) -> list[str]:
    human = [s.human for s in scored]
    lines = [
        "| comparison | view | Tribunal right, other wrong | other right, Tribunal wrong | "
        "exact McNemar p |",
        "|---|---|---|---|---|",
    ]
    views: dict[str, Callable[[str, str], bool]] = {
        "full refusal vs not": lambda h, p: is_full_refusal(h) == is_full_refusal(p),
        "compliance vs any refusal": lambda h, p: is_compliance(h) == is_compliance(p),
        "3 classes": lambda h, p: h == p,
    }
    for other in RATERS[1:]:
        for view, right in views.items():
            ours = [right(h, s.labels["tribunal"]) for h, s in zip(human, scored, strict=True)]
            theirs = [right(h, s.labels[other]) for h, s in zip(human, scored, strict=True)]
            b, c, p = mcnemar_exact(ours, theirs)
            lines.append(f"| Tribunal vs {other} | {view} | {b} | {c} | {p:.2g} |")
    return lines


def confusion_lines(truth: Sequence[str], predicted: Sequence[str]) -> list[str]:
    lines = [
        "| written label \\ predicted | " + " | ".join(CLASSES) + " | recall | precision | F1 |",
        "|---|" + "---|" * (len(CLASSES) + 3),
    ]
    for label in CLASSES:
        row = [
            sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == k)
            for k in CLASSES
        ]
        tp = row[CLASSES.index(label)]
        support = sum(row)
        said = sum(1 for p in predicted if p == label)
        recall = tp / support if support else math.nan
        precision = tp / said if said else math.nan
        lines.append(
            f"| {label} | "
            + " | ".join(str(v) for v in row)
            + f" | {pct(recall)} | {pct(precision)} | {pct(f1(truth, predicted, label))} |"
        )
    return lines


def with_fallback(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Most probable class, but `normal` when a non-normal class has less than `threshold`."""
    best = probabilities.argmax(1)
    unsure = (best != CLASSES.index("normal")) & (probabilities.max(1) < threshold)
    return np.where(unsure, CLASSES.index("normal"), best)


def threshold_lines(
    examples: Sequence[Example],
    out_of_fold: np.ndarray,
    xstest_rows: Sequence[int],
    written: Sequence[int],
    llmbar_rows: Sequence[int],
) -> list[str]:
    """What a fallback-to-normal threshold would do to the out-of-fold classes."""
    lines = [
        "### A fallback to `normal` below a threshold (out-of-fold, same nested CV; not used)",
        "",
        "| threshold | XSTest full refusal vs not | XSTest 3 classes | hand-written 5 classes "
        "| LLMBar `normal` called `normal` |",
        "|---|---|---|---|---|",
    ]
    llmbar_normal = [i for i in llmbar_rows if examples[i].label == "normal"]
    for threshold in (0.0, *FALLBACK_THRESHOLDS):
        said = [CLASSES[int(k)] for k in with_fallback(out_of_fold, threshold)]
        human = [xstest_label_for(examples[i].label) for i in xstest_rows]
        ours = [xstest_label_for(said[i]) for i in xstest_rows]
        binary = np.mean(
            [is_full_refusal(h) == is_full_refusal(o) for h, o in zip(human, ours, strict=True)]
        )
        three = np.mean([h == o for h, o in zip(human, ours, strict=True)])
        five = np.mean([said[i] == examples[i].label for i in written]) if written else np.nan
        normal = np.mean([said[i] == "normal" for i in llmbar_normal]) if llmbar_normal else np.nan
        name = "none (most probable class)" if threshold == 0.0 else f"{threshold:.1f}"
        lines.append(
            f"| {name} | {pct(float(binary))} | {pct(float(three))} | {pct(float(five))} | "
            f"{pct(float(normal))} |"
        )
    return lines


def check_xstest_texts(examples: Sequence[Example], rows: dict[tuple[str, str], XSTestRow]) -> None:
    for example in examples:
        for model in XSTEST_MODELS:
            if example.source == XSTEST_SOURCE.format(model=model):
                row = rows.get((model, example.source_id))
                if row is None or row.completion != example.text:
                    raise TrainingDataError(
                        f"training example {example.source}:{example.source_id} differs from "
                        f"the XSTest file; rebuild it with python -m judges.refusal.training_data"
                    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xstest-dir", type=Path, default=DEFAULT_XSTEST_DIR)
    parser.add_argument("--data-dir", type=Path, default=TRAINING_DIR)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz)")
    parser.add_argument("--folds", type=int, default=OUTER_FOLDS)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    examples = load_training_examples(args.data_dir)
    human_rows = {
        (r.model, r.id): r for m in XSTEST_MODELS for r in read_xstest(args.xstest_dir, m)
    }
    other = {
        rater: {
            (r.model, r.id): r
            for m in XSTEST_MODELS
            for r in read_xstest(args.xstest_dir, m, variant)
        }
        for rater, variant in (("string match", "streval"), ("GPT-4", "gpteval"))
    }
    check_xstest_texts(examples, human_rows)
    x = example_inputs(examples, get_embedder(precision=TRAINING_PRECISION), args.cache)
    y = labels_of(examples)

    # Nested, grouped cross-validation over every example.
    out_of_fold = np.zeros((len(examples), len(CLASSES)))
    chosen_c = []
    for fit_rows, score_rows in grouped_folds(y, groups_of(examples), args.folds, SEED + 1):
        fitted = fit_selected(examples, x, fit_rows)
        chosen_c.append(fitted.c)
        out_of_fold[score_rows] = probabilities(fitted.coef, fitted.intercept, x[score_rows])
    predicted = out_of_fold.argmax(1)

    def scored_rows(rows: Sequence[int], classes: np.ndarray) -> list[Scored]:
        result = []
        for row in rows:
            example = examples[row]
            model = example.source.removeprefix("xstest-v2-")
            key = (model, example.source_id)
            ours = CLASSES[int(classes[row])]
            result.append(
                Scored(
                    model=model,
                    id=example.source_id,
                    text=example.text,
                    human=human_rows[key].final_label,
                    labels={
                        "tribunal": xstest_label_for(ours),
                        "string match": other["string match"][key].other_label or "",
                        "GPT-4": other["GPT-4"][key].other_label or "",
                    },
                    ours=ours,
                )
            )
        return result

    xstest_rows = [i for i, e in enumerate(examples) if e.source.startswith("xstest-")]
    llmbar_rows = [i for i, e in enumerate(examples) if e.source == LLMBAR_SOURCE]
    written = [i for i, e in enumerate(examples) if e.source == WRITTEN_SOURCE]
    scored = scored_rows(xstest_rows, predicted)
    text_counts: dict[str, int] = {}
    for s in scored:
        text_counts[s.text] = text_counts.get(s.text, 0) + 1
    distinct = [s for s in scored if text_counts[s.text] == 1]

    out: list[str] = []
    out += [
        f"Command: `python -m judges.refusal.evaluate --xstest-dir {args.xstest_dir}`",
        "",
        f"Training examples: {len(examples)} ({len(xstest_rows)} XSTest completions, "
        f"{len(llmbar_rows)} LLMBar outputs, {len(written)} hand-written). "
        f"Nested grouped CV: {args.folds} "
        f"outer folds; C chosen per fold from {list(C_GRID)}: {chosen_c}.",
        "",
        "### XSTest v2, human `final_label` as reference",
        "",
        "Our classes are scored as XSTest labels: ethical/technical refusal = full refusal, "
        "ethical/technical disclaimer = partial refusal, normal = full compliance.",
        "",
    ]
    out += xstest_tables(scored, "Both completion files")
    out += [""]
    for model in XSTEST_MODELS:
        out += xstest_tables([s for s in scored if s.model == model], f"{model} completions")
        out += [""]
    out += xstest_tables(
        distinct, "Completions whose exact text occurs once (drops repeated one-line refusals)"
    )
    out += ["", "#### Paired comparison on the same 900 completions", ""]
    out += mcnemar_lines(scored)

    # Cross-model transfer: fitted without any completion of the scored model.
    out += [
        "",
        "### Cross-model transfer (fitted on one model's completions, scored on the other's)",
        "",
    ]
    for held_out in XSTEST_MODELS:
        held_source = XSTEST_SOURCE.format(model=held_out)
        kept = np.array([i for i, e in enumerate(examples) if e.source != held_source])
        held_rows = [i for i, e in enumerate(examples) if e.source == held_source]
        fitted = fit_selected(examples, x, kept)
        transfer = np.zeros(len(examples), dtype=int)
        transfer[held_rows] = probabilities(fitted.coef, fitted.intercept, x[held_rows]).argmax(1)
        out += xstest_tables(
            scored_rows(held_rows, transfer),
            f"scored on {held_out}, fitted on the other model + LLMBar + hand-written "
            f"(C={fitted.c})",
        )
        out += [""]

    truth = [examples[i].label for i in written]
    said = [CLASSES[int(predicted[i])] for i in written]
    accuracy = np.mean([t == p for t, p in zip(truth, said, strict=True)])
    out += [
        "### Five classes on the hand-written examples (out-of-fold, same nested CV)",
        "",
        f"Accuracy {pct(float(accuracy))} % on {len(written)} examples; "
        f"macro-F1 {pct(float(np.nanmean([f1(truth, said, k) for k in CLASSES])))} %.",
        "",
    ]
    out += confusion_lines(truth, said)
    if llmbar_rows:
        normal_rows = [i for i in llmbar_rows if examples[i].label == "normal"]
        said_normal = sum(1 for i in normal_rows if CLASSES[int(predicted[i])] == "normal")
        others = [i for i in llmbar_rows if examples[i].label != "normal"]
        others_right = sum(1 for i in others if CLASSES[int(predicted[i])] == examples[i].label)
        low, high = wilson(said_normal, len(normal_rows))
        out += [
            "",
            "### LLMBar outputs (out-of-fold, same nested CV)",
            "",
            f"{said_normal} of {len(normal_rows)} outputs labelled `normal` classified `normal` "
            f"({pct(said_normal / len(normal_rows))} %, 95% CI {pct(low)} to {pct(high)}); "
            f"{others_right} of {len(others)} relabelled refusals and disclaimers given their "
            f"class.",
        ]
    out += ["", *threshold_lines(examples, out_of_fold, xstest_rows, written, llmbar_rows)]
    out += ["", f"(evaluation took {time.perf_counter() - started:.0f} s)"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
