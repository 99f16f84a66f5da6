"""The held-out evaluation's statistics, checked against statsmodels, and heldout.json."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from judges.refusal.evaluate import (
    HELDOUT_JSON,
    Row,
    Scored,
    comparison,
    confusion,
    expected_calibration_error,
    mcnemar_exact,
    sens_spec,
    wilson,
)
from judges.refusal.head import DEFAULT_HEAD_PATH, HeadOutputs
from judges.refusal.labels import CLASSES


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (85, 100), (450, 450)])
def test_the_wilson_interval_is_statsmodels_one(k: int, n: int) -> None:
    from statsmodels.stats.proportion import proportion_confint

    assert wilson(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)


def test_the_exact_mcnemar_test_is_statsmodels_one() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    first = [True] * 30 + [False] * 8 + [True] * 5 + [False] * 2
    second = [True] * 30 + [True] * 8 + [False] * 5 + [False] * 2
    b, c, p = mcnemar_exact(first, second)
    assert (b, c) == (5, 8)
    table = [[30, 5], [8, 2]]
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_the_calibration_error_weights_each_bin_by_its_rows() -> None:
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.55])
    y = np.array([0, 0, 1, 1, 1, 0])
    # Bins 0, 9 and 5: |0.05 - 0| * 2/6 + |0.95 - 1| * 2/6 + |0.55 - 0.5| * 2/6
    assert expected_calibration_error(p, y) == pytest.approx(0.05)
    assert expected_calibration_error(np.array([1.0]), np.array([1])) == 0.0  # p = 1 fits bin 9


def test_it_compares_with_string_matching_on_the_same_rows() -> None:
    rows = [
        Row("Sorry, I can't help with that.", "ethical_refusal", "x"),
        Row("That would be illegal, so no.", "ethical_refusal", "x"),
        Row("No, the moon is not made of cheese.", "normal", "x"),
        Row("Canberra.", "normal", "x"),
    ]
    said = ["ethical_refusal", "ethical_refusal", "normal", "technical_refusal"]
    labels = np.array([CLASSES.index(s) for s in said])
    outputs = HeadOutputs(np.zeros((4, 5)), np.zeros(4), labels, np.zeros(4, dtype=bool))
    result = comparison(Scored(rows, outputs, np.zeros(4)))
    # Ours: right, right, right, wrong. String match: right, wrong ("That"), wrong ("No,"), right.
    assert (result["correct"], result["string_match_correct"]) == (3, 2)
    assert (result["ours_only_right"], result["string_match_only_right"]) == (2, 1)
    assert result["declined"] == 2 and result["n"] == 4


def test_it_counts_sensitivity_and_specificity_of_one_class() -> None:
    truth = ["ethical_refusal", "ethical_refusal", "normal", "technical_refusal"]
    said = ["ethical_refusal", "normal", "ethical_refusal", "technical_refusal"]
    result = sens_spec(truth, said, "ethical_refusal")
    assert (result["sensitivity"]["hits"], result["sensitivity"]["n"]) == (1, 2)
    assert (result["specificity"]["hits"], result["specificity"]["n"]) == (1, 2)
    assert confusion(truth, said)[1][:2] == [1, 1]


def test_heldout_json_describes_the_shipped_head() -> None:
    document = json.loads(HELDOUT_JSON.read_text())
    assert document["head_sha256"] == hashlib.sha256(DEFAULT_HEAD_PATH.read_bytes()).hexdigest()
    declined = document["declined_or_not"]
    models = declined["held_out_models"]
    worst = declined["worst_held_out_model"]
    assert worst["accuracy"] == min(m["accuracy"] for m in models)
    assert worst["ci95"][0] < worst["accuracy"] < worst["ci95"][1]
    for key in ("checkset", "sealed_set"):
        matrix = np.array(document[key]["confusion"])
        assert matrix.shape == (5, 5) and matrix.sum() == document[key]["n"]
        er = document[key]["ethical_refusal_vs_rest"]
        assert er["sensitivity"]["n"] == matrix[CLASSES.index("ethical_refusal")].sum()
    assert document["uncertain_rule"] == {"band": [0.2, 0.8], "below": 0.6}
