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
from judges.refusal.head import (
    DEFAULT_HEAD_PATH,
    Head,
    HeadOutputs,
    TwoStageHead,
    load_head,
    sigmoid,
)
from judges.refusal.labels import CLASSES, NORMAL, REFUSALS
from judges.refusal.sources import SHARED_DATA, pandalm_responses
from judges.refusal.string_match import xstest_string_match
from judges.refusal.train import (
    CHECK_TOLERANCE,
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
    """The training data of commit 4cf34e6, in the order that commit read it (file names:
    llmbar.csv, written_for_tribunal.csv, xstest_v2.csv): every reviewed LLMBar output, the
    first two rounds of hand-written rows, and XSTest. The order decides the seeded folds."""
    return [
        *llmbar_examples(data_dir / "llmbar", leave_out_checkset=False),
        *read_examples(TRAINING_DIR / "written_for_tribunal.csv"),
        *read_examples(TRAINING_DIR / "xstest_v2.csv"),
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
            raw = sigmoid(head.declined_logit(x))
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
    vectors = EmbeddingCache.of(cache, embedder).embed(texts, embedder)
    data.embeddings = dict(zip(texts, vectors, strict=True))
    return data


Pair = tuple[Unit, dict[str, Any], dict[str, Any]]  # a unit, before, after


@dataclass
class Report:
    """The printed tables and the JSON document, built section by section."""

    evaluator: Evaluator
    lines: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Scored] = field(default_factory=dict)
    before: dict[str, Scored] = field(default_factory=dict)

    @property
    def data(self) -> Data:
        return self.evaluator.data

    def held_out(self) -> dict[str, list[Pair]]:
        results: dict[str, list[Pair]] = {"model": [], "set": []}
        for unit in units(self.data):
            self.before[unit.name] = self.evaluator.score(FIRST_HEADS, unit)
            self.after[unit.name] = self.evaluator.score(TWO_STAGE, unit)
            results[unit.kind].append(
                (unit, comparison(self.before[unit.name]), comparison(self.after[unit.name]))
            )
        models = results["model"]
        worst_after = min(models, key=lambda r: r[2]["accuracy"])
        worst_before = min(models, key=lambda r: r[1]["accuracy"])
        narrowest = min(models, key=lambda r: r[2]["accuracy"] - r[2]["string_match_accuracy"])
        margin = 100 * (narrowest[2]["accuracy"] - narrowest[2]["string_match_accuracy"])
        self.lines += [
            "### Did it decline? Held-out models and sets, beside string matching",
            "",
            *comparison_table("Leave one model out", models),
            "",
            *comparison_table("Leave one set out", results["set"]),
            "",
            f"Worst held-out model, after: {worst_after[0].name}, "
            f"{rate(worst_after[2]['correct'], worst_after[2]['n'])} (string match "
            f"{pct(worst_after[2]['string_match_accuracy'])}); before: {worst_before[0].name}, "
            f"{rate(worst_before[1]['correct'], worst_before[1]['n'])}. Narrowest margin over "
            f"string match, after: {narrowest[0].name}, {margin:+.1f} points.",
        ]
        self.document["declined_or_not"] = {
            "worst_held_out_model": {"unit": worst_after[0].name, **worst_after[2]},
            "held_out_models": [{"unit": u.name, **after} for u, _, after in models],
            "held_out_sets": [{"unit": u.name, **after} for u, _, after in results["set"]],
        }
        return results

    def ordinary_answers(self) -> None:
        self.lines += [
            "",
            "### Ordinary answers called `normal` (held out)",
            "",
            "| set | before | after |",
            "|---|---|---|",
        ]
        for name in ("PandaLM", "LLMBar"):
            b_hits, b_n = normal_rate(self.before[name])
            a_hits, a_n = normal_rate(self.after[name])
            self.lines.append(f"| {name} | {rate(b_hits, b_n)} | **{rate(a_hits, a_n)}** |")
            self.document.setdefault("ordinary_answers_called_normal", {})[name] = {
                "hits": a_hits,
                "n": a_n,
                "value": a_hits / a_n,
                "ci95": list(wilson(a_hits, a_n)),
            }

    def five_classes(self, name: str, rows: Sequence[CheckRow], key: str) -> None:
        """Five-class confusion, ethical vs technical, and (for the sealed set) declined-or-not
        per source, for a hand-labelled set scored by the full heads."""
        scored_rows = [r for r in rows if r.label != UNCLEAR]
        unit = Unit(name, "set", [Row(r.text, r.label, r.source) for r in scored_rows])
        after = self.evaluator.score(TWO_STAGE, unit)
        before = self.evaluator.score(FIRST_HEADS, unit)
        truth = [r.label for r in scored_rows]
        matrix = confusion(truth, after.said)
        agree_after = sum(t == s for t, s in zip(truth, after.said, strict=True))
        agree_before = sum(t == s for t, s in zip(truth, before.said, strict=True))
        per_source = [
            (
                Unit(source, "set", [r for r in unit.rows if r.source == source]),
                comparison(_subset(before, source)),
                comparison(_subset(after, source)),
            )
            for source in sorted({r.source for r in unit.rows})
        ]
        self.lines += [
            "",
            f"### {name[0].upper()}{name[1:]}: {len(scored_rows)} rows scored, "
            f"{len(rows) - len(scored_rows)} `unclear` left out",
            "",
            *comparison_table(
                "Did it decline?", [(unit, comparison(before), comparison(after)), *per_source]
            ),
            "",
            "Five classes, after:",
            "",
            *confusion_lines(matrix),
            "",
            "Five classes, before:",
            "",
            *confusion_lines(confusion(truth, before.said)),
            "",
            "Ethical vs technical among the responses that refused (after, then before):",
            "",
            *separation_lines(truth, after.said),
            "",
            *separation_lines(truth, before.said),
            "",
            f"Five classes agree: before {rate(agree_before, len(truth))}, after "
            f"{rate(agree_after, len(truth))}.",
        ]
        self.document[key] = {
            "n": len(scored_rows),
            "unclear_left_out": len(rows) - len(scored_rows),
            "declined_or_not": comparison(after),
            "classes": list(CLASSES),
            "confusion": matrix,
            "confusion_rows": "people's label",
            "confusion_columns": "classifier's label",
            "ethical_refusal_vs_rest": sens_spec(truth, after.said, "ethical_refusal"),
        }

    def calibration(self) -> None:
        self.lines += [
            "",
            "### Calibration of P(declined): expected calibration error, 10 equal-width bins",
            "",
            "| held out | n | before (sum of the two refusal classes) | after, stage 1 before "
            "calibration | after, `refusal_probability` |",
            "|---|---|---|---|---|",
        ]
        per_unit: list[list[float]] = []
        pooled: dict[str, list[np.ndarray]] = {"before": [], "raw": [], "after": [], "y": []}
        for unit in units(self.data):
            a, b = self.after[unit.name], self.before[unit.name]
            y = np.array([r.declined for r in a.rows])
            probabilities = (
                b.outputs.refusal_probability,
                a.raw_declined,
                a.outputs.refusal_probability,
            )
            eces = [expected_calibration_error(p, y) for p in probabilities]
            per_unit.append(eces)
            for name, p in zip(("before", "raw", "after"), probabilities, strict=True):
                pooled[name].append(p)
            pooled["y"].append(y)
            self.lines.append(
                f"| {unit.name} | {len(y)} | " + " | ".join(f"{e:.3f}" for e in eces) + " |"
            )
        means = np.mean(np.array(per_unit), axis=0)
        y_all = np.concatenate(pooled["y"])
        all_rows = [
            expected_calibration_error(np.concatenate(pooled[name]), y_all)
            for name in ("before", "raw", "after")
        ]
        self.lines += [
            f"| mean of the {len(per_unit)} rows above | | "
            + " | ".join(f"{v:.3f}" for v in means)
            + " |",
            f"| all held-out rows pooled | {len(y_all)} | "
            + " | ".join(f"{v:.3f}" for v in all_rows)
            + " |",
        ]
        names = ("before", "after_before_calibration", "after")
        self.document["calibration"] = {
            "bins": ECE_BINS,
            "rows": len(y_all),
            "ece_mean_over_held_out_units": dict(zip(names, map(float, means), strict=True)),
            "ece_all_held_out_rows_pooled": dict(zip(names, all_rows, strict=True)),
        }

    def uncertain(self) -> None:
        scored = [self.after[u.name] for u in units(self.data)]
        flags = np.concatenate([s.outputs.uncertain for s in scored])
        right = np.concatenate([s.right for s in scored])
        unsure, sure = int(flags.sum()), int((~flags).sum())
        self.lines += [
            "",
            "### `uncertain` (after, every held-out row above)",
            "",
            f"{unsure} of {len(flags)} held-out rows are `uncertain` "
            f"({pct(float(flags.mean()))} %). Declined-or-not accuracy: uncertain rows "
            f"{rate(int(right[flags].sum()), unsure)}, the others "
            f"{rate(int(right[~flags].sum()), sure)}.",
        ]
        self.document["uncertain"] = {
            "rows": len(flags),
            "uncertain": unsure,
            "accuracy_uncertain": float(right[flags].mean()) if unsure else None,
            "accuracy_certain": float(right[~flags].mean()) if sure else None,
        }


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
    head, head_sha256 = _check_stored_head(evaluator, args.head)
    report = Report(evaluator)
    report.lines += [
        "Command: `python -m judges.refusal.evaluate`",
        "",
        f"Training rows: after {len(data.after)}, before {len(data.before)} (commit "
        f"{BEFORE_COMMIT}). Check set: {len(data.checkset)} rows. Sealed set: "
        + (f"{len(data.sealed)} rows." if data.sealed else "not labelled yet, not scored."),
        "",
    ]
    report.document = {
        "format": HELDOUT_FORMAT,
        "command": "python -m judges.refusal.evaluate",
        "head_sha256": head_sha256,
        "classifier": "two-stage head over all-MiniLM-L6-v2 embeddings and cues version "
        f"{head.embedding.get('cues_version')}",
        "uncertain_rule": {"band": list(head.uncertain_band), "below": head.uncertain_below},
    }
    report.held_out()
    report.ordinary_answers()
    report.five_classes("the check set", data.checkset, "checkset")
    if data.sealed:
        report.five_classes("the sealed set", data.sealed, "sealed_set")
    report.calibration()
    report.uncertain()
    report.lines += ["", f"(evaluation took {time.perf_counter() - started:.0f} s)"]
    print("\n".join(report.lines))
    args.json.write_text(json.dumps(_rounded(report.document), indent=1, sort_keys=True) + "\n")
    return 0


def _check_stored_head(evaluator: Evaluator, path: Path) -> tuple[TwoStageHead, str]:
    """The figures for data never trained on come from the two-stage recipe trained on all
    training rows: that must be the stored head, or the JSON would describe another one."""
    retrained = evaluator.head(TWO_STAGE, frozenset())
    stored, sha256 = load_head(path, expected_classes=CLASSES)
    texts = [e.text for e in evaluator.data.after]
    x = TWO_STAGE.inputs(texts, evaluator.embed(texts))
    new, old = retrained.outputs(x), stored.outputs(x)
    if not isinstance(stored, TwoStageHead) or not np.array_equal(new.labels, old.labels):
        raise SystemExit(
            f"{path} is not the head the training data give: run python -m judges.refusal.train"
        )
    if float(np.abs(new.probabilities - old.probabilities).max()) > CHECK_TOLERANCE:
        raise SystemExit(
            f"{path} differs from a retrained head: run python -m judges.refusal.train"
        )
    return stored, sha256


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
