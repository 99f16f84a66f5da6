"""Bradley-Terry strengths, rank correlations and separability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.metrics import (
    Ranking,
    Undefined,
    bradley_terry,
    kendall_tau,
    separability,
    spearman_rho,
)
from analysis.metrics.ranking import _log_win_probability

PLANTED = {f"model-{k}": s for k, s in enumerate(np.linspace(-1.5, 1.5, 8))}


def _simulate(n: int, seed: int, tie_share: float = 0.1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = np.array(list(PLANTED))
    strength = np.array(list(PLANTED.values()))
    a = rng.integers(0, len(names), size=n)
    b = (a + rng.integers(1, len(names), size=n)) % len(names)
    p_a = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(n)
    decided = rng.random(n) >= tie_share
    value = np.where(decided, np.where(u < p_a, "A", "B"), "tie")
    return pd.DataFrame(
        {
            "model_a": names[a],
            "model_b": names[b],
            "value": value,
            "prompt": rng.integers(0, n // 3, n),
        }
    )


def test_it_recovers_the_order_of_planted_strengths() -> None:
    ranking = bradley_terry(_simulate(6000, seed=0), n_boot=300, seed=0)
    assert isinstance(ranking, Ranking)
    assert list(ranking.table.index) == sorted(PLANTED, key=PLANTED.__getitem__, reverse=True)
    assert kendall_tau(ranking, PLANTED).value == pytest.approx(1.0)


def test_its_intervals_cover_the_planted_strengths() -> None:
    # Without ties the simulated votes follow the model exactly (random ties, counted as half
    # wins, would pull every strength toward 0).
    ranking = bradley_terry(_simulate(6000, seed=2, tie_share=0.0), n_boot=500, seed=0)
    assert isinstance(ranking, Ranking)
    truth = (pd.Series(PLANTED) - np.mean(list(PLANTED.values())))[ranking.table.index]
    inside = (ranking.table["ci_low"] <= truth) & (truth <= ranking.table["ci_high"])
    assert inside.sum() >= 6
    assert separability(ranking).value == 1.0


def test_it_matches_a_logistic_regression_fit_by_statsmodels() -> None:
    comparisons = _simulate(800, seed=3)
    ranking = bradley_terry(comparisons)
    assert isinstance(ranking, Ranking)
    names = list(PLANTED)
    # One row per decided vote, two half-weight rows per tie; columns +1 for model_a, -1 for
    # model_b; the first model's column is dropped to fix the scale's origin.
    rows, outcome, weight = [], [], []
    for a, b, value in comparisons[["model_a", "model_b", "value"]].itertuples(index=False):
        x = np.zeros(len(names))
        x[names.index(a)], x[names.index(b)] = 1.0, -1.0
        for y, w in (
            [(1.0, 1.0)]
            if value == "A"
            else [(0.0, 1.0)]
            if value == "B"
            else [(1.0, 0.5), (0.0, 0.5)]
        ):
            rows.append(x[1:])
            outcome.append(y)
            weight.append(w)
    fit = sm.GLM(
        np.array(outcome),
        np.array(rows),
        family=sm.families.Binomial(),
        freq_weights=np.array(weight),
    ).fit(tol=1e-12)
    expected = np.concatenate([[0.0], fit.params])
    expected -= expected.mean()
    assert ranking.table.loc[names, "strength"].to_numpy() == pytest.approx(expected, abs=1e-6)


def test_it_counts_a_tie_as_half_a_win_for_each_side() -> None:
    # x beats y 3 times, loses once, ties twice: wins 4 vs 2, so b_x - b_y = log(4 / 2).
    comparisons = pd.DataFrame(
        {
            "model_a": ["x"] * 6,
            "model_b": ["y"] * 6,
            "value": ["A", "A", "A", "B", "tie", "both_bad"],
        }
    )
    ranking = bradley_terry(comparisons)
    assert isinstance(ranking, Ranking)
    table = ranking.table
    assert table.loc["x", "strength"] - table.loc["y", "strength"] == pytest.approx(np.log(2))
    assert (table.loc["x", "wins"], table.loc["x", "games"]) == (4.0, 6.0)


def test_it_is_undefined_when_a_model_never_loses_unless_smoothed() -> None:
    comparisons = pd.DataFrame(
        {"model_a": ["x", "x", "y"], "model_b": ["y", "z", "z"], "value": ["A", "A", "B"]}
    )
    result = bradley_terry(comparisons)
    assert isinstance(result, Undefined)
    assert "not identifiable" in result.reason
    smoothed = bradley_terry(comparisons, pseudo_count=1.0)
    assert isinstance(smoothed, Ranking)
    assert smoothed.table.index[0] == "x"


def test_clustered_bootstrap_gives_reproducible_intervals() -> None:
    comparisons = _simulate(3000, seed=5)
    first = bradley_terry(comparisons, cluster="prompt", n_boot=200, seed=1)
    again = bradley_terry(comparisons, cluster="prompt", n_boot=200, seed=1)
    assert isinstance(first, Ranking) and isinstance(again, Ranking)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert (first.table["ci_low"] < first.table["strength"]).all()
    assert (first.table["strength"] < first.table["ci_high"]).all()


def test_it_correlates_rankings_over_their_common_models() -> None:
    truth = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    assert kendall_tau(truth, {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0}).value == pytest.approx(-1.0)
    # One adjacent swap among four: tau = (5 - 1) / 6, rho = 1 - 6 * 2 / (4 * 15).
    one_swap = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0, "extra": 9.0}
    tau = kendall_tau(truth, one_swap)
    assert (tau.value, tau.n) == (pytest.approx(4 / 6), 4)
    assert spearman_rho(truth, one_swap).value == pytest.approx(1 - 12 / 60)
    assert isinstance(kendall_tau(truth, {"a": 1.0}), Undefined)


def test_it_measures_separability_from_non_overlapping_intervals() -> None:
    table = pd.DataFrame(
        {"strength": [2.5, 1.0, 0.5], "ci_low": [2.0, 0.5, 0.0], "ci_high": [3.0, 1.5, 1.0]},
        index=["top", "middle", "bottom"],
    )
    # top is apart from both; middle and bottom overlap on [0.5, 1.0].
    result = separability(Ranking(table=table, n=100))
    assert result.value == pytest.approx(2 / 3)
    assert result.n == 3
    no_ci = table.assign(ci_low=np.nan, ci_high=np.nan)
    assert isinstance(separability(Ranking(table=no_ci, n=100)), Undefined)


def test_it_rejects_a_model_compared_with_itself() -> None:
    comparisons = pd.DataFrame({"model_a": ["x"], "model_b": ["x"], "value": ["A"]})
    with pytest.raises(ValueError, match="row 0 compares model 'x' with itself"):
        bradley_terry(comparisons)


def test_its_log_win_probabilities_are_numpys_logaddexp_to_the_bit() -> None:
    # The fit reads log sigmoid(b_i - b_j) from one logaddexp per unordered pair; every entry
    # must be the float -logaddexp(0, b_j - b_i) gives, ties and large gaps included.
    rng = np.random.default_rng(5)
    strength = rng.normal(size=(500, 7)) * np.array([[0.001, 0.5, 1, 3, 20, 300, 1]])
    strength[::3, 2] = strength[::3, 4]  # equal strengths: a difference of exactly 0
    expected = -np.logaddexp(0.0, strength[:, np.newaxis, :] - strength[:, :, np.newaxis])
    found = _log_win_probability(strength)
    assert found.shape == expected.shape
    assert found.tobytes() == expected.tobytes()
