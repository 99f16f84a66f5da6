"""Length and markdown style: features, the judge's net sensitivity, length-controlled win rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from threadpoolctl import threadpool_limits

from analysis.metrics import Undefined
from analysis.metrics.style import (
    length_controlled_win_rates,
    markdown_counts,
    style_design,
    style_features,
    style_sensitivity,
)

ANSWER = """# Plan

Some **bold** words and __more bold__, but not ** spaced ** ones.

- one
- two
  * nested
1. first
2) second

```python
# a comment, not a header
- not a list
**not bold**
```
## Done
"""


def test_it_counts_headers_lists_and_bold_outside_code_blocks() -> None:
    assert markdown_counts(ANSWER) == {"headers": 2, "lists": 5, "bold": 2}
    assert markdown_counts("") == {"headers": 0, "lists": 0, "bold": 0}
    assert markdown_counts(None) == {"headers": 0, "lists": 0, "bold": 0}


def test_it_makes_tanh_length_and_normalised_markdown_differences() -> None:
    pairs = pd.DataFrame(
        {
            "pair_id": [1, 2, 3],
            "tokens_a": [100, 400, 250],
            "tokens_b": [300, 100, 250],
            "headers_a": [0, 3, 1],
            "headers_b": [2, 0, 1],
            "lists_a": [0, 0, 4],
            "lists_b": [0, 5, 1],
            "bold_a": [1, 1, 0],
            "bold_b": [0, 1, 0],
        }
    )
    features = style_features(pairs)
    diff = np.array([-200.0, 300.0, 0.0])
    np.testing.assert_allclose(features["length"], np.tanh(diff / diff.std(ddof=1)))
    np.testing.assert_allclose(features["headers"], [-2 / 3, 3 / 4, 0.0])
    np.testing.assert_allclose(features["lists"], [0.0, -5 / 6, 3 / 6])
    np.testing.assert_allclose(features["bold"], [1 / 2, 0.0, 0.0])


def test_it_counts_markdown_from_the_texts_when_no_counts_are_given() -> None:
    pairs = pd.DataFrame(
        {"pair_id": [1], "tokens_a": [10], "tokens_b": [20], "text_a": [ANSWER], "text_b": ["ok"]}
    )
    features = style_features(pairs).iloc[0]
    assert features["headers"] == pytest.approx(2 / 3)
    assert features["lists"] == pytest.approx(5 / 6)
    assert features["bold"] == pytest.approx(2 / 3)


def planted_style(n: int, seed: int, judge_slope: float, human_slope: float) -> tuple:
    """P(A wins) = 0.5 + slope * tanh(z) + 0.1 * bold difference, exactly linear in features."""
    rng = np.random.default_rng(seed)
    tokens_a = rng.integers(50, 800, n)
    tokens_b = rng.integers(50, 800, n)
    bold_a, bold_b = rng.poisson(1.5, n), rng.poisson(1.5, n)
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "model_a": "m1",
            "model_b": "m2",
            "tokens_a": tokens_a,
            "tokens_b": tokens_b,
            "bold_a": bold_a,
            "bold_b": bold_b,
        }
    )
    features = style_features(pairs)
    rows = []
    for rater, slope in (("human", human_slope), ("judge", judge_slope)):
        p = 0.5 + slope * features["length"] + 0.1 * features["bold"]
        wins = rng.random(n) < p
        rows.append(pd.DataFrame({"pair_id": pairs["pair_id"], "rater": rater,
                                  "verdict": np.where(wins, "A", "B")}))  # fmt: skip
    return pairs, pd.concat(rows, ignore_index=True)


def test_it_recovers_a_planted_length_bias_net_of_the_humans() -> None:
    pairs, verdicts = planted_style(6_000, seed=5, judge_slope=0.30, human_slope=0.05)
    with threadpool_limits(1):
        result = style_sensitivity(pairs, verdicts, human="human", judge="judge")
    net = result.net["length"]
    assert net.ci is not None and net.ci[0] <= 0.25 <= net.ci[1]
    assert net.details["p_value"] < 0.001
    bold = result.net["bold"]
    assert bold.ci is not None and bold.ci[0] <= 0.0 <= bold.ci[1]
    table = result.table().set_index("feature")
    assert table.loc["length", "net_pp"] == pytest.approx(
        table.loc["length", "judge_pp"] - table.loc["length", "human_pp"]
    )


def test_it_equals_separate_fits_and_a_statsmodels_cluster_fit() -> None:
    pairs, verdicts = planted_style(500, seed=2, judge_slope=0.2, human_slope=0.0)
    result = style_sensitivity(pairs, verdicts, human="human", judge="judge")
    inputs = style_design(pairs, verdicts, human="human", judge="judge")
    rows = inputs.rows.assign(y=inputs.y)
    separate = {}
    for rater in ("human", "judge"):
        mine = rows[rows["rater"] == rater]
        x = sm.add_constant(mine[["length", "bold"]].to_numpy())
        separate[rater] = np.linalg.lstsq(x, mine["y"].to_numpy(), rcond=None)[0]
    net = result.net["length"]
    assert net.value == pytest.approx(separate["judge"][1] - separate["human"][1])
    rows["is_judge"] = (rows["rater"] == "judge").astype(float)
    fit = smf.ols("y ~ (length + bold) * is_judge", rows).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(rows["pair_id"])[0]}
    )
    assert net.details["se"] == pytest.approx(fit.bse["length:is_judge"])


def test_it_says_when_the_pair_table_has_no_markdown() -> None:
    pairs, verdicts = planted_style(200, seed=1, judge_slope=0.2, human_slope=0.0)
    result = style_sensitivity(
        pairs.drop(columns=["bold_a", "bold_b"]), verdicts, human="human", judge="judge"
    )
    assert isinstance(result.net["headers"], Undefined)
    assert result.net["headers"].reason == "no headers data in the pair table"
    assert result.net["length"].defined


def _arena(n: int, seed: int, strengths: dict[str, float], length_effect: float) -> tuple:
    rng = np.random.default_rng(seed)
    models = list(strengths)
    a = rng.integers(0, len(models), n)
    b = (a + rng.integers(1, len(models), n)) % len(models)
    mean_tokens = {"verbose": 600.0}
    tokens_a = np.array([mean_tokens.get(models[i], 300.0) for i in a]) + rng.normal(0, 80, n)
    tokens_b = np.array([mean_tokens.get(models[i], 300.0) for i in b]) + rng.normal(0, 80, n)
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "model_a": [models[i] for i in a],
            "model_b": [models[i] for i in b],
            "tokens_a": np.clip(tokens_a, 1, None).round(),
            "tokens_b": np.clip(tokens_b, 1, None).round(),
        }
    )
    length = style_features(pairs)["length"].to_numpy()
    theta = np.array([strengths[m] for m in models])
    eta = theta[a] - theta[b] + length_effect * length
    wins = rng.random(n) < 1 / (1 + np.exp(-eta))
    verdicts = pd.DataFrame(
        {"pair_id": pairs["pair_id"], "rater": "judge", "verdict": np.where(wins, "A", "B")}
    )
    return pairs, verdicts


def test_it_removes_a_win_rate_bought_with_length() -> None:
    # Three equally strong models; "verbose" writes twice as long and the judge likes length.
    pairs, verdicts = _arena(4_000, 8, {"plain": 0.0, "terse": 0.0, "verbose": 0.0}, 1.5)
    table = length_controlled_win_rates(pairs, verdicts, rater="judge").set_index("model")
    verbose = table.loc["verbose"]
    assert verbose["win_rate"] > 0.6
    assert verbose["lc_low"] <= 0.5 <= verbose["lc_high"]
    assert verbose["lc_win_rate"] < verbose["win_rate"] - 0.1


def test_it_matches_a_statsmodels_logit_for_the_controlled_strengths() -> None:
    pairs, verdicts = _arena(1_500, 4, {"x": 0.0, "y": 0.5, "z": -0.4}, 0.8)
    table = length_controlled_win_rates(pairs, verdicts, rater="judge", ridge=0.0)
    design = pd.DataFrame(
        {
            "slot": 1.0,
            "y": (pairs["model_a"] == "y").astype(float) - (pairs["model_b"] == "y"),
            "z": (pairs["model_a"] == "z").astype(float) - (pairs["model_b"] == "z"),
            "length": style_features(pairs)["length"],
        }
    )
    won = (verdicts["verdict"] == "A").astype(float)
    fit = sm.Logit(won, design).fit(disp=0)
    theta = {"x": 0.0, "y": fit.params["y"], "z": fit.params["z"]}
    for model in ("x", "y", "z"):
        mine = pairs[(pairs["model_a"] == model) | (pairs["model_b"] == model)]
        other = np.where(mine["model_a"] == model, mine["model_b"], mine["model_a"])
        expected = np.mean([1 / (1 + np.exp(-(theta[model] - theta[o]))) for o in other])
        row = table.set_index("model").loc[model]
        assert row["lc_win_rate"] == pytest.approx(expected, abs=1e-6)
        assert row["n"] == len(mine)


def test_a_baseline_always_first_is_fitted_without_a_slot_term_as_statsmodels_does() -> None:
    # AlpacaEval's layout: the baseline is always A, each model always B. The slot is then
    # the sum of the strength columns; with it the fit said 50% [50, 50] for every model.
    rng = np.random.default_rng(3)
    n = 1_200
    model_b = rng.choice(["m1", "m2"], n)
    tokens_a = np.clip(rng.normal(300, 80, n), 1, None).round()
    tokens_b = np.clip(rng.normal(np.where(model_b == "m1", 500, 300), 80), 1, None).round()
    pairs = pd.DataFrame(
        {"pair_id": np.arange(n), "model_a": "base", "model_b": model_b,
         "tokens_a": tokens_a, "tokens_b": tokens_b}
    )  # fmt: skip
    length = style_features(pairs)["length"].to_numpy()
    strength = np.where(model_b == "m1", 0.9, -0.4)  # of the B model, over the baseline
    wins_b = rng.random(n) < 1 / (1 + np.exp(-(strength - 0.7 * length)))
    verdicts = pd.DataFrame(
        {"pair_id": pairs["pair_id"], "rater": "judge", "verdict": np.where(wins_b, "B", "A")}
    )
    table = length_controlled_win_rates(pairs, verdicts, rater="judge", ridge=0.0)
    design = pd.DataFrame(
        {
            "m1": -(model_b == "m1").astype(float),
            "m2": -(model_b == "m2").astype(float),
            "length": length,
        }
    )
    fit = sm.Logit((~wins_b).astype(float), design).fit(disp=0)
    rows = table.set_index("model")
    for model in ("m1", "m2"):
        expected = 1 / (1 + np.exp(-fit.params[model]))  # against the baseline, its only opponent
        assert rows.loc[model, "lc_win_rate"] == pytest.approx(expected, abs=1e-6)
        assert (
            rows.loc[model, "lc_low"] < rows.loc[model, "lc_win_rate"] < rows.loc[model, "lc_high"]
        )
    assert rows.loc["m1", "lc_win_rate"] > 0.6 and rows.loc["m2", "lc_win_rate"] < 0.45


def test_it_names_the_pair_with_a_negative_token_count() -> None:
    pairs = pd.DataFrame({"pair_id": ["p1", "p2"], "tokens_a": [10, -3], "tokens_b": [5, 5]})
    with pytest.raises(ValueError, match=r"column 'tokens_a', pair 'p2': -3 is not a count"):
        style_features(pairs)


def test_it_refuses_a_model_compared_with_itself() -> None:
    pairs, verdicts = _arena(20, 1, {"x": 0.0, "y": 0.0}, 0.0)
    pairs.loc[3, "model_b"] = pairs.loc[3, "model_a"]
    with pytest.raises(ValueError, match=r"pair 3 compares model"):
        length_controlled_win_rates(pairs, verdicts, rater="judge")


def test_it_refuses_an_unknown_feature() -> None:
    pairs, verdicts = planted_style(50, seed=1, judge_slope=0.1, human_slope=0.0)
    with pytest.raises(ValueError, match=r"unknown style feature 'emoji'"):
        style_sensitivity(pairs, verdicts, human="human", judge="judge", features=["emoji"])
