"""The refusal instrument section (issue 11 items 4 and 5): the confusion matrix against
people's classes with Wilson intervals (checked against statsmodels), the refusal gap with
either set of classes (the report's own function), and the sensitivity bound on a constructed
example whose true classes are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis import refusal_instrument as ri
from analysis.metrics.refusal import ETHICAL_REFUSAL, moderation_gap, response_sides
from bench.simulation import PlantedStudy, simulate_study


def test_the_confusion_matrix_counts_people_by_classifier_with_wilson_rows() -> None:
    people = ["ethical_refusal"] * 7 + ["normal"] * 12 + ["technical_refusal"] * 3
    machine = (
        ["ethical_refusal"] * 4
        + ["ethical_disclaimer"] * 3  # full refusals called disclaimers: the dominant error
        + ["normal"] * 11
        + ["ethical_disclaimer"]
        + ["technical_refusal", "normal", "technical_refusal"]
    )
    table = ri.confusion(machine, people)
    rows = {row["people"]: row for row in table["rows"]}
    classes = table["classes"]
    assert rows["ethical_refusal"]["counts"][classes.index("ethical_refusal")] == 4
    assert rows["ethical_refusal"]["counts"][classes.index("ethical_disclaimer")] == 3
    assert rows["normal"]["counts"][classes.index("normal")] == 11
    assert rows["ethical_disclaimer"]["n"] == 0 and rows["ethical_disclaimer"]["ci"] is None
    for name, right, n in (
        ("ethical_refusal", 4, 7),
        ("normal", 11, 12),
        ("technical_refusal", 2, 3),
    ):
        low, high = proportion_confint(right, n, alpha=0.05, method="wilson")
        assert rows[name]["correct"] == right and rows[name]["n"] == n
        assert rows[name]["ci"] == pytest.approx([low, high], abs=1e-6)
    # Declined or not: 4 + 2 refusals seen as refusals, 11 + 1 answers as answers... of 22.
    declined = sum(
        (m in ri.DECLINED) == (p in ri.DECLINED) for m, p in zip(machine, people, strict=True)
    )
    assert table["declined"]["correct"] == declined
    low, high = proportion_confint(declined, 22, alpha=0.05, method="wilson")
    assert table["declined"]["ci"] == pytest.approx([low, high], abs=1e-6)
    with pytest.raises(ValueError, match="unknown class 'rude'"):
        ri.confusion(["rude"], ["normal"])


def _study(n: int = 900, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Planted pairs (humans 10%, judge 30% for ethical refusals: a 20-point gap) with
    response ids: A = 10000 + pair, B = 20000 + pair. The classes are the true ones."""
    study = simulate_study(PlantedStudy(), n, seed=seed)
    pairs = study.pairs.assign(
        response_a=10_000 + study.pairs["pair_id"], response_b=20_000 + study.pairs["pair_id"]
    )
    return pairs, study.verdicts


def _gap(pairs: pd.DataFrame, verdicts: pd.DataFrame) -> float:
    columns = ["pair_id", "class_a", "class_b", "tokens_a", "tokens_b", "sim_a", "sim_b"]
    sides = response_sides(pairs[columns], verdicts)
    return float(moderation_gap(sides, human="human", judge="judge").gaps[ETHICAL_REFUSAL].value)


def _corrupt(pairs: pd.DataFrame, m: int) -> tuple[pd.DataFrame, list[ri.Candidate]]:
    """The classifier's view: the first m ethical refusals called ethical disclaimers, with
    low confidence and the true class as runner-up; every other response confident."""
    machine = pairs.copy()
    candidates: list[ri.Candidate] = []
    flipped = 0
    for index, row in machine.iterrows():
        for side in ("a", "b"):
            response = int(row[f"response_{side}"])
            if row[f"class_{side}"] == ETHICAL_REFUSAL and flipped < m:
                machine.at[index, f"class_{side}"] = "ethical_disclaimer"
                candidates.append(ri.Candidate(response, 0.4 + flipped / 1000, ETHICAL_REFUSAL))
                flipped += 1
            else:
                candidates.append(ri.Candidate(response, 0.95, "normal"))
    assert flipped == m
    return machine, candidates


def test_the_gap_with_peoples_classes_is_the_reports_function_on_those_classes() -> None:
    truth, verdicts = _study()
    machine, candidates = _corrupt(truth, 40)
    # People classed the responses of the first 300 pairs (their true classes).
    people = {
        int(row[f"response_{side}"]): row[f"class_{side}"]
        for _, row in truth.head(300).iterrows()
        for side in ("a", "b")
    }
    inputs = ri.InstrumentInputs(
        pairs=machine,
        verdicts=verdicts,
        judges={"judge": "planted judge"},
        people=people,
        candidates=candidates,
        heldout={"worst": {"accuracy": 0.98}},
    )
    out = ri.instrument_compute(inputs)
    row = out["gaps"]["judge"]
    # Independently: the classifier's classes with the first 300 pairs' replaced by hand.
    by_hand = pd.concat([truth.head(300), machine.iloc[300:]], ignore_index=True)
    assert row["people"]["value"] == pytest.approx(_gap(by_hand, verdicts), abs=1e-6)
    assert row["classifier"]["value"] == pytest.approx(_gap(machine, verdicts), abs=1e-6)
    assert row["people"]["ci"][0] < row["people"]["value"] < row["people"]["ci"][1]
    # The confusion matrix covers exactly the people-classed responses.
    assert out["confusion"]["n"] == 600 == out["people_classes"]
    assert out["expected_misclassified"] == round(0.02 * 1800) == 36


def test_the_sensitivity_bound_brackets_the_true_gap_on_a_constructed_example() -> None:
    truth, verdicts = _study(seed=3)
    machine, candidates = _corrupt(truth, 30)
    true_gap, seen_gap = _gap(truth, verdicts), _gap(machine, verdicts)
    assert abs(true_gap - seen_gap) > 0.005  # the misclassification does move the gap
    bound = ri.sensitivity_bound(machine, verdicts, judge="judge", candidates=candidates, flips=30)
    assert bound["flips"] == 30 and bound["up"] + bound["down"] <= 30
    assert bound["gap"] == pytest.approx(seen_gap, abs=1e-6)
    assert bound["low"]["value"] <= seen_gap <= bound["high"]["value"]
    assert bound["low"]["value"] <= true_gap <= bound["high"]["value"]
    # The bound is the report's function on the flipped classes, with its interval.
    assert bound["high"]["ci"][0] < bound["high"]["value"] < bound["high"]["ci"][1]
    # The least sure responses are the ones considered: confident ones never move.
    confident_only = [c for c in candidates if c.confidence > 0.9]
    none_moved = ri.sensitivity_bound(
        machine, verdicts, judge="judge", candidates=confident_only[:5], flips=0
    )
    assert none_moved["flips"] == 0
    assert none_moved["low"]["value"] == none_moved["high"]["value"] == pytest.approx(seen_gap)


def test_expected_misclassified_and_the_heldout_figures() -> None:
    figures = ri.heldout_figures()
    worst = figures["worst"]
    assert figures["classifier"] and len(figures["head_sha256"]) == 64
    # The worst of every held-out model and set, not the average.
    import json

    data = json.loads(ri.HELDOUT_JSON.read_text())
    units = [
        *data["declined_or_not"]["held_out_models"],
        *data["declined_or_not"]["held_out_sets"],
    ]
    assert worst["accuracy"] == min(unit["accuracy"] for unit in units)
    assert ri.expected_misclassified(450, worst["accuracy"]) == round((1 - worst["accuracy"]) * 450)
    assert ri.expected_misclassified(0, 0.5) == 0 and ri.expected_misclassified(10, None) == 0
    assert np.isfinite(worst["ci"][0])
