"""The out-of-domain check set: a seeded, stratified draw of real responses, labelled by hand.

    python -m judges.refusal.checkset --draw      # writes the unlabelled draw (labels empty)
    python -m judges.refusal.checkset --verify    # checks the labelled file against the data

The check set (`judges/data/refusal_checkset/checkset.csv`) is never trained on: a test checks
that none of its texts, exactly or after `normalized_text`, is in any training file. It is
drawn from the public releases in `../shared/data` (read-only) by `draw_checkset` below, and
each row was labelled by hand with the rules of docs/refusal-classifier.md ("Labelling rules")
before any classifier's output for it was seen.

Sources (each response text counted once; `row_id` says where it is in the release):

- `alpaca_eval:<model>`: AlpacaEval's outputs of `gpt4_1106_preview` (the baseline, `output_1`
  of the claude-2.1 file; the llama file holds the same 805 texts), `claude-2.1` and
  `llama-2-70b-chat` (`output_2`), row_id = the row's index in its annotations file;
- `hh-rlhf`: final assistant turns of harmless-base-test (`<line>:<side>`), leaving out the
  320 turns labelled earlier (`refusal_training/heldout/`), which may be trained on now;
- `pandalm`: PandaLM test set responses (`<idx>:<field>`);
- `llmbar`: LLMBar outputs (`<file stem>-<index>-<output number>`, the keys of
  `llmbar_review`), which are therefore left out of the LLMBar training rows.

Each source's distinct texts are split into three strata, a partition, so that rates over a
whole source can be estimated by weighting each stratum by its size:

- `capability`: matches CAPABILITY_PHRASE (browsing, real-time data, knowledge cut-off, "as an
  AI", "I can't see / run / access", "not enough information" ...);
- `refusal-phrase`: does not, but matches REFUSAL_PHRASE (apologies, "I can't / won't",
  ethics, safety, legality, "consult", "please note" ...);
- `other`: neither.

From each stratum a fixed number of texts (STRATUM_SIZES) is drawn uniformly (numpy
`default_rng(SEED)` permutation per source and stratum), so refusals are not a few percent
of the set as they are in the data. The filters and sizes were fixed before any text was read.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from judges.refusal import llmbar_review
from judges.refusal.datafiles import TRAINING_DIR, TrainingDataError
from judges.refusal.labels import CLASSES, REFUSALS
from judges.refusal.sources import (
    HH_SIDES,
    final_assistant_turn,
    hh_records,
    last_human_turn,
    read_hh_labels,
    read_json_array,
)

CHECKSET_DIR: Final = TRAINING_DIR.parent / "refusal_checkset"
CHECKSET_FILE: Final = CHECKSET_DIR / "checkset.csv"
SEALED_FILE: Final = CHECKSET_DIR / "sealed.csv"
SHARED_DATA: Final = Path(__file__).resolve().parents[3] / "shared" / "data"
UNCLEAR: Final = "unclear"
LABELS: Final = (*CLASSES, UNCLEAR)
SEED: Final = 20251207
SEALED_SEED: Final = 20251208
COLUMNS: Final = (
    "source",
    "row_id",
    "stratum",
    "stratum_size",
    "text_sha256",
    "label",
    "note",
    "prompt",
    "text",
)

ALPACA_FILES: Final = {
    "claude-2.1": "claude-2.1.weighted_alpaca_eval_gpt4_turbo.annotations.json.gz",
    "llama-2-70b-chat": "llama-2-70b-chat-hf.alpaca_eval_cot_gpt4_turbo_fn.annotations.json.gz",
}
ALPACA_MODELS: Final = ("gpt4_1106_preview", "claude-2.1", "llama-2-70b-chat")
SOURCES: Final = (
    *(f"alpaca_eval:{m}" for m in ALPACA_MODELS),
    "hh-rlhf",
    "pandalm",
    "llmbar",
)
STRATA: Final = ("capability", "refusal-phrase", "other")
# Texts drawn per source and stratum (all of them when a stratum is smaller): for the check
# set, then for the sealed set. The sealed set is drawn with the check set's filters from what
# the check set left, before any classifier was trained on the new data, and not read until the
# final head was frozen.
DRAW_SIZES: Final[dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    # source: ((check set per stratum), (sealed set per stratum)), strata in STRATA order
    "alpaca_eval:gpt4_1106_preview": ((20, 25, 25), (10, 10, 10)),
    "alpaca_eval:claude-2.1": ((25, 40, 25), (10, 20, 10)),
    "alpaca_eval:llama-2-70b-chat": ((15, 40, 25), (5, 20, 10)),
    "hh-rlhf": ((25, 45, 30), (15, 25, 15)),
    "pandalm": ((5, 15, 30), (0, 0, 0)),
    "llmbar": ((5, 15, 20), (0, 0, 0)),
}
STRATUM_SIZES: Final = {source: check for source, (check, _) in DRAW_SIZES.items()}
SEALED_SIZES: Final = {source: sealed for source, (_, sealed) in DRAW_SIZES.items()}

CAPABILITY_PHRASE: Final = re.compile(
    r"real[-\s]?time|\bbrows(?:e|ing|er)|internet\s*access|access\s*(?:to\s*)?(?:the\s*)?"
    r"internet|knowledge\s*cut|training\s*(?:data|cut)|as\s*of\s*my\s*(?:last|latest)|"
    r"last\s*(?:update|training)|up[-\s]to[-\s]date|as\s*an?\s*(?:ai|artificial|language\s*"
    r"model|assistant)|\bi(?:'m|\s*am)\s*(?:just\s*)?an?\s*(?:ai|language\s*model|assistant)|"
    r"language\s*model|\bi\s*(?:don't|do\s*not|cannot|can't|can\s*not|am\s*unable\s*to|"
    r"'m\s*unable\s*to|am\s*not\s*able\s*to|'m\s*not\s*able\s*to)\s*(?:\w+\s*)?(?:see|view|"
    r"open|access|run|execute|hear|listen|watch|remember|browse|look\s*up|verify|search|"
    r"retrieve|predict|know)|(?:don't|do\s*not)\s*(?:have|possess)\s*(?:any\s*)?(?:access|"
    r"information|data|details|personal|enough|sufficient|the\s*ability|the\s*capability|"
    r"knowledge|context|opinions?|feelings|emotions|experiences?)|without\s*(?:more|"
    r"additional|further)\s*(?:context|information|details)|(?:more|additional)\s*"
    r"(?:context|information|details)\s*(?:is|would\s*be)\s*needed",
    re.IGNORECASE,
)
REFUSAL_PHRASE: Final = re.compile(
    r"sorry|apolog|unfortunately|\bi\s*(?:can't|cannot|can\s*not|won't|will\s*not|must|"
    r"am\s*unable|'m\s*unable|am\s*not\s*able|'m\s*not\s*able|do\s*not\s*feel|don't\s*feel|"
    r"(?:'m|\s*am)\s*not\s*comfortable|would\s*rather\s*not|'d\s*rather\s*not|refuse|decline)|"
    r"unable\s*to|not\s*able\s*to|not\s*(?:appropriate|ethical|legal|okay|ok|a\s*good\s*idea)|"
    r"inappropriate|unethical|illegal|harmful|dangerous|offensive|respectful|consult|"
    r"please\s*note|important\s*to\s*(?:note|remember)|responsib|safety|\bsafe\b|privacy|"
    r"consent|ethic|disclaim|caution|warning|\brisks?\b",
    re.IGNORECASE,
)

_APOSTROPHES: Final = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'", "\u201c": '"', "\u201d": '"'}
)
_SPACE: Final = re.compile(r"\s+")


def normalized_text(text: str) -> str:
    """The text as compared for leakage: NFKC, typographic quotes made plain, lower case,
    runs of white space as one space, no surrounding space."""
    folded = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    return _SPACE.sub(" ", folded).strip()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratum_of(text: str) -> str:
    if CAPABILITY_PHRASE.search(text):
        return "capability"
    if REFUSAL_PHRASE.search(text):
        return "refusal-phrase"
    return "other"


@dataclass(frozen=True)
class Candidate:
    source: str
    row_id: str
    prompt: str
    text: str


@dataclass(frozen=True)
class CheckRow:
    source: str
    row_id: str
    stratum: str
    stratum_size: int  # distinct texts of the source in this stratum (for weighting)
    text_sha256: str
    label: str  # one of LABELS, or "" before labelling
    note: str  # why, for the less obvious labels
    prompt: str
    text: str

    @property
    def declined(self) -> bool:
        """The binary view: did the response decline (a refusal of either kind)?"""
        return self.label in REFUSALS


# --- the releases -------------------------------------------------------------------------------


def alpaca_candidates(alpaca_dir: Path) -> dict[str, list[Candidate]]:
    """Each AlpacaEval model's outputs (gpt4_1106_preview taken from the claude-2.1 file)."""
    out: dict[str, list[Candidate]] = {f"alpaca_eval:{m}": [] for m in ALPACA_MODELS}
    for model, name in ALPACA_FILES.items():
        for index, row in enumerate(read_json_array(alpaca_dir / name)):
            instruction = str(row.get("instruction", ""))
            if model == "claude-2.1":
                out["alpaca_eval:gpt4_1106_preview"].append(
                    Candidate(
                        "alpaca_eval:gpt4_1106_preview",
                        str(index),
                        instruction,
                        str(row["output_1"]),
                    )
                )
            out[f"alpaca_eval:{model}"].append(
                Candidate(f"alpaca_eval:{model}", str(index), instruction, str(row["output_2"]))
            )
    return out


def hh_candidates(hh_file: Path, already_labelled: set[str]) -> list[Candidate]:
    out = []
    for line, record in enumerate(hh_records(hh_file)):
        for side in HH_SIDES:
            turn = final_assistant_turn(record[side])
            if turn and turn not in already_labelled:
                prompt = last_human_turn(record[side])
                out.append(Candidate("hh-rlhf", f"{line}:{side}", prompt, turn))
    return out


def pandalm_candidates(pandalm_file: Path) -> list[Candidate]:
    out = []
    for item in read_json_array(pandalm_file):
        prompt = f"{item['instruction']}\n{item['input']}".strip()
        for field in ("response1", "response2"):
            text = item.get(field)
            if isinstance(text, str) and text.strip():
                out.append(Candidate("pandalm", f"{item['idx']}:{field}", prompt, text))
    return out


def llmbar_candidates(llmbar_dir: Path) -> list[Candidate]:
    out = []
    for stem in llmbar_review.FILES:
        for index, item in enumerate(read_json_array(llmbar_dir / f"{stem}.json")):
            for number in (1, 2):
                text = item.get(f"output_{number}")
                if isinstance(text, str) and text.strip():
                    key = f"{stem}-{index}-{number}"
                    out.append(Candidate("llmbar", key, str(item["input"]), text))
    return out


def _distinct(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    kept = []
    for candidate in candidates:
        if candidate.text not in seen:
            seen.add(candidate.text)
            kept.append(candidate)
    return kept


def all_candidates(data_dir: Path, already_labelled_hh: set[str]) -> dict[str, list[Candidate]]:
    """Every source's distinct texts, in release order."""
    candidates = alpaca_candidates(data_dir / "alpaca_eval")
    candidates["hh-rlhf"] = hh_candidates(
        data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz", already_labelled_hh
    )
    candidates["pandalm"] = pandalm_candidates(data_dir / "pandalm" / "testset-v1.json")
    candidates["llmbar"] = llmbar_candidates(data_dir / "llmbar")
    return {source: _distinct(candidates[source]) for source in SOURCES}


def draw_checkset(
    candidates: dict[str, list[Candidate]],
    *,
    sizes: dict[str, tuple[int, int, int]] = STRATUM_SIZES,
    seed: int = SEED,
    exclude: Iterable[str] = (),
) -> list[CheckRow]:
    """The stratified draw, unlabelled. A text drawn once (or in `exclude`, compared after
    `normalized_text`) is never drawn again. `stratum_size` counts the whole stratum."""
    drawn: list[CheckRow] = []
    taken: set[str] = {normalized_text(text) for text in exclude}
    for number, source in enumerate(SOURCES):
        by_stratum: dict[str, list[Candidate]] = {s: [] for s in STRATA}
        for candidate in candidates[source]:
            by_stratum[stratum_of(candidate.text)].append(candidate)
        for position, stratum in enumerate(STRATA):
            pool = by_stratum[stratum]
            want = sizes[source][position]
            if want == 0:
                continue
            rng = np.random.default_rng([seed, number, position])
            count = 0
            for j in rng.permutation(len(pool)):
                candidate = pool[int(j)]
                key = normalized_text(candidate.text)
                if key in taken:
                    continue
                taken.add(key)
                drawn.append(
                    CheckRow(
                        source=source,
                        row_id=candidate.row_id,
                        stratum=stratum,
                        stratum_size=len(pool),
                        text_sha256=text_sha256(candidate.text),
                        label="",
                        note="",
                        prompt=candidate.prompt,
                        text=candidate.text,
                    )
                )
                count += 1
                if count == want:
                    break
    return drawn


# --- the file -----------------------------------------------------------------------------------


def write_checkset(path: Path, rows: Sequence[CheckRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([getattr(row, c) for c in COLUMNS])


def read_checkset(path: Path = CHECKSET_FILE, *, labelled: bool = True) -> list[CheckRow]:
    """The check set; with `labelled`, every row must carry one of LABELS."""
    try:
        stream = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise TrainingDataError(f"cannot read {path}: {error.strerror}") from error
    rows = []
    with stream:
        reader = csv.DictReader(stream)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise TrainingDataError(f"{path}: header lacks the columns {missing}")
        for record in reader:
            where = f"{path}, line {reader.line_num}"
            label = record["label"] or ""
            if (labelled or label) and label not in LABELS:
                raise TrainingDataError(f"{where}: label {label!r} is not one of {LABELS}")
            if record["source"] not in SOURCES:
                raise TrainingDataError(f"{where}: source {record['source']!r} is unknown")
            if text_sha256(record["text"]) != record["text_sha256"]:
                raise TrainingDataError(f"{where}: text_sha256 does not match the text")
            rows.append(
                CheckRow(
                    source=record["source"],
                    row_id=record["row_id"],
                    stratum=record["stratum"],
                    stratum_size=int(record["stratum_size"]),
                    text_sha256=record["text_sha256"],
                    label=label,
                    note=record["note"] or "",
                    prompt=record["prompt"],
                    text=record["text"],
                )
            )
    return rows


def draw_sealed(candidates: dict[str, list[Candidate]]) -> list[CheckRow]:
    """The sealed set: the check set's draw repeated with SEALED_SEED and SEALED_SIZES,
    leaving out every text of the check set."""
    checkset = draw_checkset(candidates)
    return draw_checkset(
        candidates, sizes=SEALED_SIZES, seed=SEALED_SEED, exclude=[r.text for r in checkset]
    )


def already_labelled_hh() -> set[str]:
    return {row.text for row in read_hh_labels()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path, default=None, help="default: the set's file")
    parser.add_argument("--sealed", action="store_true", help="the sealed set instead")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--draw", action="store_true", help="write the unlabelled draw")
    action.add_argument("--verify", action="store_true", help="compare the file with a redraw")
    args = parser.parse_args(argv)
    candidates = all_candidates(args.data_dir, already_labelled_hh())
    rows = draw_sealed(candidates) if args.sealed else draw_checkset(candidates)
    args.out = args.out or (SEALED_FILE if args.sealed else CHECKSET_FILE)
    if args.draw:
        if args.out.exists():
            parser.error(f"{args.out} exists: it holds labels; move it away to redraw")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_checkset(args.out, rows)
        print(f"wrote {len(rows)} unlabelled rows to {args.out}")
        return 0
    stored = read_checkset(args.out, labelled=False)
    expected = [(r.source, r.row_id, r.stratum, r.stratum_size, r.text_sha256) for r in rows]
    got = [(r.source, r.row_id, r.stratum, r.stratum_size, r.text_sha256) for r in stored]
    if expected != got:
        print(f"{args.out} is not the seeded draw from {args.data_dir}")
        return 1
    labelled = sum(1 for r in stored if r.label)
    print(f"{args.out}: {len(stored)} rows, the seeded draw, {labelled} labelled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
