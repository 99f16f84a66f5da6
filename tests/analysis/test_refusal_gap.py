"""The refusal gap: rates by class, Pasch's LPM with cluster-robust SEs, the stacked gap model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from threadpoolctl import threadpool_limits

from analysis.metrics import Estimate, Undefined
from analysis.metrics.refusal import (
    ETHICAL_REFUSAL,
    TECHNICAL_REFUSAL,
    checked_sides,
    class_rates,
    gap_table,
    lpm_design,
    moderation_gap,
    refusal_lpm,
    response_sides,
)
from bench.simulation import PlantedStudy, simulate_study

ROOT = Path(__file__).resolve().parents[2]


def small_pairs() -> tuple[pd.DataFrame, pd.DataFrame]:
    pairs = pd.DataFrame(
        {
            "pair_id": [1, 2, 3],
            "class_a": ["ethical_refusal", "normal", "normal"],
            "class_b": ["normal", "technical_refusal", "normal"],
            "tokens_a": [40, 300, 200],
            "tokens_b": [250, 60, 180],
            "sim_a": [0.2, 0.8, 0.6],
            "sim_b": [0.7, 0.3, 0.5],
        }
    )
    verdicts = pd.DataFrame(
        {
            "pair_id": [1, 2, 3, 1, 2, 3],
            "rater": ["human"] * 3 + ["gpt-4o"] * 3,
            "verdict": ["B", "A", "tie", "A", "model_b", "both_bad"],
        }
    )
    return pairs, verdicts


def simulated_sides(n_pairs: int = 400, seed: int = 3) -> pd.DataFrame:
    data = simulate_study(PlantedStudy(), n_pairs, seed=seed)
    return response_sides(data.pairs, data.verdicts)


def test_it_makes_one_row_per_side_with_outcome_length_difference_and_class() -> None:
    pairs, verdicts = small_pairs()
    sides = response_sides(pairs, verdicts).set_index(["rater", "pair_id", "side"])
    assert len(sides) == 12
    refusal = sides.loc[("human", 1, "A")]
    assert refusal["response_class"] == "ethical_refusal"
    assert refusal["other_class"] == "normal"
    assert refusal["won"] == 0.0
    assert refusal["len_diff"] == 40 - 250
    assert refusal["sim"] == 0.2 and refusal["sim_other"] == 0.7
    assert sides.loc[("human", 1, "B"), "won"] == 1.0
    assert sides.loc[("human", 3, "A"), "won"] == 0.5
    assert sides.loc[("gpt-4o", 2, "B"), "won"] == 1.0  # "model_b" read as B
    assert sides.loc[("gpt-4o", 3, "B"), "won"] == 0.5  # both_bad counts as a tie


def test_it_gives_win_loss_and_tie_rates_with_wilson_intervals() -> None:
    sides = simulated_sides()
    rates = class_rates(sides).set_index(["rater", "response_class"])
    mine = sides[(sides["rater"] == "judge") & (sides["response_class"] == ETHICAL_REFUSAL)]
    row = rates.loc[("judge", ETHICAL_REFUSAL)]
    wins, losses = int((mine["won"] == 1).sum()), int((mine["won"] == 0).sum())
    assert (row["n"], row["wins"], row["losses"]) == (len(mine), wins, losses)
    assert row["win_rate"] + row["loss_rate"] + row["tie_rate"] == pytest.approx(1.0)
    low, high = proportion_confint(wins, len(mine), alpha=0.05, method="wilson")
    assert (row["win_low"], row["win_high"]) == pytest.approx((low, high))
    low, high = proportion_confint(row["ties"], len(mine), alpha=0.05, method="wilson")
    assert (row["tie_low"], row["tie_high"]) == pytest.approx((low, high))


def test_it_gives_the_win_loss_ratio_with_a_log_scale_interval() -> None:
    sides = simulated_sides()
    row = (
        class_rates(sides, level=0.9)
        .set_index(["rater", "response_class"])
        .loc[("human", TECHNICAL_REFUSAL)]
    )
    wins, losses = row["wins"], row["losses"]
    z = stats.norm.ppf(0.95)
    spread = z * np.sqrt(1 / wins + 1 / losses)
    assert row["wl_ratio"] == pytest.approx(wins / losses)
    assert row["wl_low"] == pytest.approx(wins / losses * np.exp(-spread))
    assert row["wl_high"] == pytest.approx(wins / losses * np.exp(spread))


def test_it_leaves_the_ratio_empty_when_a_class_never_loses() -> None:
    pairs, verdicts = small_pairs()
    rates = class_rates(response_sides(pairs, verdicts)).set_index(["rater", "response_class"])
    never_lost = rates.loc[("gpt-4o", "ethical_refusal")]
    assert never_lost["losses"] == 0 and np.isnan(never_lost["wl_ratio"])


def _hand_cluster_sandwich(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """CR1: (X'X)^-1 [sum_g X_g' e_g e_g' X_g] (X'X)^-1 * G/(G-1) * (N-1)/(N-K)."""
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = y - x @ beta
    bread = np.linalg.inv(x.T @ x)
    meat = np.zeros((x.shape[1], x.shape[1]))
    labels = np.unique(groups)
    for label in labels:
        score = x[groups == label].T @ residual[groups == label]
        meat += np.outer(score, score)
    n, k, g = x.shape[0], x.shape[1], len(labels)
    return bread @ meat @ bread * g / (g - 1) * (n - 1) / (n - k)


def test_it_matches_numpy_least_squares_and_a_hand_written_cluster_sandwich() -> None:
    sides = simulated_sides()
    inputs = lpm_design(sides, "judge")
    model = refusal_lpm(sides, "judge")
    x = inputs.design.to_numpy(float)
    beta = np.linalg.lstsq(x, inputs.y, rcond=None)[0]
    cov = _hand_cluster_sandwich(x, inputs.y, inputs.clusters)
    assert model.terms == tuple(inputs.design.columns)
    np.testing.assert_allclose(model.params, beta, atol=1e-10)
    np.testing.assert_allclose(model.cov, cov, rtol=1e-8)
    eth = model.estimate("EthRef")
    assert isinstance(eth, Estimate) and eth.ci is not None
    index = model.terms.index("EthRef")
    se = np.sqrt(cov[index, index])
    groups = len(np.unique(inputs.clusters))
    t = stats.t.ppf(0.975, groups - 1)
    assert eth.ci == pytest.approx((beta[index] - t * se, beta[index] + t * se))
    assert eth.details["p_value"] == pytest.approx(
        2 * stats.t.sf(abs(beta[index]) / se, groups - 1)
    )


def test_it_agrees_with_a_statsmodels_formula_fit_on_a_hand_built_table() -> None:
    sides = simulated_sides()
    human = sides[(sides["rater"] == "human") & (sides["won"] != 0.5)].copy()
    scale = sides.drop_duplicates(["pair_id", "side"])["len_diff"].std()
    for name, cls in {
        "EthRef": "ethical_refusal",
        "TechRef": "technical_refusal",
        "EthDisc": "ethical_disclaimer",
        "TechDisc": "technical_disclaimer",
    }.items():
        human[name] = (human["response_class"] == cls).astype(float)
    human["len_z"] = human["len_diff"] / scale
    fit = smf.ols("won ~ EthRef + TechRef + EthDisc + TechDisc + len_z + sim", human).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(human["pair_id"])[0]}
    )
    table = refusal_lpm(sides, "human").table
    for mine, theirs in [("const", "Intercept"), ("EthRef", "EthRef"), ("len_diff", "len_z")]:
        assert table.loc[mine, "coef_pp"] == pytest.approx(100 * fit.params[theirs])
        assert table.loc[mine, "se_pp"] == pytest.approx(100 * fit.bse[theirs])


def test_it_counts_ties_as_half_a_win_in_the_sensitivity_run() -> None:
    sides = simulated_sides()
    human = sides[sides["rater"] == "human"]
    dropped = refusal_lpm(sides, "human")
    halves = refusal_lpm(sides, "human", ties="half")
    assert dropped.n_rows == int((human["won"] != 0.5).sum())
    assert halves.n_rows == len(human)
    assert halves.ties == "half"
    assert halves.table.loc["EthRef", "coef_pp"] != dropped.table.loc["EthRef", "coef_pp"]


def test_it_finds_the_gap_equal_to_the_difference_of_the_two_separate_fits() -> None:
    sides = simulated_sides()
    scale = 150.0
    human = refusal_lpm(sides, "human", length_scale=scale)
    judge = refusal_lpm(sides, "judge", length_scale=scale)
    gap = moderation_gap(sides, human="human", judge="judge", length_scale=scale)
    for cls, term in [("ethical_refusal", "EthRef"), ("technical_refusal", "TechRef")]:
        result = gap.gaps[cls]
        assert isinstance(result, Estimate)
        expected = judge.estimate(term).value - human.estimate(term).value  # type: ignore[operator]
        assert result.value == pytest.approx(expected)
    assert gap.length.value == pytest.approx(
        judge.estimate("len_diff").value - human.estimate("len_diff").value  # type: ignore[operator]
    )


def test_it_reports_the_gap_table_in_percentage_points_for_each_judge() -> None:
    sides = simulated_sides()
    other = sides[sides["rater"] == "judge"].assign(rater="llama-3-70b")
    table = gap_table(pd.concat([sides, other]), human="human", judges=["judge", "llama-3-70b"])
    assert list(table["judge"].unique()) == ["judge", "llama-3-70b"]
    eth = table[(table["judge"] == "judge") & (table["response_class"] == ETHICAL_REFUSAL)].iloc[0]
    gap = moderation_gap(sides, human="human", judge="judge").gaps[ETHICAL_REFUSAL]
    assert gap.ci is not None
    assert eth["gap_pp"] == pytest.approx(100 * gap.value)  # type: ignore[operator]
    assert (eth["ci_low_pp"], eth["ci_high_pp"]) == pytest.approx(
        (100 * gap.ci[0], 100 * gap.ci[1])
    )
    assert eth["gap_pp"] == pytest.approx(eth["judge_pp"] - eth["human_pp"])
    assert eth["p_value"] == pytest.approx(gap.details["p_value"])


def test_it_recovers_the_planted_win_probability_difference_with_opponent_controls() -> None:
    # 20,000 pairs: the opponent-controlled gap is the planted 30% - 10% = 20 points.
    data = simulate_study(PlantedStudy(), 20_000, seed=11)
    sides = response_sides(data.pairs, data.verdicts)
    with threadpool_limits(1):
        gap = moderation_gap(sides, human="human", judge="judge", opponent_controls=True)
    eth = gap.gaps[ETHICAL_REFUSAL]
    assert eth.ci is not None and eth.ci[0] <= 0.20 <= eth.ci[1]
    assert eth.ci[1] - eth.ci[0] < 0.08


def test_it_says_why_a_class_absent_from_the_data_has_no_gap() -> None:
    sides = simulated_sides()
    pairs = sides.groupby("pair_id")["response_class"].transform(
        lambda c: (c == "technical_disclaimer").any()
    )
    gap = moderation_gap(sides[~pairs], human="human", judge="judge")
    missing = gap.gaps["technical_disclaimer"]
    assert isinstance(missing, Undefined)
    assert "no technical_disclaimer responses" in missing.reason
    row = gap.table().set_index("response_class").loc["technical_disclaimer"]
    assert np.isnan(row["gap_pp"]) and "no technical_disclaimer" in row["note"]


def test_it_is_undefined_with_a_single_pair() -> None:
    pairs, verdicts = small_pairs()
    sides = response_sides(pairs.iloc[:1], verdicts[verdicts["pair_id"] == 1])
    model = refusal_lpm(sides, "human")
    assert not model.defined
    assert isinstance(model.estimate("EthRef"), Undefined)
    assert "fewer than 2 pairs" in str(model.reason)


def test_it_names_the_pair_with_an_unknown_response_class() -> None:
    pairs, verdicts = small_pairs()
    pairs.loc[1, "class_b"] = "refusal"
    with pytest.raises(ValueError, match=r"class_b.*pair 2 has class 'refusal'"):
        response_sides(pairs, verdicts)


def test_it_names_the_row_of_an_unknown_verdict() -> None:
    pairs, verdicts = small_pairs()
    verdicts.loc[4, "verdict"] = "C"
    with pytest.raises(ValueError, match=r"verdicts row 4: verdict 'C'.*pair 2, rater 'gpt-4o'"):
        response_sides(pairs, verdicts)


def test_it_refuses_a_won_value_other_than_one_zero_or_half() -> None:
    pairs, verdicts = small_pairs()
    sides = response_sides(pairs, verdicts)
    sides.loc[2, "won"] = 2
    with pytest.raises(ValueError, match=r"pair 3, side 'A', rater 'human' has won=2"):
        refusal_lpm(sides, "human")


def test_a_table_checked_once_gives_the_same_models_and_is_still_refused_when_bad() -> None:
    sides = simulated_sides(n_pairs=200)
    checked = checked_sides(sides)
    assert checked_sides(checked) is checked  # passed on, it is not checked again
    raw = moderation_gap(sides, human="human", judge="judge")
    reused = moderation_gap(checked, human="human", judge="judge")
    np.testing.assert_array_equal(reused.model.params, raw.model.params)
    np.testing.assert_array_equal(reused.model.cov, raw.model.cov)
    pd.testing.assert_frame_equal(class_rates(checked), class_rates(sides))
    bad = checked.copy()  # a copy is a new table: checked again
    bad.loc[2, "won"] = 2
    with pytest.raises(ValueError, match=r"has won=2.0; expected 1, 0 or 0.5"):
        refusal_lpm(bad, "human")


def test_it_refuses_a_rater_judging_a_pair_twice() -> None:
    pairs, verdicts = small_pairs()
    with pytest.raises(ValueError, match=r"rater 'human' judged pair 1 twice"):
        response_sides(pairs, pd.concat([verdicts, verdicts.iloc[:1]]))


def test_it_keeps_the_nominal_level_when_there_is_no_gap_in_a_fast_simulation() -> None:
    # No gap: the judge has the humans' class win rates but 4x their length preference. With a
    # fixed length scale the length interaction's target is exactly the planted bias.
    study = PlantedStudy().without_gap()
    scale = 100.0
    planted_length = (study.judge_length - study.human_length) * scale / study.length_unit
    runs, rejected, covered = 40, 0, 0
    with threadpool_limits(1):
        for run in range(runs):
            data = simulate_study(study, 800, seed=500 + run)
            sides = response_sides(data.pairs, data.verdicts)
            gap = moderation_gap(
                sides, human="human", judge="judge", length_scale=scale, opponent_controls=True
            )
            rejected += gap.gaps[ETHICAL_REFUSAL].details["p_value"] < 0.05
            assert gap.length.ci is not None
            covered += gap.length.ci[0] <= planted_length <= gap.length.ci[1]
    # Binomial(40, 0.05): 6 or more rejections has probability < 1.5%.
    assert rejected <= 5
    assert covered >= 34


def test_it_detects_the_planted_gap_in_a_fast_simulation() -> None:
    study = PlantedStudy()
    runs, covered, rejected = 25, 0, 0
    with threadpool_limits(1):
        for run in range(runs):
            data = simulate_study(study, 800, seed=900 + run)
            sides = response_sides(data.pairs, data.verdicts)
            eth = moderation_gap(sides, human="human", judge="judge", opponent_controls=True)
            result = eth.gaps[ETHICAL_REFUSAL]
            assert result.ci is not None
            covered += result.ci[0] <= 0.20 <= result.ci[1]
            rejected += result.details["p_value"] < 0.05
    assert covered >= 21
    # About 120 ethical-refusal pairs per run: the 20-point gap is found most of the time,
    # far above the 5% a test without power would show.
    assert rejected >= 15


def _bench() -> object:
    path = ROOT / "bench" / "gap_simulation.py"
    spec = importlib.util.spec_from_file_location("gap_simulation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_it_covers_the_planted_values_at_the_nominal_rate_over_200_runs() -> None:
    bench = _bench()
    planted = PlantedStudy()
    with threadpool_limits(1):
        targets = bench.gap_targets(planted, n_pairs=100_000)  # type: ignore[attr-defined]
    result = bench.gap_study(  # type: ignore[attr-defined]
        planted, runs=200, n_pairs=1_000, targets=targets, style=False
    )
    # Binomial(200, 0.95): between 178 and 199 covered with probability > 99.9%.
    for key in (
        "opponent_eth_covered",
        "opponent_tech_covered",
        "opponent_length_covered",
        "pasch_eth_covered",
        "pasch_length_covered",
        "human_rate_covered",
        "judge_rate_covered",
    ):
        assert 178 <= result[key] <= 199, key
    # About 150 ethical-refusal pairs per run: the 20-point gap is found in most runs.
    assert result["opponent_eth_rejected"] >= 170
    null = planted.without_gap()
    with threadpool_limits(1):
        targets = bench.gap_targets(null, n_pairs=100_000)  # type: ignore[attr-defined]
    result = bench.gap_study(  # type: ignore[attr-defined]
        null, runs=200, n_pairs=1_000, targets=targets, style=False
    )
    # Binomial(200, 0.05): 20 or more rejections has probability < 0.2%.
    assert result["opponent_eth_rejected"] <= 19
    assert result["pasch_eth_rejected"] <= 19
    assert 178 <= result["opponent_length_covered"] <= 199


def test_it_leaves_out_a_class_with_too_few_responses_for_an_interval() -> None:
    # One ethical refusal among 300 pairs: its dummy would be fitted exactly and its
    # cluster-robust standard error would collapse, a confident and meaningless gap.
    study = simulate_study(PlantedStudy(), 300, seed=4)
    pairs = study.pairs.copy()
    refusals = pairs.index[pairs["class_a"].eq("ethical_refusal")]
    keep = refusals[:1]
    for side in ("a", "b"):
        extra = pairs[f"class_{side}"].eq("ethical_refusal") & ~pairs.index.isin(keep)
        pairs.loc[extra, f"class_{side}"] = "normal"
    sides = response_sides(pairs, study.verdicts)
    gap = moderation_gap(sides, human="human", judge="judge")
    result = gap.gaps["ethical_refusal"]
    assert result.value is None
    assert "only 1 ethical_refusal response(s)" in result.reason
    assert gap.gaps["technical_refusal"].value is not None  # the other classes still fit
