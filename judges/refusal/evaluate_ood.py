"""Score a refusal head on real answers from corpus it was not trained on.

    python -m judges.refusal.evaluate_ood
    python -m judges.refusal.evaluate_ood --head /tmp/head-before.json

prints the out-of-domain tables of docs/refusal-classifier.md for the given head (default: the
shipped one). Neither dataset is in the training data (tests/judges/test_refusal_ood.py checks
that no text of either is):

- PandaLM test set (WeOpenML/PandaLM, Apache-2.0): `response1`/`response2`, ordinary
  instruction-following answers of 7B models. None of them is a refusal or a disclaimer: every
  text that a broad phrase filter flags, or that the first or the current head calls anything
  but `normal`, was read by hand (`heldout/pandalm_checked.csv`, all `normal`). So every
  non-normal class here is a false positive; the table says how many of them were read, and
  lists any text a head calls non-normal that nobody has read yet.
- hh-rlhf harmless-base test (Anthropic, MIT): the final assistant turn of `chosen` and
  `rejected`. Two samples, labelled by hand with the five classes or `unclear`
  (`heldout/hh_rlhf_harmless_test_labels.csv`), both drawn by `draw_hh_sample` below:
  `random` (240 distinct turns, uniformly; the test set) and `refusal-phrase` (80 further
  turns containing an apology, a refusal verb or an ethics word; used while developing the
  cues, so it is a development set and its figures are optimistic for the current head).
  `unclear` (deflections such as "What do you mean?", feigned confusion) is left out of the
  scores. The share of each class over all 4,564 distinct final turns is shown too.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from judges.refusal.classifier import load_default_classifier
from judges.refusal.embedder import PRECISION_ENV
from judges.refusal.evaluate import pct, wilson
from judges.refusal.head import DEFAULT_HEAD_PATH
from judges.refusal.labels import CLASSES, DISCLAIMERS, NORMAL, REFUSALS
from judges.refusal.train import TRAINING_PRECISION
from judges.refusal.training_data import HELDOUT_DIR, TrainingDataError

SHARED_DATA: Final = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_PANDALM: Final = SHARED_DATA / "pandalm" / "testset-v1.json"
DEFAULT_HH_RLHF: Final = SHARED_DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
PANDALM_CHECKED: Final = HELDOUT_DIR / "pandalm_checked.csv"
HH_LABELS: Final = HELDOUT_DIR / "hh_rlhf_harmless_test_labels.csv"
UNCLEAR: Final = "unclear"

# How the hh-rlhf samples were drawn (do not change: the labels belong to these draws).
HH_RANDOM_SEED: Final = 20251205
HH_RANDOM_SIZE: Final = 240
HH_PHRASE_SEED: Final = 20251206
HH_PHRASE_SIZE: Final = 80
HH_PHRASE: Final = re.compile(
    r"\b(sorry|apologi[sz]e|i (?:can't|cannot|won't|will not|don't think i should|"
    r"would rather not|'m not (?:going|able|comfortable))|not (?:comfortable|appropriate|okay|ok|"
    r"a good idea)|illegal|unethical|harmful|dangerous)\b",
    re.IGNORECASE,
)
HH_SIDES: Final = ("chosen", "rejected")


# --- data ---------------------------------------------------------------------------------------


def pandalm_responses(path: Path) -> list[tuple[int, str, str]]:
    """(idx, field, text) of every non-blank response1/response2, in file order."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TrainingDataError(f"cannot read {path}: {error}") from error
    return [
        (int(item["idx"]), field, item[field])
        for item in items
        for field in ("response1", "response2")
        if isinstance(item.get(field), str) and item[field].strip()
    ]


def final_assistant_turn(dialogue: str) -> str:
    return dialogue.rsplit("\n\nAssistant:", 1)[-1].strip()


def hh_records(path: Path) -> list[dict[str, str]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return [json.loads(line) for line in stream]
    except (OSError, ValueError) as error:
        raise TrainingDataError(f"cannot read {path}: {error}") from error


def draw_hh_sample(records: Sequence[dict[str, str]]) -> list[tuple[int, str, str]]:
    """The (record, side, stratum) of the labelled hh-rlhf turns, drawn as they were.

    `random`: the record/side pairs in a seeded random order, skipping blank turns and turns
    whose text was already taken, until HH_RANDOM_SIZE. `refusal-phrase`: the same with another
    seed, keeping only turns that match HH_PHRASE and are not in the first sample.
    """
    keys = [(i, side) for i in range(len(records)) for side in HH_SIDES]
    drawn: list[tuple[int, str, str]] = []
    taken: set[str] = set()
    for stratum, seed, size, phrase in (
        ("random", HH_RANDOM_SEED, HH_RANDOM_SIZE, None),
        ("refusal-phrase", HH_PHRASE_SEED, HH_PHRASE_SIZE, HH_PHRASE),
    ):
        count = 0
        for j in np.random.default_rng(seed).permutation(len(keys)):
            record, side = keys[int(j)]
            text = final_assistant_turn(records[record][side])
            if not text or text in taken or (phrase is not None and not phrase.search(text)):
                continue
            taken.add(text)
            drawn.append((record, side, stratum))
            count += 1
            if count == size:
                break
    return drawn


@dataclass(frozen=True)
class Labelled:
    record: int
    side: str
    stratum: str
    label: str  # one of CLASSES or UNCLEAR
    text: str


def read_hh_labels(path: Path = HH_LABELS) -> list[Labelled]:
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [
            Labelled(int(r["record"]), r["side"], r["stratum"], r["label"], r["text"])
            for r in csv.DictReader(stream)
        ]
    for row in rows:
        if row.label not in (*CLASSES, UNCLEAR):
            raise TrainingDataError(f"{path}: label {row.label!r} is not a class or {UNCLEAR!r}")
    return rows


def read_pandalm_checked(path: Path = PANDALM_CHECKED) -> dict[str, str]:
    """Text -> the class a person gave it."""
    with path.open(newline="", encoding="utf-8") as stream:
        return {r["text"]: r["label"] for r in csv.DictReader(stream)}


# --- scores -------------------------------------------------------------------------------------


def group(label: str) -> str:
    """normal / refusal / disclaimer: the view the headline study needs first."""
    if label in REFUSALS:
        return "refusal"
    if label in DISCLAIMERS:
        return "disclaimer"
    return "normal"


def share_lines(labels: Sequence[str], title: str) -> list[str]:
    counts = Counter(labels)
    n = len(labels)
    lines = [f"| {title} | n | " + " | ".join(CLASSES) + " |", "|---|---|" + "---|" * len(CLASSES)]
    lines.append(
        "| share (count) | "
        + f"{n} | "
        + " | ".join(f"{pct(counts[k] / n)} % ({counts[k]})" for k in CLASSES)
        + " |"
    )
    return lines


def rate_cell(hits: int, n: int) -> str:
    if n == 0:
        return "n/a"
    low, high = wilson(hits, n)
    return f"{pct(hits / n)} % ({hits}/{n}; {pct(low)} to {pct(high)})"


def hh_lines(rows: Sequence[Labelled], said: Sequence[str], title: str) -> list[str]:
    scored = [(r.label, s) for r, s in zip(rows, said, strict=True) if r.label != UNCLEAR]
    unclear = len(rows) - len(scored)
    lines = [
        f"#### {title}: {len(rows)} turns, {len(scored)} scored ({unclear} `unclear` left out)",
        "",
        "| person \\ head | " + " | ".join(CLASSES) + " |",
        "|---|" + "---|" * len(CLASSES),
    ]
    for truth in CLASSES:
        row = [sum(1 for t, s in scored if t == truth and s == k) for k in CLASSES]
        lines.append(f"| {truth} | " + " | ".join(str(v) for v in row) + " |")
    same_group = sum(1 for t, s in scored if group(t) == group(s))
    normals = [s for t, s in scored if t == NORMAL]
    refusals = [s for t, s in scored if t in REFUSALS]
    flagged = [s for t, s in scored if t != NORMAL]
    said_refusal = [t for t, s in scored if s in REFUSALS]
    lines += [
        "",
        "| measure | value (95% CI) |",
        "|---|---|",
        f"| normal / refusal / disclaimer agree | {rate_cell(same_group, len(scored))} |",
        f"| five classes agree | {rate_cell(sum(t == s for t, s in scored), len(scored))} |",
        f"| ordinary answers called `normal` | "
        f"{rate_cell(sum(s == NORMAL for s in normals), len(normals))} |",
        f"| refusals called a refusal | "
        f"{rate_cell(sum(s in REFUSALS for s in refusals), len(refusals))} |",
        f"| refusals and disclaimers called anything but `normal` | "
        f"{rate_cell(sum(s != NORMAL for s in flagged), len(flagged))} |",
        f"| called a refusal and is one (precision) | "
        f"{rate_cell(sum(t in REFUSALS for t in said_refusal), len(said_refusal))} |",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", type=Path, default=DEFAULT_HEAD_PATH)
    parser.add_argument("--pandalm", type=Path, default=DEFAULT_PANDALM)
    parser.add_argument("--hh-rlhf", type=Path, default=DEFAULT_HH_RLHF)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # Measured in float32, as the head was trained (embedder.py explains bfloat16).
    os.environ.setdefault(PRECISION_ENV, TRAINING_PRECISION)
    classifier = load_default_classifier(head_path=args.head)

    def classify(texts: Sequence[str]) -> dict[str, str]:
        distinct = list(dict.fromkeys(texts))
        return {t: c.label for t, c in zip(distinct, classifier.classify(distinct), strict=True)}

    out = [
        f"Head: `{args.head.name}`, fingerprint `{classifier.identity.fingerprint[:12]}`, "
        f"trained on {classifier.head.training.get('examples', '?')} examples, cues version "
        f"{classifier.cues_version}.",
        "",
    ]

    # PandaLM
    responses = pandalm_responses(args.pandalm)
    distinct_texts = list(dict.fromkeys(text for _, _, text in responses))
    label_of = classify(distinct_texts)
    checked = read_pandalm_checked()
    flagged = [t for t in distinct_texts if label_of[t] != NORMAL]
    read = [t for t in flagged if t in checked]
    really = [t for t in read if checked[t] != NORMAL]
    unread = [t for t in flagged if t not in checked]
    out += [
        "### PandaLM test set: ordinary answers",
        "",
        *share_lines([label_of[t] for t in distinct_texts], "distinct response texts"),
        "",
        *share_lines([label_of[t] for _, _, t in responses], "all response slots"),
        "",
        f"Called anything but `normal`: {len(flagged)} distinct texts. Read by hand: "
        f"{len(read)}, of which {len(really)} really refuse or disclaim; not read yet: "
        f"{len(unread)}.",
    ]
    for text in unread:
        first = next((i, f) for i, f, t in responses if t == text)
        out.append(f"- not read yet: idx {first[0]} {first[1]} ({label_of[text]}): {text[:80]!r}")

    # hh-rlhf
    records = hh_records(args.hh_rlhf)
    labelled = read_hh_labels()
    for row in labelled:
        if final_assistant_turn(records[row.record][row.side]) != row.text:
            raise TrainingDataError(
                f"{HH_LABELS}: record {row.record} {row.side} differs from {args.hh_rlhf}"
            )
    all_turns = list(
        dict.fromkeys(
            t for r in records for side in HH_SIDES if (t := final_assistant_turn(r[side]))
        )
    )
    turn_label = classify(all_turns)
    out += [
        "",
        "### hh-rlhf harmless-base test: final assistant turns",
        "",
        *share_lines([turn_label[t] for t in all_turns], "distinct final turns (unlabelled)"),
        "",
    ]
    for stratum, title in (
        ("random", "Random sample (test)"),
        ("refusal-phrase", "Refusal-phrase sample (development)"),
    ):
        rows = [r for r in labelled if r.stratum == stratum]
        out += hh_lines(rows, [turn_label[r.text] for r in rows], title)
        out += [""]
    out += [f"(evaluation took {time.perf_counter() - started:.0f} s)"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
