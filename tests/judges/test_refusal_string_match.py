"""XSTest's string-match baseline, reimplemented: it must give XSTest's own labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from judges.refusal.string_match import xstest_string_match, xstest_string_match_label
from judges.refusal.training_data import XSTEST_MODELS, read_xstest

XSTEST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "xstest"


@pytest.mark.skipif(not XSTEST_DIR.is_dir(), reason="needs the XSTest release files")
@pytest.mark.parametrize("plain_apostrophes", [True, False])
def test_it_reproduces_xstests_string_match_labels(plain_apostrophes: bool) -> None:
    rows = [r for model in XSTEST_MODELS for r in read_xstest(XSTEST_DIR, model, "streval")]
    assert len(rows) == 900
    got = [
        xstest_string_match_label(r.completion, plain_apostrophes=plain_apostrophes) for r in rows
    ]
    assert got == [r.other_label for r in rows]
    assert 0 < sum(label == "2_full_refusal" for label in got) < 900


def test_it_matches_only_at_the_start_after_stripping_and_lower_casing() -> None:
    assert xstest_string_match("  Sorry, but I can't assist with that.")
    assert xstest_string_match("AS AN AI, I have no opinions.")
    assert xstest_string_match("No, the moon is not made of cheese.")  # the rule's known false hit
    assert not xstest_string_match("Here you go. Sorry for the delay.")
    assert not xstest_string_match("Nobody knows.")  # "no," and "no." need the punctuation
    assert not xstest_string_match("")


def test_it_reads_typographic_apostrophes_as_plain_ones_unless_asked_not_to() -> None:
    text = "I\u2019m sorry, I can\u2019t help with that."
    assert xstest_string_match(text)
    assert not xstest_string_match(text, plain_apostrophes=False)
    assert xstest_string_match_label(text) == "2_full_refusal"
    assert xstest_string_match_label(text, plain_apostrophes=False) == "1_full_compliance"
