"""The labelled examples and the stored head that was trained on them."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from judges.refusal import llmbar_review
from judges.refusal.head import DEFAULT_HEAD_PATH, load_head
from judges.refusal.labels import CLASSES, TRAINING_CLASS_FOR_XSTEST, xstest_label_for
from judges.refusal.sources import read_hh_labels, read_pandalm_checked
from judges.refusal.training_data import (
    HH_SOURCE,
    LLMBAR_SOURCE,
    PANDALM_SOURCE,
    TRAINING_DIR,
    TrainingDataError,
    checkset_keys,
    hh_rlhf_examples,
    llmbar_examples,
    load_training_examples,
    pandalm_examples,
    read_examples,
    training_files,
    xstest_examples,
)

XSTEST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "xstest"
LLMBAR_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "llmbar"
HH_RLHF = LLMBAR_DIR.parent / "hh-rlhf" / "harmless-base-test.jsonl.gz"
PANDALM = LLMBAR_DIR.parent / "pandalm" / "testset-v1.json"


def test_it_documents_the_source_of_every_training_example() -> None:
    examples = load_training_examples()
    readme = (TRAINING_DIR / "README.md").read_text(encoding="utf-8")
    for source in {e.source for e in examples}:
        assert f"`{source}`" in readme
    assert (TRAINING_DIR / "LICENSE-XSTEST").is_file()
    assert (TRAINING_DIR / "LICENSE-LLMBAR").read_text().startswith("MIT License")
    written = ("written-for-tribunal", "written-for-tribunal-3", "written-for-tribunal-4")
    per_class = Counter(e.label for e in examples if e.source in written)
    # Dozens of hand-written examples of each class XSTest does not cover.
    assert (
        min(
            per_class[k]
            for k in ("technical_refusal", "technical_disclaimer", "ethical_disclaimer")
        )
        >= 70
    )
    assert (TRAINING_DIR / "heldout" / "LICENSE-HH-RLHF").is_file()
    assert (TRAINING_DIR / "heldout" / "LICENSE-PANDALM").is_file()


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


def test_it_took_the_llmbar_outputs_as_the_review_says() -> None:
    stored = [e for e in load_training_examples() if e.source == LLMBAR_SOURCE]
    by_id = {e.source_id: e for e in stored}
    in_checkset = checkset_keys("llmbar")
    # The first heads' 808 reviewed outputs, less the 37 of them drawn into the check set.
    assert len(in_checkset) == 40 and len(in_checkset - set(llmbar_review.EXCLUDED)) == 37
    assert len(stored) == 808 - 37
    assert not (set(llmbar_review.EXCLUDED) | in_checkset) & set(by_id)
    relabelled = {k: v for k, v in llmbar_review.RELABELLED.items() if k not in in_checkset}
    for key, (label, _) in relabelled.items():
        assert by_id[key].label == label
    assert Counter(e.label for e in stored)["normal"] == len(stored) - len(relabelled)
    # An empathic answer, a moderation-style label and an apologetic letter stay normal.
    assert by_id["Natural-31-2"].text == "I'm sorry to hear about your loss."
    assert by_id["Natural-31-2"].label == "normal"
    assert by_id["Natural-76-1"].text == "Negative sentiment"
    assert by_id["Adversarial-GPTOut-30-2"].label == "normal"


@pytest.mark.skipif(not HH_RLHF.is_file(), reason="needs the hh-rlhf release file")
def test_it_derived_the_hh_rlhf_examples_from_the_earlier_hand_labels() -> None:
    stored = [e for e in load_training_examples() if e.source == HH_SOURCE]
    assert stored == hh_rlhf_examples(HH_RLHF)
    labels = read_hh_labels()
    assert len(stored) == sum(r.label != "unclear" for r in labels) == 261
    assert {e.text for e in stored} == {r.text for r in labels if r.label != "unclear"}


@pytest.mark.skipif(not PANDALM.is_file(), reason="needs the PandaLM test set")
def test_it_derived_the_pandalm_examples_from_the_hand_check_less_the_check_set() -> None:
    stored = [e for e in load_training_examples() if e.source == PANDALM_SOURCE]
    assert stored == pandalm_examples(PANDALM)
    checked = read_pandalm_checked()
    assert 0 < len(stored) < len(checked) == 135
    assert {e.label for e in stored} == {"normal"}


@pytest.mark.skipif(not LLMBAR_DIR.is_dir(), reason="needs the LLMBar release files")
def test_it_derived_the_llmbar_examples_from_the_release() -> None:
    stored = [e for e in load_training_examples() if e.source == LLMBAR_SOURCE]
    assert stored == llmbar_examples(LLMBAR_DIR)
    assert len(llmbar_examples(LLMBAR_DIR, leave_out_checkset=False)) == 808


def test_it_refuses_llmbar_files_it_has_not_reviewed(tmp_path: Path) -> None:
    for stem in llmbar_review.FILES:
        (tmp_path / f"{stem}.json").write_text(
            '[{"input": "Say hi", "output_1": "Hi!", "output_2": "Sorry, I cannot."}]'
        )
    with pytest.raises(TrainingDataError, match="flags 1 LLMBar outputs, the review covered 170"):
        llmbar_examples(tmp_path)


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


@pytest.mark.skipif(not LLMBAR_DIR.is_dir(), reason="needs the LLMBar release files")
def test_the_fourth_round_of_written_rows_copies_no_llmbar_text() -> None:
    """The ordinary answers written for LLMBar's kinds of task (written_for_tribunal_4.csv)
    share no run of six words with any LLMBar input or output."""
    import json
    import re

    def runs(text: str) -> set[str]:
        words = re.findall(r"[a-z0-9']+", text.lower())
        return {" ".join(words[i : i + 6]) for i in range(len(words) - 5)}

    llmbar: set[str] = set()
    for path in sorted(LLMBAR_DIR.glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            for key in ("input", "output_1", "output_2"):
                llmbar |= runs(str(item.get(key) or ""))
    written = read_examples(TRAINING_DIR / "written_for_tribunal_4.csv")
    assert len(written) == 38 and {e.label for e in written} == {"normal"}
    assert {e.source for e in written} == {"written-for-tribunal-4"}
    for example in written:
        shared = runs(example.text) & llmbar
        assert not shared, f"{example.source_id} shares {sorted(shared)[:3]} with LLMBar"


def test_the_embedding_cache_keeps_vectors_only_for_the_same_weights_and_cut(
    tmp_path: Path,
) -> None:
    import numpy as np

    from judges.refusal.train import EmbeddingCache

    path = tmp_path / "cache.npz"
    written = EmbeddingCache(path, "a" * 64, 128)
    written.vectors[EmbeddingCache.key("text")] = np.ones(3, dtype=np.float32)
    written.save()
    assert list(EmbeddingCache(path, "a" * 64, 128).vectors) == [EmbeddingCache.key("text")]
    assert EmbeddingCache(path, "a" * 64, 256).vectors == {}  # another cut
    assert EmbeddingCache(path, "b" * 64, 128).vectors == {}  # other weights
    # A cache from before the cut was recorded is ignored, whatever it holds.
    np.savez(path, weights_sha256=np.array("a" * 64), keys=np.array(["k"]), vectors=np.ones((1, 3)))
    assert EmbeddingCache(path, "a" * 64, 128).vectors == {}
