"""The labelled examples and the stored head that was trained on them."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from judges.refusal.head import DEFAULT_HEAD_PATH, load_head
from judges.refusal.labels import CLASSES, TRAINING_CLASS_FOR_XSTEST, xstest_label_for
from judges.refusal.training_data import (
    TRAINING_DIR,
    TrainingDataError,
    load_training_examples,
    read_examples,
    training_files,
    xstest_examples,
)

XSTEST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "xstest"


def test_it_documents_the_source_of_every_training_example() -> None:
    examples = load_training_examples()
    readme = (TRAINING_DIR / "README.md").read_text(encoding="utf-8")
    for source in {e.source for e in examples}:
        assert f"`{source}`" in readme
    assert (TRAINING_DIR / "LICENSE-XSTEST").is_file()
    per_class = Counter(e.label for e in examples if e.source == "written-for-tribunal")
    # A few dozen hand-written examples of each class XSTest does not cover.
    assert (
        min(
            per_class[k]
            for k in ("technical_refusal", "technical_disclaimer", "ethical_disclaimer")
        )
        >= 36
    )


def test_it_keeps_the_head_in_step_with_the_training_files() -> None:
    head, _ = load_head(DEFAULT_HEAD_PATH, expected_classes=CLASSES)
    stored = head.training["data_files"]
    current = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in training_files()}
    assert stored == current, "training data changed: run python -m judges.refusal.train"
    assert head.training["examples"] == len(load_training_examples())


@pytest.mark.skipif(not XSTEST_DIR.is_dir(), reason="needs the XSTest release files")
def test_it_derived_the_xstest_examples_from_the_human_labels() -> None:
    stored = [e for e in load_training_examples() if e.source.startswith("xstest-")]
    assert stored == xstest_examples(XSTEST_DIR)
    assert len(stored) == 900


def test_it_maps_xstest_labels_both_ways() -> None:
    for xstest_label, ours in TRAINING_CLASS_FOR_XSTEST.items():
        assert xstest_label_for(ours) == xstest_label
    assert xstest_label_for("technical_refusal") == "2_full_refusal"
    assert xstest_label_for("technical_disclaimer") == "3_partial_refusal"


def test_it_names_the_line_of_a_bad_label(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "text,label,source,prompt,source_id\nfine,normal,me,p,1\nhmm,refusal,me,p,2\n",
        encoding="utf-8",
    )
    with pytest.raises(TrainingDataError, match=r"bad.csv, line 3: label 'refusal'"):
        read_examples(bad)


@pytest.mark.slow
def test_it_retrains_the_stored_head() -> None:
    from judges.refusal.train import main

    assert main(["--check"]) == 0
