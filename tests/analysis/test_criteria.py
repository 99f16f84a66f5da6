"""Per-criterion verdicts: what explains the judge's overall verdict, next to the humans'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import proportion_confint

from analysis.metrics import Undefined
from analysis.metrics.criteria import criteria_importance, general_dominance

TOKENS = np.array(["B>>A", "B>A", "A=B", "A>B", "A>>B"])


def graded(score: np.ndarray) -> np.ndarray:
    return TOKENS[np.digitize(score, [-1.0, -0.25, 0.25, 1.0])]


def planted(n: int = 1_200, seed: int = 0) -> pd.DataFrame:
    """Substance drives the humans' verdict, style the judge's; criteria are noisy views."""
    rng = np.random.default_rng(seed)
    substance, style = rng.normal(size=n), rng.normal(size=n)
    weights = {
        "correctness": (1.0, 0.0),
        "completeness": (0.8, 0.3),
        "safety": (0.5, 0.0),
        "conciseness": (0.0, 0.8),
        "style": (0.1, 1.0),
    }
    columns = {
        name: graded(a * substance + b * style + 0.8 * rng.normal(size=n))
        for name, (a, b) in weights.items()
    }
    judge = np.where(0.2 * substance + style + 0.5 * rng.normal(size=n) > 0, "A", "B")
    human = np.where(substance + 0.1 * style + 0.5 * rng.normal(size=n) > 0, "A", "B")
    return pd.DataFrame({"pair_id": np.arange(n), **columns, "judge": judge, "human": human})


def scores(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].map({"B>>A": -2, "B>A": -1, "A=B": 0, "A>B": 1, "A>>B": 2}).to_numpy(float)


def test_it_splits_r_squared_by_general_dominance_as_averaged_subset_gains() -> None:
    frame = planted(400)
    x = np.column_stack([scores(frame, c) for c in ("correctness", "safety", "style")])
    y = (frame["judge"] == "A").to_numpy(float)

    def r2(columns: list[int]) -> float:
        if not columns:
            return 0.0
        return float(sm.OLS(y, sm.add_constant(x[:, columns])).fit().rsquared)

    # Three predictors: average the gain over sizes 0, 1 (two subsets) and 2.
    expected = [
        (r2([0]) + (r2([0, 1]) - r2([1]) + r2([0, 2]) - r2([2])) / 2 + r2([0, 1, 2]) - r2([1, 2]))
        / 3,
        (r2([1]) + (r2([0, 1]) - r2([0]) + r2([1, 2]) - r2([2])) / 2 + r2([0, 1, 2]) - r2([0, 2]))
        / 3,
        (r2([2]) + (r2([0, 2]) - r2([0]) + r2([1, 2]) - r2([1])) / 2 + r2([0, 1, 2]) - r2([0, 1]))
        / 3,
    ]
    weights = general_dominance(x, y)
    np.testing.assert_allclose(weights, expected, rtol=1e-9)
    assert weights.sum() == pytest.approx(r2([0, 1, 2]))


def test_it_finds_the_judge_following_style_and_the_humans_following_substance() -> None:
    report = criteria_importance(planted(), n_boot=300, seed=1)
    table = report.table.set_index("criterion")
    assert table.loc["style", "judge_share"] > 0.4 > table.loc["style", "human_share"]
    assert table.loc["correctness", "human_share"] > 0.3 > table.loc["correctness", "judge_share"]
    assert table.loc["style", "diff_low"] > 0
    assert table.loc["correctness", "diff_high"] < 0
    shares = report.style_share
    assert shares["difference"].ci is not None and shares["difference"].ci[0] > 0.3
    full = sm.OLS(
        (planted()["human"] == "A").to_numpy(float),
        sm.add_constant(np.column_stack([scores(planted(), c) for c in table.index])),
    ).fit()
    assert report.r2["human"].value == pytest.approx(full.rsquared)
    assert table["human_dominance"].sum() == pytest.approx(full.rsquared)


def test_it_gives_standardised_coefficients_with_hc1_intervals() -> None:
    frame = planted(500, seed=3)
    report = criteria_importance(frame, n_boot=0)
    names = ["correctness", "completeness", "safety", "conciseness", "style"]
    x = np.column_stack([scores(frame, c) for c in names])
    y = (frame["judge"] == "A").to_numpy(float)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
    fit = sm.OLS((y - y.mean()) / y.std(ddof=1), sm.add_constant(z)).fit(cov_type="HC1")
    table = report.table.set_index("criterion")
    np.testing.assert_allclose(table.loc[names, "judge_beta"], fit.params[1:], rtol=1e-9)
    low = fit.conf_int(alpha=0.05)[1:, 0]
    np.testing.assert_allclose(table.loc[names, "judge_beta_low"], low, rtol=1e-6)


def test_it_counts_agreement_among_pairs_where_neither_verdict_is_a_tie() -> None:
    frame = planted(300, seed=4)
    frame.loc[:9, "human"] = "tie"
    report = criteria_importance(frame, n_boot=0)
    row = report.table.set_index("criterion").loc["safety"]
    criterion = np.sign(scores(frame, "safety"))
    overall = frame["human"].map({"A": 1, "B": -1, "tie": 0}).to_numpy()
    both = (criterion != 0) & (overall != 0)
    agree = int((criterion[both] == overall[both]).sum())
    assert row["human_agreement_n"] == both.sum()
    assert row["human_agreement"] == pytest.approx(agree / both.sum())
    low, high = proportion_confint(agree, both.sum(), method="wilson")
    assert (row["human_agreement_low"], row["human_agreement_high"]) == pytest.approx((low, high))


def test_it_reads_plain_verdicts_and_numbers_as_criterion_scores() -> None:
    frame = planted(200, seed=5)
    plain = frame.copy()
    plain["style"] = scores(frame, "style")  # numbers in [-2, 2]
    plain["judge"] = (frame["judge"] == "A").astype(float)  # 1 / 0
    first = criteria_importance(frame, n_boot=0).table
    second = criteria_importance(plain, n_boot=0).table
    pd.testing.assert_frame_equal(first, second)


def test_it_resamples_pairs_reproducibly_with_a_seed() -> None:
    frame = planted(300, seed=6)
    first = criteria_importance(frame, n_boot=200, seed=9).table
    again = criteria_importance(frame, n_boot=200, seed=9).table
    pd.testing.assert_frame_equal(first, again)


def test_it_drops_a_constant_criterion_and_says_so() -> None:
    frame = planted(200, seed=7).assign(safety="A=B")
    report = criteria_importance(frame, n_boot=0)
    assert report.dropped == {"safety": "the criterion never varies"}
    assert "safety" not in set(report.table["criterion"])


def test_it_is_undefined_when_the_overall_verdict_never_varies() -> None:
    frame = planted(100, seed=8).assign(human="A")
    report = criteria_importance(frame, n_boot=0)
    assert isinstance(report.r2["human"], Undefined)
    assert report.r2["human"].reason == "the human overall verdict never varies"


def test_it_names_the_column_and_pair_of_a_bad_verdict() -> None:
    frame = planted(20, seed=9)
    frame.loc[7, "safety"] = "A>>>B"
    with pytest.raises(ValueError, match=r"column 'safety', pair 7: 'A>>>B' is not a verdict"):
        criteria_importance(frame, n_boot=0)
