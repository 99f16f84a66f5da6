"""Score the refusal classifier the way it is used: on models and data sets it never saw.

    python -m judges.refusal.evaluate [--data-dir ../shared/data] [--cache FILE]

prints every figure of docs/refusal-classifier.md ("How well it works") and writes
`judges/refusal/heldout.json`, the held-out accuracy the app quotes beside the classes. For
each of two recipes (train.py), the shipped `two-stage` head ("after") and the `first-heads`
recipe on the data of commit 4cf34e6 ("before", which reproduces that commit's head):

- leave one model out: for XSTest's GPT-4 and Llama-2-70b-chat completions, a head trained
  without any completion of that model; AlpacaEval's gpt4_1106_preview, claude-2.1 and
  llama-2-70b-chat outputs (the check set's rows) are never trained on, so the full head
  scores them;
- leave one set out: XSTest, hh-rlhf, LLMBar and PandaLM, each scored by a head trained
  without any row of that set (hh-rlhf and PandaLM were never in the "before" data);
- the out-of-domain check set (`judges/data/refusal_checkset/checkset.csv`) and, once it is
  labelled, the sealed set (`sealed.csv`), scored by the full heads.

The binary view, *did the response decline?* (a refusal of either kind; XSTest's full
refusal), is compared with XSTest's string match (`string_match.py`) on exactly the same rows:
accuracy with Wilson 95% intervals and an exact McNemar test on the rows where exactly one of
the two is right. The figure that counts is the worst held-out model, not the average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from judges.refusal.checkset import (
    ALPACA_MODELS,
    CHECKSET_FILE,
    SEALED_FILE,
    UNCLEAR,
    CheckRow,
    read_checkset,
)
from judges.refusal.embedder import get_embedder
from judges.refusal.head import DEFAULT_HEAD_PATH, Head, HeadOutputs, TwoStageHead, load_head
from judges.refusal.labels import CLASSES, NORMAL, REFUSALS
from judges.refusal.sources import SHARED_DATA, pandalm_responses
from judges.refusal.string_match import xstest_string_match
from judges.refusal.train import (
    FIRST_HEADS,
    TRAINING_PRECISION,
    TWO_STAGE,
    EmbeddingCache,
    Recipe,
)
from judges.refusal.training_data import (
    HH_SOURCE,
    LLMBAR_SOURCE,
    PANDALM_SOURCE,
    TRAINING_DIR,
    XSTEST_MODELS,
    XSTEST_SOURCE,
    Example,
    llmbar_examples,
    load_training_examples,
    read_examples,
)

HELDOUT_JSON: Final = DEFAULT_HEAD_PATH.parent / "heldout.json"
HELDOUT_FORMAT: Final = "tribunal-refusal-heldout/1"
BEFORE_COMMIT: Final = "4cf34e6"
ECE_BINS: Final = 10
Z95: Final = 1.959963984540054


# --- statistics -----------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
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


def expected_calibration_error(
    probability: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Sum over equal-width bins of (share of rows) * |mean probability - observed rate|."""
    probability = np.asarray(probability, dtype=np.float64)
    outcome = np.asarray(outcome, dtype=np.float64)
    if len(probability) == 0:
        return math.nan
    which = np.minimum((probability * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        members = which == k
        if members.any():
            gap = abs(probability[members].mean() - outcome[members].mean())
            total += members.mean() * gap
    return float(total)


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def rate(hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    return f"{pct(hits / n) if n else 'n/a'} ({pct(low)} to {pct(high)})"


# --- rows to score --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    text: str
    label: str  # one of CLASSES (never `unclear`: those are left out)
    source: str  # the training source, or the check set's source

    @property
    def declined(self) -> bool:
        return self.label in REFUSALS


@dataclass
class Unit:
    """Rows scored together, by heads trained without the training sources in `excluded`."""

    name: str
    kind: str  # "model" or "set"
    rows: list[Row]
    excluded: frozenset[str] = frozenset()
    note: str = ""


@dataclass
class Scored:
    rows: list[Row]
    outputs: HeadOutputs
    raw_declined: np.ndarray  # P(declined) before calibration

    @property
    def said(self) -> list[str]:
        return [CLASSES[int(k)] for k in self.outputs.labels]

    @property
    def right(self) -> list[bool]:
        return [
            (label in REFUSALS) == row.declined
            for label, row in zip(self.said, self.rows, strict=True)
        ]


@dataclass
class Data:
    after: list[Example]
    before: list[Example]
    checkset: list[CheckRow]
    sealed: list[CheckRow]
    pandalm: list[str]
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def _rows_of(examples: Sequence[Example], sources: set[str]) -> list[Row]:
    return [Row(e.text, e.label, e.source) for e in examples if e.source in sources]


def _check_rows(rows: Sequence[CheckRow], source: str) -> list[Row]:
    return [
        Row(r.text, r.label, r.source) for r in rows if r.source == source and r.label != UNCLEAR
    ]


def before_examples(data_dir: Path) -> list[Example]:
    """The training data of commit 4cf34e6: XSTest, every reviewed LLMBar output, and the
    first two rounds of hand-written rows."""
    return [
        *read_examples(TRAINING_DIR / "xstest_v2.csv"),
        *llmbar_examples(data_dir / "llmbar", leave_out_checkset=False),
        *read_examples(TRAINING_DIR / "written_for_tribunal.csv"),
    ]


def units(data: Data) -> list[Unit]:
    xstest = {XSTEST_SOURCE.format(model=m) for m in XSTEST_MODELS}
    checked_pandalm = {r.text: r.label for r in data.checkset if r.source == "pandalm"}
    pandalm_rows = [
        Row(text, checked_pandalm.get(text, NORMAL), "pandalm")
        for text in data.pandalm
        if checked_pandalm.get(text, NORMAL) != UNCLEAR
    ]
    found: list[Unit] = [
        Unit(
            f"XSTest {model}",
            "model",
            _rows_of(data.after, {XSTEST_SOURCE.format(model=model)}),
            frozenset({XSTEST_SOURCE.format(model=model)}),
        )
        for model in XSTEST_MODELS
    ]
    found += [
        Unit(
            f"AlpacaEval {model}",
            "model",
            _check_rows(data.checkset, f"alpaca_eval:{model}"),
            note="check set rows; never trained on",
        )
        for model in ALPACA_MODELS
    ]
    found += [
        Unit("XSTest", "set", _rows_of(data.after, xstest), frozenset(xstest)),
        Unit(
            "hh-rlhf",
            "set",
            _rows_of(data.after, {HH_SOURCE}) + _check_rows(data.checkset, "hh-rlhf"),
            frozenset({HH_SOURCE}),
            "261 earlier hand labels + the check set's rows",
        ),
        Unit(
            "LLMBar",
            "set",
            _rows_of(data.after, {LLMBAR_SOURCE}) + _check_rows(data.checkset, "llmbar"),
            frozenset({LLMBAR_SOURCE}),
            "reviewed training labels + the check set's rows",
        ),
        Unit(
            "PandaLM",
            "set",
            pandalm_rows,
            frozenset({PANDALM_SOURCE}),
            "every distinct response; ordinary answers (hand-checked) unless the check set says",
        ),
    ]
    return found


# --- scoring ----------------------------------------------------------------------------------


class Evaluator:
    def __init__(self, data: Data) -> None:
        self.data = data
        self.heads: dict[tuple[str, frozenset[str]], Head] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.data.embeddings[t] for t in texts])

    def head(self, recipe: Recipe, excluded: frozenset[str]) -> Head:
        examples = self.data.before if recipe is FIRST_HEADS else self.data.after
        present = {e.source for e in examples}
        effective = frozenset(excluded & present)
        key = (recipe.name, effective)
        if key not in self.heads:
            rows = np.array([i for i, e in enumerate(examples) if e.source not in effective])
            embeddings = self.embed([e.text for e in examples])
            self.heads[key] = recipe.train(examples, embeddings, rows)
        return self.heads[key]

    def score(self, recipe: Recipe, unit: Unit) -> Scored:
        head = self.head(recipe, unit.excluded)
        texts = [r.text for r in unit.rows]
        x = recipe.inputs(texts, self.embed(texts))
        outputs = head.outputs(x)
        if isinstance(head, TwoStageHead):
            raw = 1.0 / (1.0 + np.exp(-head.declined_logit(x)))
        else:
            raw = outputs.refusal_probability
        return Scored(list(unit.rows), outputs, raw)


# --- tables -----------------------------------------------------------------------------------


def comparison(scored: Scored) -> dict[str, Any]:
    rows = scored.rows
    ours = scored.right
    string = [xstest_string_match(r.text) == r.declined for r in rows]
    b, c, p = mcnemar_exact(ours, string)
    n = len(rows)
    return {
        "n": n,
        "declined": sum(r.declined for r in rows),
        "correct": sum(ours),
        "accuracy": sum(ours) / n if n else math.nan,
        "ci95": list(wilson(sum(ours), n)),
        "string_match_correct": sum(string),
        "string_match_accuracy": sum(string) / n if n else math.nan,
        "string_match_ci95": list(wilson(sum(string), n)),
        "ours_only_right": b,
        "string_match_only_right": c,
        "mcnemar_p": p,
    }


def comparison_table(
    title: str, results: list[tuple[Unit, dict[str, Any], dict[str, Any]]]
) -> list[str]:
    lines = [
        f"#### {title}",
        "",
        "| held out | n (declined) | before: Tribunal | after: Tribunal | string match | "
        "after - string match | after right & SM wrong / SM right & after wrong | "
        "exact McNemar p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for unit, before, after in results:
        gap = 100 * (after["accuracy"] - after["string_match_accuracy"])
        lines.append(
            f"| {unit.name} | {after['n']} ({after['declined']}) | "
            f"{rate(before['correct'], before['n'])} | **{rate(after['correct'], after['n'])}** | "
            f"{rate(after['string_match_correct'], after['n'])} | {gap:+.1f} | "
            f"{after['ours_only_right']} / {after['string_match_only_right']} | "
            f"{after['mcnemar_p']:.2g} |"
        )
    return lines


def confusion(truth: Sequence[str], said: Sequence[str]) -> list[list[int]]:
    return [
        [sum(1 for t, s in zip(truth, said, strict=True) if t == a and s == b) for b in CLASSES]
        for a in CLASSES
    ]


def confusion_lines(matrix: list[list[int]]) -> list[str]:
    lines = [
        "| person \\ classifier | " + " | ".join(CLASSES) + " | recall |",
        "|---|" + "---|" * (len(CLASSES) + 1),
    ]
    for k, name in enumerate(CLASSES):
        row = matrix[k]
        lines.append(
            f"| {name} | " + " | ".join(str(v) for v in row) + f" | {rate(row[k], sum(row))} |"
        )
    return lines


def sens_spec(truth: Sequence[str], said: Sequence[str], target: str) -> dict[str, Any]:
    positives = [s == target for t, s in zip(truth, said, strict=True) if t == target]
    negatives = [s != target for t, s in zip(truth, said, strict=True) if t != target]
    result: dict[str, Any] = {}
    for name, hits in (("sensitivity", positives), ("specificity", negatives)):
        k, n = sum(hits), len(hits)
        result[name] = {
            "hits": k,
            "n": n,
            "value": k / n if n else None,
            "ci95": list(wilson(k, n)) if n else None,
        }
    return result


def separation_lines(truth: Sequence[str], said: Sequence[str]) -> list[str]:
    """Among responses that really refused: ethical vs technical, and missed."""
    lines = [
        "| person \\ classifier | ethical_refusal | technical_refusal | answered (missed) |",
        "|---|---|---|---|",
    ]
    for reason in ("ethical_refusal", "technical_refusal"):
        picked = [s for t, s in zip(truth, said, strict=True) if t == reason]
        counts = [picked.count("ethical_refusal"), picked.count("technical_refusal")]
        lines.append(f"| {reason} | {counts[0]} | {counts[1]} | {len(picked) - sum(counts)} |")
    return lines


def normal_rate(scored: Scored) -> tuple[int, int]:
    pairs = [(r, s) for r, s in zip(scored.rows, scored.said, strict=True) if r.label == NORMAL]
    return sum(1 for _, s in pairs if s == NORMAL), len(pairs)


# --- the command --------------------------------------------------------------------------------


def load_data(data_dir: Path, cache: Path | None) -> Data:
    after = load_training_examples()
    before = before_examples(data_dir)
    checkset = read_checkset(CHECKSET_FILE)
    sealed_all = read_checkset(SEALED_FILE, labelled=False) if SEALED_FILE.is_file() else []
    sealed = sealed_all if sealed_all and all(r.label for r in sealed_all) else []
    pandalm = list(
        dict.fromkeys(t for _, _, t in pandalm_responses(data_dir / "pandalm" / "testset-v1.json"))
    )
    data = Data(after, before, checkset, sealed, pandalm)
    texts = list(
        dict.fromkeys(
            [e.text for e in after]
            + [e.text for e in before]
            + [r.text for r in checkset]
            + [r.text for r in sealed]
            + pandalm
        )
    )
    embedder = get_embedder(precision=TRAINING_PRECISION)
    vectors = EmbeddingCache(cache, embedder.identity.weights_sha256).embed(texts, embedder)
    data.embeddings = dict(zip(texts, vectors, strict=True))
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz)")
    parser.add_argument("--json", type=Path, default=HELDOUT_JSON, help="where to write")
    parser.add_argument("--head", type=Path, default=DEFAULT_HEAD_PATH, help="the shipped head")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = load_data(args.data_dir, args.cache)
    evaluator = Evaluator(data)
    stored = args.head.read_bytes()
    _check_stored_head(evaluator, args.head)
    out: list[str] = [
        "Command: `python -m judges.refusal.evaluate`",
        "",
        f"Training rows: after {len(data.after)}, before {len(data.before)} (commit "
        f"{BEFORE_COMMIT}). Check set: {len(data.checkset)} rows "
        f"({sum(r.label == UNCLEAR for r in data.checkset)} `unclear`). Sealed set: "
        + (f"{len(data.sealed)} rows." if data.sealed else "not labelled yet, not scored."),
        "",
    ]

    # Binary: did it decline? Leave one model out, leave one set out.
    results: dict[str, list[tuple[Unit, dict[str, Any], dict[str, Any]]]] = {"model": [], "set": []}
    scored_after: dict[str, Scored] = {}
    scored_before: dict[str, Scored] = {}
    for unit in units(data):
        scored_before[unit.name] = evaluator.score(FIRST_HEADS, unit)
        scored_after[unit.name] = evaluator.score(TWO_STAGE, unit)
        results[unit.kind].append(
            (unit, comparison(scored_before[unit.name]), comparison(scored_after[unit.name]))
        )
    out += ["### Did it decline? Held-out models and sets, beside string matching", ""]
    out += comparison_table("Leave one model out", results["model"])
    out += [""]
    out += comparison_table("Leave one set out", results["set"])
    worst_after = min(results["model"], key=lambda r: r[2]["accuracy"])
    worst_before = min(results["model"], key=lambda r: r[1]["accuracy"])
    narrowest = min(
        results["model"], key=lambda r: r[2]["accuracy"] - r[2]["string_match_accuracy"]
    )
    out += [
        "",
        f"Worst held-out model, after: {worst_after[0].name}, "
        f"{rate(worst_after[2]['correct'], worst_after[2]['n'])} "
        f"(string match {pct(worst_after[2]['string_match_accuracy'])}); before: "
        f"{worst_before[0].name}, {rate(worst_before[1]['correct'], worst_before[1]['n'])}. "
        f"Narrowest margin over string match, after: {narrowest[0].name}, "
        f"{100 * (narrowest[2]['accuracy'] - narrowest[2]['string_match_accuracy']):+.1f} points.",
    ]

    # Ordinary answers called normal (held out).
    out += ["", "### Ordinary answers called `normal` (held out)", ""]
    out += ["| set | before | after |", "|---|---|---|"]
    for name in ("PandaLM", "LLMBar"):
        b_hits, b_n = normal_rate(scored_before[name])
        a_hits, a_n = normal_rate(scored_after[name])
        out.append(f"| {name} | {rate(b_hits, b_n)} | **{rate(a_hits, a_n)}** |")

    # The check set: five classes.
    check_rows = [r for r in data.checkset if r.label != UNCLEAR]
    check_unit = Unit("check set", "set", [Row(r.text, r.label, r.source) for r in check_rows])
    check_after = evaluator.score(TWO_STAGE, check_unit)
    check_before = evaluator.score(FIRST_HEADS, check_unit)
    truth = [r.label for r in check_rows]
    matrix_after = confusion(truth, check_after.said)
    out += [
        "",
        f"### The check set: five classes ({len(check_rows)} rows scored, "
        f"{len(data.checkset) - len(check_rows)} `unclear` left out)",
        "",
        "After:",
        "",
        *confusion_lines(matrix_after),
        "",
        "Before:",
        "",
        *confusion_lines(confusion(truth, check_before.said)),
        "",
        "Ethical vs technical among the responses that refused (after; before):",
        "",
        *separation_lines(truth, check_after.said),
        "",
        *separation_lines(truth, check_before.said),
    ]
    five_after = sum(t == s for t, s in zip(truth, check_after.said, strict=True))
    five_before = sum(t == s for t, s in zip(truth, check_before.said, strict=True))
    out += [
        "",
        f"Five classes agree: before {rate(five_before, len(truth))}, after "
        f"{rate(five_after, len(truth))}.",
    ]
    er = sens_spec(truth, check_after.said, "ethical_refusal")

    # Sealed set.
    if data.sealed:
        sealed_rows = [r for r in data.sealed if r.label != UNCLEAR]
        sealed_unit = Unit(
            "sealed set", "set", [Row(r.text, r.label, r.source) for r in sealed_rows]
        )
        sealed_after = evaluator.score(TWO_STAGE, sealed_unit)
        sealed_before = evaluator.score(FIRST_HEADS, sealed_unit)
        sealed_truth = [r.label for r in sealed_rows]
        per_source = [
            (
                Unit(source, "set", [r for r in sealed_unit.rows if r.source == source]),
                comparison(_subset(sealed_before, source)),
                comparison(_subset(sealed_after, source)),
            )
            for source in sorted({r.source for r in sealed_unit.rows})
        ]
        out += ["", "### The sealed set (labelled after the head was frozen)", ""]
        out += comparison_table(
            "Did it decline?",
            [(sealed_unit, comparison(sealed_before), comparison(sealed_after)), *per_source],
        )
        out += ["", *confusion_lines(confusion(sealed_truth, sealed_after.said))]

    # Calibration of P(declined) on every held-out row.
    held_out = [scored_after[u.name] for u in units(data)]
    probability = np.concatenate([s.outputs.refusal_probability for s in held_out])
    raw = np.concatenate([s.raw_declined for s in held_out])
    outcome = np.concatenate([[r.declined for r in s.rows] for s in held_out])
    before_probability = np.concatenate(
        [scored_before[u.name].outputs.refusal_probability for u in units(data)]
    )
    out += [
        "",
        "### Calibration of P(declined), expected calibration error (10 equal bins)",
        "",
        "| held out | n | before (sum of the two refusal classes) | after, stage 1 before "
        "calibration | after, `refusal_probability` |",
        "|---|---|---|---|---|",
    ]
    per_unit: list[list[float]] = []
    for unit in units(data):
        a = scored_after[unit.name]
        b = scored_before[unit.name]
        y = np.array([r.declined for r in a.rows])
        eces = [
            expected_calibration_error(b.outputs.refusal_probability, y),
            expected_calibration_error(a.raw_declined, y),
            expected_calibration_error(a.outputs.refusal_probability, y),
        ]
        per_unit.append(eces)
        out.append(f"| {unit.name} | {len(y)} | " + " | ".join(f"{e:.3f}" for e in eces) + " |")
    means = np.mean(np.array(per_unit), axis=0)
    ece = {
        "mean_over_held_out_units": {
            "before": float(means[0]),
            "after_before_calibration": float(means[1]),
            "after": float(means[2]),
        },
        "all_held_out_rows_pooled": {
            "before": expected_calibration_error(before_probability, outcome),
            "after_before_calibration": expected_calibration_error(raw, outcome),
            "after": expected_calibration_error(probability, outcome),
        },
    }
    out.append(
        f"| mean of the {len(per_unit)} rows above | | "
        + " | ".join(f"{v:.3f}" for v in means)
        + " |"
    )
    pooled = ece["all_held_out_rows_pooled"]
    out.append(
        f"| all held-out rows pooled | {len(outcome)} | {pooled['before']:.3f} | "
        f"{pooled['after_before_calibration']:.3f} | {pooled['after']:.3f} |"
    )

    # Uncertain.
    uncertain = np.concatenate([s.outputs.uncertain for s in held_out])
    right = np.concatenate([s.right for s in held_out])
    out += [
        "",
        "### `uncertain` (after, every held-out row)",
        "",
        f"{int(uncertain.sum())} of {len(uncertain)} held-out rows are `uncertain` "
        f"({pct(float(uncertain.mean()))} %). Declined-or-not accuracy: uncertain rows "
        f"{rate(int(right[uncertain].sum()), int(uncertain.sum()))}, the others "
        f"{rate(int(right[~uncertain].sum()), int((~uncertain).sum()))}.",
    ]
    out += ["", f"(evaluation took {time.perf_counter() - started:.0f} s)"]
    print("\n".join(out))

    document = {
        "format": HELDOUT_FORMAT,
        "command": "python -m judges.refusal.evaluate",
        "head_sha256": hashlib.sha256(stored).hexdigest(),
        "classifier": "two-stage head over all-MiniLM-L6-v2 embeddings and cues version 3",
        "declined_or_not": {
            "worst_held_out_model": {"unit": worst_after[0].name, **worst_after[2]},
            "held_out_models": [{"unit": u.name, **after} for u, _, after in results["model"]],
            "held_out_sets": [{"unit": u.name, **after} for u, _, after in results["set"]],
        },
        "checkset": {
            "file": str(CHECKSET_FILE.relative_to(TRAINING_DIR.parents[2])),
            "n": len(check_rows),
            "unclear_left_out": len(data.checkset) - len(check_rows),
            "classes": list(CLASSES),
            "confusion": matrix_after,
            "confusion_rows": "people's label",
            "confusion_columns": "classifier's label",
        },
        "ethical_refusal_vs_rest": {"source": "check set", **er},
        "calibration": {"bins": ECE_BINS, "rows": len(outcome), "ece": ece},
        "uncertain": {
            "rows": len(uncertain),
            "uncertain": int(uncertain.sum()),
            "accuracy_uncertain": float(right[uncertain].mean()) if uncertain.any() else None,
            "accuracy_certain": float(right[~uncertain].mean()),
        },
    }
    args.json.write_text(json.dumps(_rounded(document), indent=1, sort_keys=True) + "\n")
    return 0


def _check_stored_head(evaluator: Evaluator, path: Path) -> None:
    """The figures for data never trained on come from the two-stage recipe trained on all
    training rows: that must be the stored head, or the JSON would describe another one."""
    retrained = evaluator.head(TWO_STAGE, frozenset())
    stored, _ = load_head(path, expected_classes=CLASSES)
    texts = [e.text for e in evaluator.data.after]
    x = TWO_STAGE.inputs(texts, evaluator.embed(texts))
    new, old = retrained.outputs(x), stored.outputs(x)
    if not isinstance(stored, TwoStageHead) or not np.array_equal(new.labels, old.labels):
        raise SystemExit(
            f"{path} is not the head the training data give: run python -m judges.refusal.train"
        )
    if float(np.abs(new.probabilities - old.probabilities).max()) > 1e-6:
        raise SystemExit(
            f"{path} differs from a retrained head: run python -m judges.refusal.train"
        )


def _subset(scored: Scored, source: str) -> Scored:
    keep = [i for i, r in enumerate(scored.rows) if r.source == source]
    outputs = scored.outputs
    return Scored(
        [scored.rows[i] for i in keep],
        HeadOutputs(
            outputs.probabilities[keep],
            outputs.refusal_probability[keep],
            outputs.labels[keep],
            outputs.uncertain[keep],
        ),
        scored.raw_declined[keep],
    )


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
