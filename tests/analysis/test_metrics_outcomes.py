"""Verdict vocabulary, tie policies, result types and vote-table checks."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.metrics import (
    S1,
    S2,
    Estimate,
    TiePolicy,
    Undefined,
    combine_orders,
    parse_outcome,
    percent_agreement,
    swap,
)
from analysis.metrics.votes import code_votes


def test_it_reads_the_verdict_spellings_of_public_datasets() -> None:
    assert [parse_outcome(v) for v in ["model_a", "B", "tie (bothbad)", " Tie "]] == [
        "A",
        "B",
        "both_bad",
        "tie",
    ]


def test_it_names_an_unknown_verdict() -> None:
    with pytest.raises(ValueError, match="'C'"):
        parse_outcome("C")


def test_it_swaps_sides_and_leaves_ties_alone() -> None:
    assert [swap(v) for v in ["A", "B", "tie", "both_bad"]] == ["B", "A", "tie", "both_bad"]


def test_it_turns_a_verdict_that_flips_with_the_order_into_a_tie() -> None:
    combined = combine_orders(["A", "A", "B", "both_bad"], ["A", "B", "B", "tie"])
    assert list(combined) == ["A", "tie", "B", "tie"]


def test_it_states_each_policys_scale_and_chance_level() -> None:
    assert S1.categories == ("A", "tie", "B")
    assert S1.chance_level == pytest.approx(1 / 3)
    assert S2.categories == ("A", "B")
    assert S2.chance_level == pytest.approx(1 / 2)
    keep_both_bad = TiePolicy("S1-both-bad", drop_ties=False, both_bad_is_tie=False)
    assert keep_both_bad.categories == ("A", "tie", "both_bad", "B")


def test_it_drops_ties_and_both_bad_under_s2_only() -> None:
    values = pd.Series(["A", "tie", "both_bad", "B"])
    assert list(S1.apply(values)) == ["A", "tie", "tie", "B"]
    assert list(S2.apply(values)) == ["A", "B"]


def test_it_counts_both_bad_as_a_tie_unless_the_policy_keeps_it_apart() -> None:
    votes = pd.DataFrame(
        {"item": [1, 1], "rater": ["judge", "human"], "value": ["tie", "both_bad"]}
    )
    assert percent_agreement(votes, "judge").value == 1.0
    apart = TiePolicy("S1-both-bad", drop_ties=False, both_bad_is_tie=False)
    assert percent_agreement(votes, "judge", policy=apart).value == 0.0


def test_results_share_the_attributes_a_page_reads() -> None:
    defined = Estimate(value=0.4, n=50)
    undefined = Undefined("only one category observed", n=12)
    assert (defined.defined, defined.value, defined.reason) == (True, 0.4, None)
    assert (undefined.defined, undefined.value, undefined.ci) == (False, None, None)
    assert undefined.reason == "only one category observed"


def test_it_rejects_a_rater_voting_twice_on_an_item() -> None:
    votes = pd.DataFrame({"item": [7, 7], "rater": ["ann", "ann"], "value": ["A", "B"]})
    with pytest.raises(ValueError, match="rater 'ann' has more than one vote on item 7"):
        code_votes(votes)


def test_it_names_a_missing_column() -> None:
    with pytest.raises(ValueError, match=r"missing column.*'rater'"):
        code_votes(pd.DataFrame({"item": [1], "value": ["A"]}))


def test_it_names_a_value_outside_the_categories() -> None:
    votes = pd.DataFrame({"item": [1, 1], "rater": ["a", "b"], "value": ["A", "maybe"]})
    with pytest.raises(ValueError, match="'maybe' is not one of the categories"):
        code_votes(votes, categories=["A", "tie", "B"])


def test_it_rejects_an_item_spread_over_two_clusters() -> None:
    votes = pd.DataFrame(
        {"item": [1, 1], "rater": ["a", "b"], "value": ["A", "B"], "prompt": ["p1", "p2"]}
    )
    with pytest.raises(ValueError, match="item 1 belongs to more than one 'prompt'"):
        code_votes(votes, cluster="prompt")


def test_it_refuses_coded_votes_under_another_policy() -> None:
    votes = pd.DataFrame({"item": [1, 1], "rater": ["a", "b"], "value": ["A", "B"]})
    coded = code_votes(votes, policy=S1)
    assert percent_agreement(coded, "a").value == 0.0
    with pytest.raises(ValueError, match="coded under S1"):
        percent_agreement(coded, "a", policy=S2)


def test_it_skips_missing_values_as_not_rated() -> None:
    votes = pd.DataFrame(
        {"item": [1, 1, 2, 2], "rater": ["a", "b", "a", "b"], "value": ["A", "A", "B", None]}
    )
    result = percent_agreement(votes, "a")
    assert (result.value, result.n) == (1.0, 1)


def test_it_accepts_a_table_with_a_repeated_index() -> None:
    # pd.concat without ignore_index repeats row labels; that must not matter.
    judge = pd.DataFrame({"item": [1, 2], "rater": "judge", "value": ["A", "B"]})
    human = pd.DataFrame({"item": [1, 2], "rater": "human", "value": ["A", "A"]})
    assert percent_agreement(pd.concat([judge, human]), "judge").value == 0.5
