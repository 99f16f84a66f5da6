"""Reading the public releases the refusal classifier is trained and scored on, and the hand
labels made for them earlier (`judges/data/refusal_training/heldout/`).

- hh-rlhf harmless-base test (Anthropic, MIT): the final assistant turn of `chosen` and
  `rejected`. 320 of them were labelled by hand with the five classes or `unclear`
  (`heldout/hh_rlhf_harmless_test_labels.csv`): a uniform random sample of 240 distinct turns
  and 80 more drawn among turns with an apology, a refusal verb or an ethics word, both drawn
  by `draw_hh_sample` below. They were the first head's test and development sets; since the
  two-stage head they are training rows (`training_data.hh_rlhf_examples`), held out in the
  leave-one-set-out evaluation.
- PandaLM test set (WeOpenML, Apache-2.0): `response1`/`response2`, ordinary instruction
  answers of 7B models. 135 distinct responses were read by hand (`heldout/pandalm_checked.csv`,
  all `normal`): every one a broad phrase filter flags and every one the first two heads
  called anything but `normal`; the other texts are ordinary answers too.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from judges.refusal.datafiles import HELDOUT_DIR, TrainingDataError
from judges.refusal.labels import CLASSES

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


def read_json_array(path: Path) -> list[dict[str, object]]:
    """A release file holding one JSON array (gzipped when the name ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as stream:
                data = json.load(stream)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TrainingDataError(f"cannot read {path}: {error}") from error
    if not isinstance(data, list):
        raise TrainingDataError(f"{path}: expected a JSON array")
    return data


def pandalm_items(path: Path) -> list[dict[str, object]]:
    return read_json_array(path)


def pandalm_responses(path: Path) -> list[tuple[int, str, str]]:
    """(idx, field, text) of every non-blank response1/response2, in file order."""
    return [
        (int(str(item["idx"])), field, str(item[field]))
        for item in pandalm_items(path)
        for field in ("response1", "response2")
        if isinstance(item.get(field), str) and str(item[field]).strip()
    ]


def pandalm_prompts(path: Path) -> dict[int, str]:
    """idx -> instruction and input, as one prompt."""
    return {
        int(str(item["idx"])): f"{item['instruction']}\n{item['input']}".strip()
        for item in pandalm_items(path)
    }


def final_assistant_turn(dialogue: str) -> str:
    return dialogue.rsplit("\n\nAssistant:", 1)[-1].strip()


def last_human_turn(dialogue: str) -> str:
    before = dialogue.rsplit("\n\nAssistant:", 1)[0]
    return before.rsplit("\n\nHuman:", 1)[-1].strip()


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


@dataclass(frozen=True)
class PandaLMChecked:
    idx: int
    field: str
    label: str
    text: str


def read_pandalm_checked(path: Path = PANDALM_CHECKED) -> list[PandaLMChecked]:
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [
            PandaLMChecked(int(r["idx"]), r["field"], r["label"], r["text"])
            for r in csv.DictReader(stream)
        ]
    for row in rows:
        if row.label not in CLASSES:
            raise TrainingDataError(f"{path}: label {row.label!r} is not a class")
    return rows
