"""Drift between two judges: flip rate and matrix, agreement change, McNemar, shifted slices,
agreement in both orders and position consistency per slice (analysis/metrics/drift.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from analysis.metrics import drift
from analysis.metrics.agreement import cohen_kappa

VERDICTS = np.array(["A", "tie", "B"], dtype=object)


def test_it_counts_the_flip_matrix_and_rate() -> None:
    first = ["A", "A", "B", "tie", "both_bad", None, "B"]
    second = ["A", "B", "B", "A", "tie", "A", "tie"]
    matrix = drift.flip_matrix(first, second)
    # rows first (A, tie, B), columns second; both_bad reads as tie; the None pair is left out
    assert matrix.tolist() == [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
    rate = drift.flip_rate(first, second, n_boot=0)
    assert rate.value == pytest.approx(3 / 6)
    assert rate.details["flips"] == 3 and rate.n == 6


def test_it_names_the_place_of_a_bad_verdict() -> None:
    with pytest.raises(ValueError, match=r"second\[2\] is 'C'"):
        drift.flip_matrix(["A", "A", "A"], ["A", "B", "C"])


@pytest.mark.parametrize(("b", "c"), [(3, 9), (0, 5), (12, 30), (40, 41), (7, 7)])
def test_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    # 20 pairs both right, 10 both wrong, b first-only right, c second-only right
    first = [True] * 20 + [False] * 10 + [True] * b + [False] * c
    second = [True] * 20 + [False] * 10 + [False] * b + [True] * c
    ours = drift.mcnemar(first, second)
    exact = b + c < drift.EXACT_BELOW
    reference = sm_mcnemar([[20, b], [c, 10]], exact=exact, correction=True)
    assert (ours["b"], ours["c"]) == (b, c)
    assert ours["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(0, 0.004, size=8), rng.uniform(0, 1, size=32)])
    rejected, adjusted = drift.benjamini_hochberg(p, 0.05)
    ref_rejected, ref_adjusted, *_ = multipletests(p, alpha=0.05, method="fdr_bh")
    assert rejected.tolist() == ref_rejected.tolist()
    assert adjusted == pytest.approx(ref_adjusted)
    assert 0 < rejected.sum() < len(p)


def test_the_slice_flip_test_is_fishers_exact_with_mid_p() -> None:
    # slice: 12 flips in 80 pairs; all: 42 flips in 480 pairs
    table = [[12, 68], [30, 370]]
    exact = stats.fisher_exact(table, alternative="greater").pvalue
    # P(X = 12) by direct counting: C(42, 12) C(438, 68) / C(480, 80)
    point = math.comb(42, 12) * math.comb(438, 68) / math.comb(480, 80)
    assert drift.flip_excess_p(12, 80, 42, 480) == pytest.approx(exact - point / 2, rel=1e-9)
    assert drift.flip_excess_p(0, 80, 42, 480) == pytest.approx(1 - point_at(0) / 2)
    assert drift.flip_excess_p(5, 80, 5, 80) == 1.0  # the slice is everything


def point_at(k: int) -> float:
    return math.comb(42, k) * math.comb(438, 80 - k) / math.comb(480, 80)


def _people_and_judges(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    people = rng.choice(VERDICTS, n, p=[0.45, 0.1, 0.45])
    first = np.where(rng.random(n) < 0.7, people, rng.choice(VERDICTS, n))
    second = np.where(rng.random(n) < 0.6, people, rng.choice(VERDICTS, n))
    return first, second, people


def test_agreement_change_gives_both_judges_and_a_paired_delta() -> None:
    first, second, people = _people_and_judges(400, 1)
    prompts = np.arange(400) // 2
    result = drift.agreement_change(first, second, people, clusters=prompts, n_boot=400, seed=2)
    votes = pd.DataFrame(
        {
            "item": np.tile(np.arange(400), 2),
            "rater": ["judge"] * 400 + ["people"] * 400,
            "value": np.concatenate([first, people]),
        }
    )
    kappa = cohen_kappa(votes, "judge")
    entry = result["kinds"]["cohen_kappa"]
    assert entry["first"]["value"] == pytest.approx(kappa.value, abs=1e-6)
    pa_one = float(np.mean(first == people))
    pa_two = float(np.mean(second == people))
    delta = result["kinds"]["percent_agreement"]["delta"]
    assert delta["value"] == pytest.approx(pa_two - pa_one, abs=1e-6)
    assert delta["ci"][0] < pa_two - pa_one < delta["ci"][1]
    # paired: the delta's interval is narrower than the two intervals' widths added up
    width = delta["ci"][1] - delta["ci"][0]
    one, two = (result["kinds"]["percent_agreement"][k]["ci"] for k in ("first", "second"))
    assert width < (one[1] - one[0]) + (two[1] - two[0])
    ours = result["mcnemar"]
    b = int(np.sum((first == people) & (second != people)))
    c = int(np.sum((first != people) & (second == people)))
    assert (ours["b"], ours["c"]) == (b, c)
    assert ours["p_value"] == pytest.approx(
        sm_mcnemar([[0, b], [c, 0]], exact=False, correction=True).pvalue
    )


def _orders_fixture() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 240
    people = rng.choice(VERDICTS, n)
    ab = np.where(rng.random(n) < 0.7, people, rng.choice(VERDICTS, n))
    ba = np.where(rng.random(n) < 0.6, ab, rng.choice(VERDICTS, n))
    ba[::17] = None
    return pd.DataFrame(
        {
            "people": people,
            "ab": ab,
            "ba": ba,
            "category": rng.choice(["code", "math", "chat"], n),
        }
    )


def test_agreement_in_both_orders_equals_a_plain_recomputation() -> None:
    frame = _orders_fixture()
    ours = drift.order_agreement(frame["ab"], frame["ba"], frame["people"], n_boot=0)
    # written independently: drop pairs missing an order, then count
    plain = frame.dropna(subset=["ab", "ba", "people"])
    both = ((plain["ab"] == plain["people"]) & (plain["ba"] == plain["people"])).mean()
    assert ours["n"] == len(plain)
    assert ours["both_orders"]["value"] == pytest.approx(both, abs=1e-6)
    assert ours["original_order"]["value"] == pytest.approx(
        (plain["ab"] == plain["people"]).mean(), abs=1e-6
    )
    assert ours["swapped_order"]["value"] == pytest.approx(
        (plain["ba"] == plain["people"]).mean(), abs=1e-6
    )
    assert ours["both_orders"]["value"] <= min(
        ours["original_order"]["value"], ours["swapped_order"]["value"]
    )


def test_position_consistency_per_slice_equals_a_plain_recomputation() -> None:
    frame = _orders_fixture()
    ours = drift.position_by_slice(frame["ab"], frame["ba"], frame, ["category"])
    plain = (
        frame.dropna(subset=["ab", "ba"])
        .assign(same=lambda f: f["ab"] == f["ba"])
        .groupby("category")["same"]
        .agg(["mean", "size"])
    )
    assert set(ours["category"]) == set(plain.index)
    for value, row in plain.iterrows():
        assert ours["category"][value]["value"] == pytest.approx(row["mean"], abs=1e-6)
        assert ours["category"][value]["n"] == row["size"]


def _other(rng: np.random.Generator, verdict: str) -> str:
    return str(rng.choice([v for v in VERDICTS if v != verdict]))


def _planted(seed: int, planted_share: float) -> tuple[pd.DataFrame, str]:
    """600 pairs in 6 categories; v2 = v1 except, in category ``c3`` only, ``planted_share``
    of its pairs flip to another verdict; elsewhere a 5% background of random re-draws."""
    rng = np.random.default_rng(seed)
    n = 600
    category = np.repeat([f"c{i}" for i in range(6)], n // 6)
    first = rng.choice(VERDICTS, n, p=[0.45, 0.1, 0.45])
    second = first.copy()
    background = rng.random(n) < 0.05
    second[background] = np.array([_other(rng, v) for v in first[background]])
    if planted_share:
        target = np.flatnonzero(category == "c3")
        chosen = rng.choice(target, round(planted_share * len(target)), replace=False)
        second[target] = first[target]
        second[chosen] = np.array([_other(rng, v) for v in first[chosen]])
    frame = pd.DataFrame(
        {"first": first, "second": second, "category": category, "prompt": np.arange(n) // 2}
    )
    return frame, "c3"


def test_a_planted_flip_in_one_slice_is_listed_first_with_its_rate_inside_the_interval() -> None:
    frame, planted = _planted(seed=5, planted_share=0.30)
    figures = drift.drift_figures(frame, slices=["category"], n_boot=1000, seed=1)
    top = figures["slices"][0]
    assert (top["slice"], top["value"], top["shifted"]) == ("category", planted, True)
    assert top["why"] == ["flip"]
    low, high = top["flip_rate_ci"]
    assert low <= 0.30 <= high
    assert figures["shifted"] == 1  # no other category is called shifted


def test_without_a_planted_change_false_shifted_slices_occur_at_about_alpha() -> None:
    alpha, runs = 0.10, 200
    false_runs = 0
    for seed in range(runs):
        frame, _ = _planted(seed=1000 + seed, planted_share=0.0)
        rows = drift.slice_tests(frame, ["category"], alpha=alpha)
        false_runs += any(row["shifted"] for row in rows)
    # Under no change BH's chance of any rejection is about alpha; a 99.9% binomial band
    low, high = stats.binom.ppf([0.0005, 0.9995], runs, alpha)
    assert low <= false_runs <= high, false_runs


def test_length_buckets_split_pairs_in_thirds_as_pandas_qcut_does() -> None:
    lengths = [70, 10, 20, 30, 40, None, 50, 60, 90, 80, 15, 85]
    buckets = drift.length_buckets(lengths)
    known = pd.Series([x for x in lengths if x is not None], dtype=float)
    expected = pd.qcut(known, 3, labels=["short", "medium", "long"]).astype(object).tolist()
    assert [b for b in buckets if b is not None] == expected
    assert buckets[5] is None
    assert list(buckets[:4]) == ["long", "short", "short", "short"]


def test_gate_figures_name_flip_rates_by_slice_and_agreement_deltas() -> None:
    first, second, people = _people_and_judges(200, 4)
    frame = pd.DataFrame(
        {
            "first": first,
            "second": second,
            "people": people,
            "category": np.repeat(["x", "y"], 100),
        }
    )
    figures = drift.drift_figures(frame, slices=["category"], n_boot=200)
    gate = drift.gate_figures(figures)
    assert set(gate["flip_rate"]) == {"all", "category=x", "category=y"}
    assert gate["flip_rate"]["all"]["value"] == pytest.approx(np.mean(first != second), abs=1e-6)
    assert gate["delta.cohen_kappa"]["all"]["ci"] is not None


def test_a_slice_from_few_prompts_gives_the_gate_no_interval() -> None:
    first, second, people = _people_and_judges(200, 6)
    prompts = np.concatenate([np.arange(100), 1000 + np.arange(100) % 3])  # y: 3 prompts
    frame = pd.DataFrame(
        {
            "first": first,
            "second": second,
            "people": people,
            "prompt": prompts,
            "category": np.repeat(["x", "y"], 100),
        }
    )
    figures = drift.drift_figures(frame, slices=["category"], n_boot=200)
    rows = {row["value"]: row for row in figures["slices"]}
    assert (rows["x"]["clusters"], rows["y"]["clusters"]) == (100, 3)
    gate = drift.gate_figures(figures)
    assert gate["flip_rate"]["category=x"]["ci"] is not None
    assert gate["flip_rate"]["category=y"]["ci"] is None
    assert gate["flip_rate"]["category=y"]["value"] == rows["y"]["flip_rate"]
