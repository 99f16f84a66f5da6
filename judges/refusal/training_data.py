"""The labelled examples the head is trained on (judges/data/refusal_training/*.csv).

Each CSV has the columns `text, label, source, prompt, source_id`; the README in that folder
says where every source comes from. Run

    python -m judges.refusal.training_data --xstest-dir /path/to/xstest --llmbar-dir /path/to/llmbar

to rebuild `xstest_v2.csv` and `llmbar.csv` from the XSTest and LLMBar release files, and
`--hh-rlhf FILE --pandalm FILE` to rebuild `hh_rlhf.csv` and `pandalm.csv` from the earlier hand
labels (`heldout/`) and those releases (the hand-written files are edited by hand). No text of
the out-of-domain check sets (`judges/data/refusal_checkset/`) is ever written here. Reading
checks every row and names the file and line of the first problem. Only the CSV files directly
in the folder are training data; the `heldout/` subfolder holds the earlier hand labels from
which `hh_rlhf.csv` and `pandalm.csv` are built.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from judges.refusal import llmbar_review
from judges.refusal.checkset import CHECKSET_FILE, SEALED_FILE, read_checkset
from judges.refusal.datafiles import TRAINING_DIR, TrainingDataError
from judges.refusal.labels import CLASSES, NORMAL, TRAINING_CLASS_FOR_XSTEST, XSTEST_LABELS
from judges.refusal.sources import (
    UNCLEAR,
    final_assistant_turn,
    hh_records,
    last_human_turn,
    pandalm_prompts,
    read_hh_labels,
    read_pandalm_checked,
)

COLUMNS: Final = ("text", "label", "source", "prompt", "source_id")
XSTEST_MODELS: Final = ("gpt4", "llama2orig")
XSTEST_FILE: Final = "xstest_v2_completions_{model}.csv"
XSTEST_SOURCE: Final = "xstest-v2-{model}"
WRITTEN_SOURCE: Final = "written-for-tribunal"
WRITTEN_SOURCE_3: Final = "written-for-tribunal-3"
LLMBAR_SOURCE: Final = "llmbar"
HH_SOURCE: Final = "hh-rlhf-harmless-test"
PANDALM_SOURCE: Final = "pandalm-test"


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str
    prompt: str
    source_id: str


def read_examples(path: Path) -> list[Example]:
    """The examples in one training CSV."""
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise TrainingDataError(f"{path}: header lacks the columns {missing}")
        examples = []
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if row["label"] not in CLASSES:
                raise TrainingDataError(f"{where}: label {row['label']!r} is not one of {CLASSES}")
            if not (row["text"] or "").strip():
                raise TrainingDataError(f"{where}: empty text")
            if not row["source"]:
                raise TrainingDataError(f"{where}: empty source")
            examples.append(Example(*(row[c] or "" for c in COLUMNS)))
    return examples


def load_training_examples(directory: Path = TRAINING_DIR) -> list[Example]:
    """Every example in every CSV of the training folder, in file-name order."""
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise TrainingDataError(f"no training CSV files in {directory}")
    examples = [example for path in files for example in read_examples(path)]
    seen: dict[str, str] = {}
    for example in examples:
        key = f"{example.source}:{example.source_id}"
        if key in seen:
            raise TrainingDataError(f"duplicate example id {key} in {directory}")
        seen[key] = example.text
    return examples


def training_files(directory: Path = TRAINING_DIR) -> list[Path]:
    return sorted(directory.glob("*.csv"))


@dataclass(frozen=True)
class XSTestRow:
    model: str
    id: str
    type: str
    prompt: str
    completion: str
    final_label: str
    other_label: str | None = None  # strmatch_label or gpt4_label in the *_streval/_gpteval files


def read_xstest(xstest_dir: Path, model: str, variant: str = "") -> list[XSTestRow]:
    """One XSTest v2 completions file; `variant` is "", "streval" or "gpteval"."""
    name = XSTEST_FILE.format(model=model)
    if variant:
        name = name.replace(".csv", f"_{variant}.csv")
    path = xstest_dir / name
    other_column = {"": None, "streval": "strmatch_label", "gpteval": "gpt4_label"}[variant]
    try:
        stream = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise TrainingDataError(f"cannot read {path}: {error.strerror}") from error
    with stream:
        reader = csv.DictReader(stream)
        needed = ["id", "type", "prompt", "completion", "final_label"]
        if other_column:
            needed.append(other_column)
        missing = [c for c in needed if c not in (reader.fieldnames or ())]
        if missing:
            raise TrainingDataError(f"{path}: header lacks the columns {missing}")
        rows = []
        for row in reader:
            labels = [row["final_label"]] + ([row[other_column]] if other_column else [])
            for label in labels:
                if label not in XSTEST_LABELS:
                    raise TrainingDataError(
                        f"{path}, line {reader.line_num}: label {label!r} is not one of "
                        f"{XSTEST_LABELS}"
                    )
            rows.append(
                XSTestRow(
                    model=model,
                    id=row["id"],
                    type=row["type"],
                    prompt=row["prompt"],
                    completion=row["completion"],
                    final_label=row["final_label"],
                    other_label=row[other_column] if other_column else None,
                )
            )
    return rows


def xstest_examples(xstest_dir: Path) -> list[Example]:
    """XSTest v2 completions with human final labels, mapped by TRAINING_CLASS_FOR_XSTEST."""
    return [
        Example(
            text=row.completion,
            label=TRAINING_CLASS_FOR_XSTEST[row.final_label],
            source=XSTEST_SOURCE.format(model=model),
            prompt=row.prompt,
            source_id=row.id,
        )
        for model in XSTEST_MODELS
        for row in read_xstest(xstest_dir, model)
    ]


def checkset_keys(source: str) -> set[str]:
    """The row ids of one source in the check set and the sealed set (never trained on)."""
    return {
        row.row_id
        for path in (CHECKSET_FILE, SEALED_FILE)
        if path.is_file()
        for row in read_checkset(path, labelled=False)
        if row.source == source
    }


def checkset_texts() -> set[str]:
    return {
        row.text
        for path in (CHECKSET_FILE, SEALED_FILE)
        if path.is_file()
        for row in read_checkset(path, labelled=False)
    }


def llmbar_examples(llmbar_dir: Path, *, leave_out_checkset: bool = True) -> list[Example]:
    """LLMBar outputs as training examples, after the review in `judges.refusal.llmbar_review`.

    Every distinct output of the five LLMBar files (first occurrence kept) is `normal`, except
    the ones the review relabelled or left out, and (with `leave_out_checkset`) the ones drawn
    into the check set. The prompt is the LLMBar `input`, so both outputs for one instruction
    fall in the same cross-validation fold. `leave_out_checkset=False` gives the 808 rows the
    first two heads were trained on.
    """
    held_out = checkset_keys("llmbar") if leave_out_checkset else set()
    seen: set[str] = set()
    flagged = 0
    found: set[str] = set()
    examples = []
    for stem in llmbar_review.FILES:
        path = llmbar_dir / f"{stem}.json"
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TrainingDataError(f"cannot read {path}: {error}") from error
        for index, item in enumerate(items):
            for number in (1, 2):
                text = item.get(f"output_{number}")
                if not isinstance(text, str) or not text.strip() or text in seen:
                    continue
                seen.add(text)
                key = f"{stem}-{index}-{number}"
                found.add(key)
                flagged += bool(llmbar_review.PHRASE_FILTER.search(text))
                if key in llmbar_review.EXCLUDED or key in held_out:
                    continue
                label = llmbar_review.RELABELLED.get(key, (NORMAL, ""))[0]
                examples.append(Example(text, label, LLMBAR_SOURCE, str(item["input"]), key))
    if flagged != llmbar_review.FLAGGED_OUTPUTS:
        raise TrainingDataError(
            f"the phrase filter flags {flagged} LLMBar outputs, the review covered "
            f"{llmbar_review.FLAGGED_OUTPUTS}: this is not the reviewed release "
            f"(princeton-nlp/LLMBar @ 900616b); review the new outputs first"
        )
    missing = sorted((set(llmbar_review.EXCLUDED) | set(llmbar_review.RELABELLED)) - found)
    if missing:
        raise TrainingDataError(f"reviewed LLMBar outputs not found in {llmbar_dir}: {missing}")
    return examples


def hh_rlhf_examples(hh_file: Path) -> list[Example]:
    """The 320 hh-rlhf turns labelled for the first head (`heldout/`), less the `unclear` ones;
    the prompt is the dialogue's last human turn."""
    records = hh_records(hh_file)
    examples = []
    for row in read_hh_labels():
        dialogue = records[row.record][row.side]
        if final_assistant_turn(dialogue) != row.text:
            raise TrainingDataError(
                f"hh-rlhf record {row.record} {row.side} differs from {hh_file}"
            )
        if row.label != UNCLEAR:
            examples.append(
                Example(
                    row.text,
                    row.label,
                    HH_SOURCE,
                    last_human_turn(dialogue),
                    f"{row.record}:{row.side}",
                )
            )
    return examples


def pandalm_examples(pandalm_file: Path) -> list[Example]:
    """The PandaLM responses read by hand for the first heads (`heldout/pandalm_checked.csv`),
    less any text of the check set; the prompt is the instruction and its input."""
    prompts = pandalm_prompts(pandalm_file)
    held_out = checkset_texts()
    return [
        Example(row.text, row.label, PANDALM_SOURCE, prompts[row.idx], f"{row.idx}:{row.field}")
        for row in read_pandalm_checked()
        if row.text not in held_out
    ]


def write_examples(path: Path, examples: Iterable[Example]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for example in examples:
            writer.writerow([getattr(example, c) for c in COLUMNS])
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rebuild xstest_v2.csv and llmbar.csv from the XSTest and LLMBar releases."
    )
    parser.add_argument("--xstest-dir", type=Path, help="folder with XSTest's v2 completions")
    parser.add_argument("--llmbar-dir", type=Path, help="folder with LLMBar's JSON files")
    parser.add_argument("--hh-rlhf", type=Path, help="hh-rlhf harmless-base-test.jsonl.gz")
    parser.add_argument("--pandalm", type=Path, help="PandaLM testset-v1.json")
    parser.add_argument("--out-dir", type=Path, default=TRAINING_DIR)
    args = parser.parse_args(argv)
    if not (args.xstest_dir or args.llmbar_dir or args.hh_rlhf or args.pandalm):
        parser.error("give at least one of --xstest-dir, --llmbar-dir, --hh-rlhf, --pandalm")
    builds: tuple[tuple[str, Callable[[Path], list[Example]], Path | None], ...] = (
        ("xstest_v2.csv", xstest_examples, args.xstest_dir),
        ("llmbar.csv", llmbar_examples, args.llmbar_dir),
        ("hh_rlhf.csv", hh_rlhf_examples, args.hh_rlhf),
        ("pandalm.csv", pandalm_examples, args.pandalm),
    )
    for name, build, source in builds:
        if source is not None:
            count = write_examples(args.out_dir / name, build(source))
            print(f"wrote {count} examples to {args.out_dir / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
