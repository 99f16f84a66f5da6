"""Self-family preference (METHODS.md section 9): the win-rate difference with its paired
interval, the same_family x judge interaction of the stacked LPM (checked against an
independent statsmodels fit), and the figure on the real PandaLM data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analysis.metrics.refusal import indicator_gap, moderation_gap, response_sides
from analysis.metrics.self_family import SAME_FAMILY, family_preference, family_sides

DATA = Path("/work/shared/data/pandalm")
FILES = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json"]


def planted(n: int = 800, *, bias: float = 0.2, seed: int = 4) -> dict[str, pd.DataFrame]:
    """n pairs of four models (two "llama"), 3 pairs per prompt; people pick A with
    probability 0.5 + 0.1 * (length advantage); the judge like people, but it moves a share
    `bias` of the pairs with one llama side to that side."""
    rng = np.random.default_rng(seed)
    models = np.array(["llama-a", "llama-b", "bloom", "opt"])
    family = {"llama-a": "llama", "llama-b": "llama", "bloom": "bigscience", "opt": "opt"}
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    length_a = rng.integers(50, 400, n)
    length_b = rng.integers(50, 400, n)
    advantage = np.sign(length_a - length_b)
    p_a = 0.5 + 0.1 * advantage
    human = np.where(rng.random(n) < p_a, "A", "B")
    human = np.where(rng.random(n) < 0.1, "tie", human)
    judge = np.where(rng.random(n) < p_a, "A", "B")
    fam_a = np.array([family[m] for m in models[a]])
    fam_b = np.array([family[m] for m in models[b]])
    one = (fam_a == "llama") != (fam_b == "llama")
    moved = one & (rng.random(n) < bias / 0.5)  # half of the moved were on that side anyway
    judge = np.where(moved, np.where(fam_a == "llama", "A", "B"), judge)
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "family_a": fam_a,
            "family_b": fam_b,
            "length_a": length_a,
            "length_b": length_b,
            "cluster": np.arange(n) // 3,
        }
    )
    verdicts = pd.concat(
        [
            pd.DataFrame({"pair_id": np.arange(n), "rater": "human", "verdict": human}),
            pd.DataFrame({"pair_id": np.arange(n), "rater": "judge", "verdict": judge}),
        ],
        ignore_index=True,
    )
    return {"pairs": pairs, "verdicts": verdicts}


def plain_win_rate(pairs: pd.DataFrame, verdicts: pd.DataFrame, rater: str, family: str) -> float:
    """The family side's win rate by a loop over the pairs (tie = 1/2)."""
    votes = {row.pair_id: row.verdict for row in verdicts[verdicts["rater"] == rater].itertuples()}
    points = []
    for row in pairs.itertuples():
        if (row.family_a == family) == (row.family_b == family):
            continue
        side = "A" if row.family_a == family else "B"
        verdict = votes[row.pair_id]
        points.append(0.5 if verdict in ("tie", "both_bad") else float(verdict == side))
    return sum(points) / len(points)


def test_the_difference_equals_a_plain_recomputation() -> None:
    data = planted()

    figure = family_preference(
        data["pairs"], data["verdicts"], family="llama", human="human", judge="judge", n_boot=200
    )

    judge = plain_win_rate(data["pairs"], data["verdicts"], "judge", "llama")
    human = plain_win_rate(data["pairs"], data["verdicts"], "human", "llama")
    one = (data["pairs"]["family_a"] == "llama") != (data["pairs"]["family_b"] == "llama")
    assert figure.pairs == int(one.sum())
    assert figure.judge_win.value == pytest.approx(judge)
    assert figure.human_win.value == pytest.approx(human)
    assert figure.difference.value == pytest.approx(judge - human)


def test_the_planted_preference_is_inside_the_interval_and_zero_is_not() -> None:
    data = planted(bias=0.2)

    figure = family_preference(
        data["pairs"], data["verdicts"], family="llama", human="human", judge="judge"
    )

    low, high = figure.difference.ci
    assert low <= 0.2 <= high
    assert low > 0
    pairs = data["pairs"]
    one = (pairs["family_a"] == "llama") != (pairs["family_b"] == "llama")
    assert figure.difference.details["clusters"] == pairs.loc[one, "cluster"].nunique()


def test_the_interval_is_paired() -> None:
    """A judge that agrees with people on every pair differs from them by exactly 0 in
    every resample; an unpaired bootstrap would give an interval of some width."""
    data = planted()
    humans = data["verdicts"][data["verdicts"]["rater"] == "human"]
    same = pd.concat([humans, humans.assign(rater="judge")], ignore_index=True)

    figure = family_preference(
        data["pairs"], same, family="llama", human="human", judge="judge", n_boot=300
    )

    assert figure.difference.value == 0
    assert figure.difference.ci == (0.0, 0.0)
    assert figure.judge_win.ci[1] - figure.judge_win.ci[0] > 0.02


def test_a_family_on_no_pair_is_undefined_with_the_reason() -> None:
    data = planted()

    figure = family_preference(
        data["pairs"], data["verdicts"], family="openai", human="human", judge="judge"
    )

    assert figure.pairs == 0
    assert figure.difference.value is None
    assert "no pair has exactly one openai response" in str(figure.difference.reason)


def test_a_bad_verdict_is_named() -> None:
    data = planted()
    verdicts = data["verdicts"].copy()
    verdicts.loc[3, "verdict"] = "garbage"

    with pytest.raises(ValueError, match="'garbage' of rater 'human' on pair 3"):
        family_preference(data["pairs"], verdicts, family="llama", human="human", judge="judge")


def test_the_interaction_matches_statsmodels_cluster_robust_ols() -> None:
    data = planted(bias=0.2)
    sides = family_sides(data["pairs"], data["verdicts"], family="llama", raters=["human", "judge"])

    model = indicator_gap(sides, indicators=[SAME_FAMILY], human="human", judge="judge")

    # An independent fit: the stacked table by hand, statsmodels' formula API, CR1 by pair.
    frame = sides[sides["won"] != 0.5].copy()
    distinct = sides.drop_duplicates(["pair_id", "side"])["len_diff"]
    frame["length"] = frame["len_diff"] / distinct.std(ddof=1)
    frame["is_judge"] = (frame["rater"] == "judge").astype(float)
    fit = smf.ols(
        "won ~ same_family + length + is_judge + is_judge:same_family + is_judge:length", frame
    ).fit(cov_type="cluster", cov_kwds={"groups": frame["pair_id"].to_numpy()}, use_t=True)
    bias = model.estimate(f"judge:{SAME_FAMILY}")
    assert bias.value == pytest.approx(fit.params["is_judge:same_family"], abs=1e-10)
    assert bias.details["se"] == pytest.approx(fit.bse["is_judge:same_family"], rel=1e-8)
    assert bias.ci[0] == pytest.approx(fit.conf_int().loc["is_judge:same_family", 0], rel=1e-8)
    # Only pairs with one llama side; there the interaction is ~2 x the planted 0.2.
    pairs = data["pairs"]
    one = (pairs["family_a"] == "llama") != (pairs["family_b"] == "llama")
    assert set(sides["pair_id"]) == set(pairs.loc[one, "pair_id"])
    assert bias.ci[0] <= 0.4 <= bias.ci[1]


def test_the_refusal_gap_is_unchanged_by_the_shared_stacking() -> None:
    """moderation_gap and indicator_gap share one stacking path; the refusal gap with the
    class dummies still equals its own independent statsmodels fit."""
    rng = np.random.default_rng(9)
    n = 300
    classes = np.where(rng.random(n) < 0.2, "ethical_refusal", "normal")
    pairs = pd.DataFrame(
        {
            "pair_id": np.arange(n),
            "class_a": classes,
            "class_b": "normal",
            "tokens_a": rng.integers(10, 300, n),
            "tokens_b": rng.integers(10, 300, n),
        }
    )
    human = np.where(rng.random(n) < np.where(classes == "normal", 0.5, 0.2), "A", "B")
    judge = np.where(rng.random(n) < np.where(classes == "normal", 0.5, 0.5), "A", "B")
    verdicts = pd.concat(
        [
            pd.DataFrame({"pair_id": np.arange(n), "rater": "human", "verdict": human}),
            pd.DataFrame({"pair_id": np.arange(n), "rater": "judge", "verdict": judge}),
        ]
    )
    sides = response_sides(pairs, verdicts)

    gap = moderation_gap(sides, human="human", judge="judge").gaps["ethical_refusal"]

    frame = sides.copy()
    frame["EthRef"] = (frame["response_class"] == "ethical_refusal").astype(float)
    frame["length"] = frame["len_diff"] / sides.drop_duplicates(["pair_id", "side"])[
        "len_diff"
    ].std(ddof=1)
    frame["is_judge"] = (frame["rater"] == "judge").astype(float)
    fit = smf.ols(
        "won ~ EthRef + length + is_judge + is_judge:EthRef + is_judge:length", frame
    ).fit(cov_type="cluster", cov_kwds={"groups": frame["pair_id"].to_numpy()}, use_t=True)
    assert gap.value == pytest.approx(fit.params["is_judge:EthRef"], abs=1e-10)
    assert gap.details["se"] == pytest.approx(fit.bse["is_judge:EthRef"], rel=1e-8)


# --- the real PandaLM data -------------------------------------------------------------------

pandalm = pytest.mark.skipif(
    not all((DATA / name).exists() for name in FILES), reason="PandaLM files not available"
)


def _pandalm_plain(judge_file: str, field: str) -> dict[str, Any]:
    """Win rates of llama-7b's side by a plain pass over the raw JSON: the human majority of
    the three annotators and the judge's result (unparseable results left out)."""
    items = {row["idx"]: row for row in json.loads((DATA / FILES[0]).read_text())}
    results = {row["idx"]: row[field] for row in json.loads((DATA / judge_file).read_text())}
    vote = {0: "tie", 1: "A", 2: "B"}
    parse = {"0": "tie", "tie": "tie", "1": "A", "2": "B"}
    judge_points, human_points = [], []
    for idx, row in items.items():
        first, second = row["cmp_key"].split("_")
        if (first == "llama-7b") == (second == "llama-7b"):
            continue
        verdict = parse.get(str(results.get(idx, "")).strip().lower())
        if verdict is None:
            continue
        majority = Counter(vote[row[f"annotator{i}"]] for i in (1, 2, 3)).most_common(1)[0][0]
        side = "A" if first == "llama-7b" else "B"
        judge_points.append(0.5 if verdict == "tie" else float(verdict == side))
        human_points.append(0.5 if majority == "tie" else float(majority == side))
    return {
        "pairs": len(judge_points),
        "judge": sum(judge_points) / len(judge_points),
        "human": sum(human_points) / len(human_points),
    }


@pandalm
def test_pandalm_7b_and_gpt_35_on_llama_responses(db: None, lead_client: Any) -> None:
    from analysis import services
    from corpus.importers.services import dataset_for_import, import_file
    from corpus.models import Dataset

    dataset = dataset_for_import(name="pandalm")
    for name in FILES:
        import_file(dataset=dataset, fmt="pandalm", path=DATA / name)
    snapshot = services.snapshot_compute(dataset=Dataset.objects.get(name="pandalm"), n_boot=200)

    study = snapshot.metrics["studies"]["self_family"]
    raters = {label: rater for rater, label in study["raters"].items()}
    pandalm_7b = raters["pandalm-7b · pandalm v1"]
    gpt = raters["gpt-3.5-turbo · pandalm v1"]
    assert study["judge_families"] == {pandalm_7b: "llama", gpt: "openai"}
    rows = {(row["family"], row["judge"]): row for row in study["rows"]}
    for judge, judge_file, field, own in (
        (pandalm_7b, FILES[2], "pandalm_result", True),
        (gpt, FILES[1], "gpt_result", False),
    ):
        row = rows[("llama", judge)]
        plain = _pandalm_plain(judge_file, field)
        assert row["own"] is own
        assert row["pairs"] == plain["pairs"]
        assert row["judge_win"]["value"] == pytest.approx(plain["judge"], abs=1e-6)
        assert row["human_win"]["value"] == pytest.approx(plain["human"], abs=1e-6)
        assert row["difference"]["value"] == pytest.approx(
            plain["judge"] - plain["human"], abs=1e-6
        )
        low, high = row["difference"]["ci"]
        assert low <= row["difference"]["value"] <= high
    # No OpenAI model answered in PandaLM (Cerebras-GPT is not OpenAI's): undefined, said why.
    assert rows[("openai", gpt)]["difference"]["value"] is None
    assert (
        "no pair has exactly one openai response" in rows[("openai", gpt)]["difference"]["reason"]
    )
    assert study["lpm"][pandalm_7b]["interaction"]["value"] is not None
    # The report shows the section with the own-family row marked and the link to change it.
    page = lead_client.get("/reports/dataset/pandalm/").content.decode()
    section = page[page.index('id="self-family"') :]
    assert "llama responses" in section and "(own family)" in section
    own = rows[("llama", pandalm_7b)]["difference"]["value"]
    assert f"{100 * own:+.1f}" in section
    assert 'href="/judges/datasets/pandalm/families/"' in section
