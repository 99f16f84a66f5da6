"""Prediction-powered inference: PPI, PPI++, stratified weights, labels still needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW

from analysis.metrics import Estimate, Undefined
from analysis.metrics.ppi import (
    Moments,
    classical_mean,
    labels_needed,
    ppi_by_group,
    ppi_mean,
    tuned_lambda,
)

Z = stats.norm.ppf(0.975)


def audit(n_items: int = 5_000, n_labels: int = 200, accuracy: float = 0.8, seed: int = 0):
    """Human labels Y (35% wins) and judge verdicts agreeing with them 80% of the time."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.35).astype(float)
    judge = np.where(rng.random(n_items) < accuracy, truth, 1.0 - truth)
    labelled = rng.choice(n_items, n_labels, replace=False)
    return truth, judge, labelled


def test_it_reproduces_the_classical_interval_with_lambda_zero() -> None:
    truth, judge, labelled = audit()
    estimate = ppi_mean(truth[labelled], judge[labelled], judge, lam=0.0)
    low, high = DescrStatsW(truth[labelled]).zconfint_mean(alpha=0.05)
    assert estimate.value == pytest.approx(truth[labelled].mean(), abs=1e-12)
    assert estimate.ci == pytest.approx((low, high), abs=1e-12)
    assert classical_mean(truth[labelled]).ci == pytest.approx((low, high), abs=1e-12)


def test_it_follows_the_ppi_formula_with_lambda_one() -> None:
    truth, judge, labelled = audit(seed=1)
    y, f = truth[labelled], judge[labelled]
    theta = judge.mean() - (f - y).mean()
    se = np.sqrt(judge.var(ddof=1) / len(judge) + (f - y).var(ddof=1) / len(y))
    estimate = ppi_mean(y, f, judge, lam=1.0)
    assert estimate.value == pytest.approx(theta)
    assert estimate.ci == pytest.approx((theta - Z * se, theta + Z * se))


def test_it_shrinks_to_the_judge_only_interval_with_a_perfect_judge() -> None:
    truth, _, labelled = audit(seed=2)
    perfect = truth.copy()
    estimate = ppi_mean(truth[labelled], perfect[labelled], perfect, lam=1.0)
    judge_only = DescrStatsW(perfect).zconfint_mean(alpha=0.05)
    assert estimate.ci == pytest.approx(judge_only, abs=1e-12)
    tuned = ppi_mean(truth[labelled], perfect[labelled], perfect)
    assert tuned.ci is not None
    assert tuned.ci[1] - tuned.ci[0] <= judge_only[1] - judge_only[0] + 1e-12


def test_it_tunes_lambda_as_the_ppi_plus_plus_paper_does() -> None:
    truth, judge, labelled = audit(seed=3)
    y, f = truth[labelled], judge[labelled]
    unlabelled = np.delete(judge, labelled)
    n, big_n = len(y), len(unlabelled)
    covariance = np.mean((y - y.mean()) * (f - f.mean()))
    variance = np.var(np.concatenate([f, unlabelled]), ddof=1)
    expected = covariance / ((1 + n / big_n) * variance)
    assert 0 < expected < 1
    assert tuned_lambda(y, f, unlabelled) == pytest.approx(expected)
    estimate = ppi_mean(y, f, unlabelled)
    assert estimate.details["lambda"] == pytest.approx(expected)


def test_it_clips_lambda_to_zero_for_a_judge_that_disagrees_with_people() -> None:
    truth, _, labelled = audit(seed=4)
    contrary = 1.0 - truth
    assert tuned_lambda(truth[labelled], contrary[labelled], contrary) == 0.0
    estimate = ppi_mean(truth[labelled], contrary[labelled], contrary)
    assert estimate.ci == pytest.approx(classical_mean(truth[labelled]).ci)


def test_it_uses_the_stratified_estimator_with_inverse_probability_weights() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(120) < np.repeat([0.7, 0.2], 60)).astype(float)
    strata = np.repeat(["hard", "easy"], 60)
    # The population has 1,000 hard and 9,000 easy items; 60 labels from each.
    weights = np.where(strata == "hard", 1_000 / 60, 9_000 / 60)
    estimate = classical_mean(y, weights=weights, strata=strata)
    share = {"hard": 0.1, "easy": 0.9}
    mean = sum(share[h] * y[strata == h].mean() for h in share)
    var = sum(share[h] ** 2 * y[strata == h].var(ddof=1) / 60 for h in share)
    assert estimate.value == pytest.approx(mean)
    assert estimate.ci == pytest.approx((mean - Z * np.sqrt(var), mean + Z * np.sqrt(var)))
    unweighted = classical_mean(y)
    assert unweighted.value == pytest.approx(y.mean())
    assert abs(unweighted.value - mean) > 0.15  # type: ignore[operator]


def test_it_covers_the_human_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(6)
    truth, judge, _ = audit(n_items=10_000, seed=6)
    theta = truth.mean()
    runs = 400
    covered = {"classical": 0, "ppi": 0, "ppi++": 0}
    width = {"classical": 0.0, "ppi++": 0.0}
    for _ in range(runs):
        labelled = rng.choice(len(truth), 150, replace=False)
        for name, lam in (("classical", 0.0), ("ppi", 1.0), ("ppi++", "tune")):
            estimate = ppi_mean(truth[labelled], judge[labelled], judge, lam=lam)  # type: ignore[arg-type]
            assert estimate.ci is not None
            covered[name] += estimate.ci[0] <= theta <= estimate.ci[1]
            if name in width:
                width[name] += (estimate.ci[1] - estimate.ci[0]) / runs
    # Binomial(400, 0.95): outside [365, 392] with probability < 0.5%.
    for name, count in covered.items():
        assert 365 <= count <= 392, name
    assert width["ppi++"] < width["classical"]


def test_it_keeps_coverage_on_a_stratified_audit_only_with_weights() -> None:
    rng = np.random.default_rng(7)
    n = 10_000
    hard = rng.random(n) < 0.2
    truth = (rng.random(n) < np.where(hard, 0.7, 0.3)).astype(float)
    judge = np.where(rng.random(n) < 0.8, truth, 1.0 - truth)
    theta = truth.mean()
    runs, weighted, naive = 200, 0, 0
    for _ in range(runs):
        picks = np.concatenate(
            [
                rng.choice(np.flatnonzero(hard), 100, replace=False),
                rng.choice(np.flatnonzero(~hard), 100, replace=False),
            ]
        )
        w = np.where(hard[picks], hard.sum() / 100, (~hard).sum() / 100)
        strata = np.where(hard[picks], "hard", "easy")
        good = ppi_mean(truth[picks], judge[picks], judge, weights=w, strata=strata)
        bad = ppi_mean(truth[picks], judge[picks], judge)
        assert good.ci is not None and bad.ci is not None
        weighted += good.ci[0] <= theta <= good.ci[1]
        naive += bad.ci[0] <= theta <= bad.ci[1]
    assert weighted >= 180
    assert naive < 120


def test_it_estimates_how_many_more_labels_reach_a_half_width() -> None:
    truth, judge, _ = audit(n_items=20_000, seed=8)
    rng = np.random.default_rng(8)
    order = rng.permutation(len(truth))
    first = order[:150]
    estimate = ppi_mean(truth[first], judge[first], judge)
    need = labels_needed(estimate, 0.03)
    assert need.more is not None and need.more > 0
    assert need.reason == f"about {need.more} more labels for +/- 0.03"
    more = order[: 150 + need.more]
    later = ppi_mean(truth[more], judge[more], judge)
    assert later.ci is not None
    assert (later.ci[1] - later.ci[0]) / 2 == pytest.approx(0.03, rel=0.1)


def test_it_says_the_classical_labels_needed_from_the_square_root_law() -> None:
    y = np.random.default_rng(9).random(100) < 0.4
    estimate = classical_mean(y.astype(float))
    half = (estimate.ci[1] - estimate.ci[0]) / 2  # type: ignore[index]
    need = labels_needed(estimate, half / 2)
    assert need.total == pytest.approx(400, abs=1)
    assert labels_needed(estimate, half * 2).more == 0


def test_it_says_when_only_more_judge_verdicts_can_help() -> None:
    truth, judge, labelled = audit(n_items=300, seed=10)
    estimate = ppi_mean(truth[labelled], judge[labelled], judge, lam=1.0)
    need = labels_needed(estimate, 0.001)
    assert need.more is None and "more judge verdicts" in need.reason


def test_it_estimates_win_rates_per_group() -> None:
    truth, judge, labelled = audit(n_items=2_000, seed=11)
    human = np.full(len(truth), np.nan)
    human[labelled] = truth[labelled]
    frame = pd.DataFrame(
        {"model": np.where(np.arange(len(truth)) % 2, "gpt-4o", "llama"), "judge": judge,
         "human": human}
    )  # fmt: skip
    frame = pd.concat(
        [frame, pd.DataFrame({"model": ["solo", "solo"], "judge": [1.0, 0.0],
                              "human": [1.0, np.nan]})],
        ignore_index=True,
    )  # fmt: skip
    table = ppi_by_group(frame, "model").set_index("model")
    gpt = frame[frame["model"] == "gpt-4o"]
    mine = gpt[gpt["human"].notna()]
    expected = ppi_mean(mine["human"], mine["judge"], gpt["judge"])
    assert isinstance(expected, Estimate) and expected.ci is not None
    row = table.loc["gpt-4o"]
    assert (row["n_labelled"], row["n_judged"]) == (len(mine), len(gpt))
    assert (row["ppi"], row["ppi_low"], row["ppi_high"]) == pytest.approx(
        (expected.value, *expected.ci)
    )
    assert row["effective_labels"] > row["n_labelled"]
    assert table.loc["solo", "note"] == "fewer than 2 labelled items"


def test_it_is_undefined_for_a_stratum_with_a_single_label() -> None:
    result = classical_mean([1.0, 0.0, 1.0], strata=["a", "a", "b"])
    assert isinstance(result, Undefined)
    assert result.reason == "stratum 'b' has a single label: its variance is unknown"


def test_it_names_the_position_of_a_missing_label() -> None:
    with pytest.raises(ValueError, match=r"labels\[2\] is not a finite number"):
        ppi_mean([1.0, 0.0, np.nan], [1.0, 0.0, 1.0], [1.0, 0.0])


def test_it_refuses_a_lambda_outside_zero_and_one() -> None:
    with pytest.raises(ValueError, match=r"lam must be a number between 0 and 1 or 'tune'"):
        ppi_mean([1.0, 0.0], [1.0, 0.0], [1.0, 0.0], lam=2.0)


def test_it_gives_the_same_estimate_from_the_judges_moments_as_from_its_values() -> None:
    rng = np.random.default_rng(3)
    judge = rng.choice([0.0, 0.5, 1.0], size=5_000, p=[0.4, 0.1, 0.5])
    labelled = rng.choice(5_000, size=200, replace=False)
    truth = np.clip(judge[labelled] + rng.choice([-1.0, 0.0, 0.5], size=200), 0.0, 1.0)
    wins, ties = int((judge == 1.0).sum()), int((judge == 0.5).sum())
    moments = Moments.of_outcomes(wins, ties, len(judge) - wins - ties)
    assert moments.variance() == pytest.approx(float(np.var(judge, ddof=1)), rel=1e-12)
    for kwargs in ({}, {"weights": rng.uniform(1, 5, 200), "strata": rng.integers(0, 2, 200)}):
        from_values = ppi_mean(truth, judge[labelled], judge, **kwargs)
        from_moments = ppi_mean(truth, judge[labelled], moments, **kwargs)
        assert from_moments.value == pytest.approx(from_values.value, rel=1e-12)
        assert from_moments.ci == pytest.approx(from_values.ci, rel=1e-12)
