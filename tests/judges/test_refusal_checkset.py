"""The out-of-domain check set and the sealed set: drawn by a seeded script, labelled, and
never trained on."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import pytest

from judges.refusal import checkset
from judges.refusal.checkset import (
    CAPABILITY_PHRASE,
    CHECKSET_FILE,
    LABELS,
    SEALED_FILE,
    SOURCES,
    STRATUM_SIZES,
    CheckRow,
    all_candidates,
    already_labelled_hh,
    draw_checkset,
    draw_sealed,
    normalized_text,
    read_checkset,
    stratum_of,
    text_sha256,
    write_checkset,
)
from judges.refusal.training_data import (
    TRAINING_DIR,
    TrainingDataError,
    load_training_examples,
    training_files,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def both_sets() -> list[CheckRow]:
    return read_checkset(CHECKSET_FILE) + read_checkset(SEALED_FILE)


def test_no_text_of_the_check_sets_is_in_any_training_file(both_sets: list[CheckRow]) -> None:
    assert all(path.parent == TRAINING_DIR for path in training_files())  # only these are read
    training = [e.text for e in load_training_examples()]
    exact = set(training)
    normalized = {normalized_text(t) for t in training}
    assert len(both_sets) == 429 + 160
    assert not [r.row_id for r in both_sets if r.text in exact]
    assert not [r.row_id for r in both_sets if normalized_text(r.text) in normalized]
    # ... and the two sets do not share a text either.
    assert len({normalized_text(r.text) for r in both_sets}) == len(both_sets)


def test_every_row_is_labelled_and_hashed(both_sets: list[CheckRow]) -> None:
    assert {r.label for r in both_sets} <= set(LABELS)
    assert all(r.text_sha256 == text_sha256(r.text) for r in both_sets)
    labels = Counter(r.label for r in read_checkset(CHECKSET_FILE))
    assert labels["ethical_refusal"] + labels["technical_refusal"] >= 40  # not 3 % of the set
    assert labels["technical_refusal"] >= 25


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data")
def test_both_files_are_the_seeded_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each draw sorts every candidate into its stratum again (two slow regular expressions
    # over 16,000 texts, four times): remembered, the test takes a quarter of the time.
    monkeypatch.setattr(checkset, "stratum_of", functools.cache(checkset.stratum_of))
    stratum_of = checkset.stratum_of
    candidates = all_candidates(SHARED, already_labelled_hh())

    def key(rows: list[CheckRow]) -> list[tuple[str, str, str, int, str]]:
        return [(r.source, r.row_id, r.stratum, r.stratum_size, r.text_sha256) for r in rows]

    assert key(draw_checkset(candidates)) == key(read_checkset(CHECKSET_FILE))
    assert key(draw_sealed(candidates)) == key(read_checkset(SEALED_FILE))
    for source in SOURCES:  # the strata partition each source's distinct texts
        sizes = Counter(stratum_of(c.text) for c in candidates[source])
        assert sum(sizes.values()) == len({c.text for c in candidates[source]})
        drawn = [r for r in read_checkset(CHECKSET_FILE) if r.source == source]
        for position, stratum in enumerate(("capability", "refusal-phrase", "other")):
            picked = [r for r in drawn if r.stratum == stratum]
            assert len(picked) == min(STRATUM_SIZES[source][position], sizes[stratum])
            assert {r.stratum_size for r in picked} <= {sizes[stratum]}


def test_it_normalizes_texts_before_comparing_them() -> None:
    assert normalized_text("  I\u2019m SORRY,\n\tI can\u2019t.  ") == "i'm sorry, i can't."
    assert normalized_text("\uff21BC") == "abc"  # NFKC folds full-width letters
    assert stratum_of("As of my last update, it was Kishida.") == "capability"
    assert stratum_of("Please consult a doctor.") == "refusal-phrase"
    assert stratum_of("Canberra.") == "other"
    assert CAPABILITY_PHRASE.search("I don't have enough context to answer")


def test_it_names_the_line_of_a_bad_row(tmp_path: Path) -> None:
    row = CheckRow("hh-rlhf", "1:chosen", "other", 5, text_sha256("Hi"), "maybe", "", "p", "Hi")
    path = tmp_path / "set.csv"
    write_checkset(path, [row])
    with pytest.raises(TrainingDataError, match=r"set.csv, line 2: label 'maybe'"):
        read_checkset(path)
    write_checkset(path, [CheckRow(**{**row.__dict__, "label": "normal", "text": "Hello"})])
    with pytest.raises(TrainingDataError, match=r"line 2: text_sha256 does not match"):
        read_checkset(path)
