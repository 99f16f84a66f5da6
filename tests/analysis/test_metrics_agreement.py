"""Agreement coefficients: published worked examples, independent libraries, MT-Bench rules."""

from __future__ import annotations

import warnings
from typing import Literal

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats import inter_rater

from analysis.metrics import (
    S2,
    Estimate,
    Result,
    Undefined,
    cohen_kappa,
    confusion_matrix,
    constant_answer_baseline,
    fleiss_kappa,
    gwet_ac,
    human_ceiling,
    krippendorff_alpha,
    percent_agreement,
    scott_pi,
)
from analysis.metrics.outcomes import FEWER_THAN_TWO_RATERS, NO_ITEMS, ONE_CATEGORY

# METHODS.md section 2, worked examples.
COHEN_2X2 = [[20, 5], [10, 15]]
GWET_2014_3X3 = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
FLEISS_WIKIPEDIA = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]
_ = np.nan
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _three_decimals(result: Result, part: str | None = None) -> float:
    """The value (or one part of its formula) rounded as the published examples are."""
    assert isinstance(result, Estimate), result
    return round(result.value if part is None else float(result.details[part]), 3)


def _two_rater_votes(first: list[int], second: list[int]) -> pd.DataFrame:
    n = len(first)
    return pd.DataFrame(
        {
            "item": list(range(n)) * 2,
            "rater": ["r1"] * n + ["r2"] * n,
            "value": list(first) + list(second),
        }
    )


def _long(matrix: list[list[float]]) -> pd.DataFrame:
    array = np.asarray(matrix, dtype=float)
    raters, units = np.nonzero(~np.isnan(array))
    return pd.DataFrame({"item": units, "rater": raters, "value": array[raters, units]})


# --- worked examples ------------------------------------------------------------------------


def test_it_reproduces_the_cohen_2x2_example() -> None:
    kappa = cohen_kappa(COHEN_2X2)
    assert _three_decimals(kappa, "p_a") == 0.700
    assert _three_decimals(kappa, "p_e") == 0.500
    assert _three_decimals(kappa) == 0.400
    assert kappa.n == 50


def test_it_reproduces_scotts_pi_and_ac1_on_the_2x2_example() -> None:
    assert _three_decimals(scott_pi(COHEN_2X2)) == 0.394
    assert _three_decimals(gwet_ac(COHEN_2X2)) == 0.406


def test_it_reproduces_gwets_3x3_example() -> None:
    assert _three_decimals(cohen_kappa(GWET_2014_3X3)) == 0.796
    assert _three_decimals(cohen_kappa(GWET_2014_3X3, weights="linear")) == 0.843
    assert _three_decimals(cohen_kappa(GWET_2014_3X3, weights="quadratic")) == 0.892
    assert _three_decimals(gwet_ac(GWET_2014_3X3)) == 0.849


def test_it_reproduces_the_wikipedia_fleiss_example() -> None:
    kappa = fleiss_kappa(FLEISS_WIKIPEDIA)
    assert _three_decimals(kappa) == 0.210
    assert kappa.n == 10


def test_it_reproduces_krippendorffs_2011_example_with_missing_values() -> None:
    expected: dict[Literal["nominal", "ordinal", "interval"], float] = {
        "nominal": 0.743,
        "ordinal": 0.815,
        "interval": 0.849,
    }
    for level, value in expected.items():
        alpha = krippendorff_alpha(KRIPPENDORFF_2011, level_of_measurement=level)
        assert _three_decimals(alpha) == value, level
        # Unit 12 has a single value and is not pairable.
        assert alpha.n == 11
        from_votes = krippendorff_alpha(_long(KRIPPENDORFF_2011), level_of_measurement=level)
        assert from_votes.value == pytest.approx(alpha.value)


def test_it_gives_the_same_coefficient_from_votes_and_from_their_table() -> None:
    # The 2x2 example written out as 50 items rated by two raters.
    first = [0] * 25 + [1] * 25
    second = [0] * 20 + [1] * 5 + [0] * 10 + [1] * 15
    votes = _two_rater_votes(first, second)
    assert cohen_kappa(votes, "r1").value == pytest.approx(0.4)
    assert scott_pi(votes, "r1").value == pytest.approx(scott_pi(COHEN_2X2).value)
    assert gwet_ac(votes, "r1").value == pytest.approx(gwet_ac(COHEN_2X2).value)


# --- independent libraries --------------------------------------------------------------------

labels = st.integers(min_value=0, max_value=4)


@st.composite
def paired_labels(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    n = draw(st.integers(min_value=2, max_value=60))
    first = draw(st.lists(labels, min_size=n, max_size=n))
    second = draw(st.lists(labels, min_size=n, max_size=n))
    return first, second


@SETTINGS
@given(paired_labels(), st.sampled_from(["unweighted", "linear", "quadratic"]))
def test_cohen_kappa_matches_scikit_learn(
    pair: tuple[list[int], list[int]], weights: Literal["unweighted", "linear", "quadratic"]
) -> None:
    first, second = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cohen_kappa_score(
            first, second, weights=None if weights == "unweighted" else weights
        )
    result = cohen_kappa(_two_rater_votes(first, second), "r1", weights=weights)
    if np.isnan(expected):
        assert isinstance(result, Undefined)
    else:
        assert result.value == pytest.approx(expected, abs=1e-9)


@SETTINGS
@given(paired_labels())
def test_scotts_pi_matches_fleiss_kappa_of_statsmodels_for_two_raters(
    pair: tuple[list[int], list[int]],
) -> None:
    # With two raters per item Fleiss' kappa reduces to Scott's pi (Fleiss 1971).
    first, second = pair
    table, _ = inter_rater.aggregate_raters(np.column_stack([first, second]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = inter_rater.fleiss_kappa(table)
    result = scott_pi(_two_rater_votes(first, second), "r1")
    if np.isnan(expected):
        assert isinstance(result, Undefined)
    else:
        assert result.value == pytest.approx(expected, abs=1e-9)


@st.composite
def rated_items(draw: st.DrawFn) -> np.ndarray:
    """Items x raters labels, every item rated by the same number of raters."""
    n_items = draw(st.integers(min_value=1, max_value=30))
    n_raters = draw(st.integers(min_value=2, max_value=6))
    flat = draw(st.lists(labels, min_size=n_items * n_raters, max_size=n_items * n_raters))
    return np.asarray(flat).reshape(n_items, n_raters)


@SETTINGS
@given(rated_items())
def test_fleiss_kappa_matches_statsmodels(ratings: np.ndarray) -> None:
    table, _ = inter_rater.aggregate_raters(ratings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = inter_rater.fleiss_kappa(table)
    from_table = fleiss_kappa(table)
    items, raters = np.indices(ratings.shape)
    votes = pd.DataFrame({"item": items.ravel(), "rater": raters.ravel(), "value": ratings.ravel()})
    from_votes = fleiss_kappa(votes)
    if not np.isfinite(expected):
        assert isinstance(from_table, Undefined)
        assert isinstance(from_votes, Undefined)
    else:
        assert from_table.value == pytest.approx(expected, abs=1e-9)
        assert from_votes.value == pytest.approx(expected, abs=1e-9)


@st.composite
def reliability_data(draw: st.DrawFn) -> np.ndarray:
    """Raters x units values 1..5 with missing values."""
    n_raters = draw(st.integers(min_value=2, max_value=5))
    n_units = draw(st.integers(min_value=2, max_value=25))
    cell = st.one_of(st.just(np.nan), st.integers(min_value=1, max_value=5).map(float))
    flat = draw(st.lists(cell, min_size=n_raters * n_units, max_size=n_raters * n_units))
    return np.asarray(flat, dtype=float).reshape(n_raters, n_units)


@SETTINGS
@given(reliability_data(), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_krippendorff_alpha_matches_the_krippendorff_package(
    data: np.ndarray, level: Literal["nominal", "ordinal", "interval"]
) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    except ValueError:  # the package refuses a single observed value
        expected = np.nan
    result = krippendorff_alpha(data, level_of_measurement=level)
    if not np.isfinite(expected):
        assert isinstance(result, Undefined)
    else:
        assert result.value == pytest.approx(expected, abs=1e-9)


# --- degenerate input -----------------------------------------------------------------------


def test_it_calls_kappa_undefined_when_both_raters_used_one_category() -> None:
    result = cohen_kappa([[12, 0], [0, 0]])
    assert isinstance(result, Undefined)
    assert result.reason == ONE_CATEGORY
    assert result.n == 12
    assert isinstance(scott_pi([[12, 0], [0, 0]]), Undefined)


def test_it_calls_coefficients_undefined_without_items() -> None:
    empty = pd.DataFrame({"item": [], "rater": [], "value": []})
    for metric in (percent_agreement, cohen_kappa, scott_pi, gwet_ac):
        result = metric(empty, "judge")
        assert (result.value, result.reason) == (None, NO_ITEMS)
    assert fleiss_kappa(empty).reason == NO_ITEMS
    assert krippendorff_alpha(empty).reason == NO_ITEMS


def test_it_calls_multi_rater_coefficients_undefined_with_one_rater_per_item() -> None:
    votes = pd.DataFrame({"item": [1, 2, 3], "rater": ["a", "b", "a"], "value": ["A", "B", "A"]})
    assert fleiss_kappa(votes).reason == FEWER_THAN_TWO_RATERS
    assert krippendorff_alpha(votes).reason == FEWER_THAN_TWO_RATERS


def test_it_calls_multi_rater_coefficients_undefined_with_one_category() -> None:
    votes = _two_rater_votes([2, 2, 2], [2, 2, 2])
    assert fleiss_kappa(votes).reason == ONE_CATEGORY
    assert krippendorff_alpha(votes, level_of_measurement="interval").reason == ONE_CATEGORY


def test_it_stays_undefined_when_a_bootstrap_is_asked_for() -> None:
    result = cohen_kappa([[12, 0], [0, 0]], n_boot=200)
    assert isinstance(result, Undefined)
    assert result.ci is None


def test_it_rejects_a_non_square_table() -> None:
    with pytest.raises(ValueError, match="square"):
        cohen_kappa([[1, 2, 3], [4, 5, 6]])


# --- MT-Bench agreement -----------------------------------------------------------------------

# q1: judge A; humans A, A, tie.  q2: judge tie; humans tie, B.  q3: judge B; human A.
MT_BENCH_TOY = pd.DataFrame(
    [
        ("q1", "judge", "A"),
        ("q1", "h1", "A"),
        ("q1", "h2", "A"),
        ("q1", "h3", "tie"),
        ("q2", "judge", "tie"),
        ("q2", "h1", "tie"),
        ("q2", "h2", "B"),
        ("q3", "judge", "B"),
        ("q3", "h1", "A"),
    ],
    columns=["item", "rater", "value"],
)
HUMANS = ["h1", "h2", "h3"]


def test_it_counts_judge_agreement_once_per_human_vote_with_ties_kept() -> None:
    # S1: q1 2 of 3, q2 1 of 2 (tie = tie), q3 0 of 1 -> 3 of 6.
    result = percent_agreement(MT_BENCH_TOY, "judge", reference=HUMANS)
    assert result.value == pytest.approx(3 / 6)
    assert (result.details["agreements"], result.details["pairs"]) == (3, 6)
    assert (result.n, result.details["policy"]) == (3, "S1")


def test_it_drops_pairs_with_a_tie_on_either_side_under_s2() -> None:
    # S2: q1 2 of 2 (h3's tie dropped), q2 dropped (judge tie), q3 0 of 1 -> 2 of 3.
    result = percent_agreement(MT_BENCH_TOY, "judge", reference=HUMANS, policy=S2)
    assert result.value == pytest.approx(2 / 3)
    assert result.n == 2


def test_it_compares_every_pair_of_distinct_humans_for_the_ceiling() -> None:
    # S1: q1 pairs (A,A) (A,tie) (A,tie) -> 1 of 3; q2 (tie,B) -> 0 of 1; q3 one human.
    ceiling = human_ceiling(MT_BENCH_TOY, humans=HUMANS)
    assert ceiling.value == pytest.approx(1 / 4)
    assert ceiling.n == 2
    # S2: only (A,A) on q1 is left.
    assert human_ceiling(MT_BENCH_TOY, humans=HUMANS, policy=S2).value == 1.0


def test_it_scores_the_constant_majority_answer() -> None:
    # Humans said A three times (of six): a judge always saying A agrees 3 of 6.
    baseline = constant_answer_baseline(MT_BENCH_TOY, reference=HUMANS)
    assert baseline.details["answer"] == "A"
    assert baseline.value == pytest.approx(3 / 6)
    assert cohen_kappa(
        pd.concat(
            [
                MT_BENCH_TOY[MT_BENCH_TOY.rater != "judge"],
                pd.DataFrame({"item": ["q1", "q2", "q3"], "rater": "always-A", "value": "A"}),
            ]
        ),
        "always-A",
        reference=HUMANS,
    ).value == pytest.approx(0.0)
    assert constant_answer_baseline(
        MT_BENCH_TOY, reference=HUMANS, metric="cohen_kappa"
    ).value == pytest.approx(0.0)


def test_it_tabulates_judge_verdicts_against_human_votes() -> None:
    table = confusion_matrix(MT_BENCH_TOY, "judge", reference=HUMANS)
    assert list(table.index) == ["A", "tie", "B"]
    assert table.loc["A", "A"] == 2
    assert table.loc["A", "tie"] == 1
    assert table.loc["tie", "B"] == 1
    assert table.loc["B", "A"] == 1
    assert table.to_numpy().sum() == 6
    assert np.trace(table.to_numpy()) / table.to_numpy().sum() == pytest.approx(3 / 6)


def test_the_human_kappa_ceiling_pools_pairs_symmetrically() -> None:
    ceiling_kappa = human_ceiling(MT_BENCH_TOY, humans=HUMANS, metric="cohen_kappa")
    ceiling_pi = human_ceiling(MT_BENCH_TOY, humans=HUMANS, metric="scott_pi")
    assert ceiling_kappa.value == pytest.approx(ceiling_pi.value)
    alpha = human_ceiling(MT_BENCH_TOY, humans=HUMANS, metric="krippendorff_alpha")
    assert alpha.value == pytest.approx(
        krippendorff_alpha(MT_BENCH_TOY[MT_BENCH_TOY.rater.isin(HUMANS)]).value
    )


def test_it_rejects_an_unknown_ceiling_metric() -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        human_ceiling(MT_BENCH_TOY, humans=HUMANS, metric="accuracy")
