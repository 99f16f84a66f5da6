"""Position consistency, primacy/recency, preference fairness and side preference."""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis.metrics import Undefined, left_preference, position_report, wilson_interval

# Verdicts about the responses: "A" names the same response in both orders.
#   1 (A, A) consistent      2 (A, B) first slot twice: primacy   3 (B, A) second slot: recency
#   4 (tie, A) other         5 (A, both_bad) other                6 (B, B) consistent
#   7 (A, B) primacy
ORIGINAL = ["A", "A", "B", "tie", "A", "B", "A"]
SWAPPED = ["A", "B", "A", "A", "both_bad", "B", "B"]


def test_it_counts_consistent_primacy_and_recency_pairs() -> None:
    report = position_report(ORIGINAL, SWAPPED)
    assert (report.n, report.consistent, report.primacy, report.recency, report.other) == (
        7,
        2,
        2,
        1,
        2,
    )
    assert report.consistency.value == pytest.approx(2 / 7)


def test_it_computes_preference_fairness_as_recency_minus_primacy_over_n() -> None:
    report = position_report(ORIGINAL, SWAPPED)
    assert report.fairness.value == pytest.approx((1 - 2) / 7)


def test_it_bootstraps_position_figures_reproducibly() -> None:
    original = ORIGINAL * 40
    swapped = SWAPPED * 40
    first = position_report(original, swapped, n_boot=500, seed=4)
    again = position_report(original, swapped, n_boot=500, seed=4)
    assert first.consistency.ci == again.consistency.ci
    assert first.consistency.ci is not None and first.fairness.ci is not None
    assert first.consistency.ci[0] < 2 / 7 < first.consistency.ci[1]
    assert first.fairness.ci[0] < -1 / 7 < first.fairness.ci[1]


def test_it_skips_pairs_missing_one_order() -> None:
    report = position_report(["A", None, "B"], ["A", "B", None])
    assert report.n == 1
    assert report.consistency.value == 1.0


def test_it_is_undefined_without_pairs() -> None:
    report = position_report([], [])
    assert isinstance(report.consistency, Undefined)
    assert report.consistency.reason == "no items"


def test_it_names_the_position_of_a_bad_verdict() -> None:
    with pytest.raises(ValueError, match=r"swapped\[1\] is 'C'"):
        position_report(["A", "A"], ["A", "C"])


@pytest.mark.parametrize(("successes", "n"), [(0, 10), (3, 10), (8, 10), (47, 120), (5, 5)])
def test_wilson_interval_matches_statsmodels(successes: int, n: int) -> None:
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=1e-12)


def test_it_reports_each_annotators_left_side_rate() -> None:
    votes = pd.DataFrame(
        {
            "rater": ["x"] * 10 + ["y"] * 4,
            # x picks the left response 8 times out of 10; y once out of 3 (one tie).
            "value": ["A"] * 7 + ["B"] * 3 + ["A", "B", "tie", "A"],
            "left": ["A"] * 5 + ["B"] * 5 + ["A", "A", "A", "B"],
        }
    )
    table = left_preference(votes)
    assert table.loc["x", "n"] == 10
    assert table.loc["x", "left"] == 8
    assert table.loc["x", "rate"] == pytest.approx(0.8)
    low, high = proportion_confint(8, 10, method="wilson")
    assert (table.loc["x", "ci_low"], table.loc["x", "ci_high"]) == pytest.approx((low, high))
    # Two-sided exact binomial test: 2 * (C(10,8) + C(10,9) + C(10,10)) / 2^10 = 112 / 1024.
    assert table.loc["x", "p_value"] == pytest.approx(112 / 1024)
    assert (table.loc["y", "n"], table.loc["y", "left"]) == (3, 1)


def test_it_rejects_a_side_that_is_not_a_or_b() -> None:
    votes = pd.DataFrame({"rater": ["x"], "value": ["A"], "left": ["middle"]})
    with pytest.raises(ValueError, match="rater 'x' has 'middle'"):
        left_preference(votes)
