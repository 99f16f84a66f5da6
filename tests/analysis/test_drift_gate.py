"""Drift rules in the gate grammar: ``flip_rate <= 0.05`` (a bare metric checks the cautious
bound), ``lower(delta(cohen_kappa)) >= -0.05``, slices named ``column=value``."""

from __future__ import annotations

import pytest

from analysis.gates import DRIFT_METRICS
from analysis.metrics.gate import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    GateRuleError,
    evaluate_gate,
    parse_rule,
    parse_rules,
)


def test_a_bare_metric_checks_the_cautious_bound() -> None:
    rule = parse_rule("flip_rate <= 0.05")
    assert (rule.metric, rule.bound, rule.op, rule.threshold) == ("flip_rate", "upper", "<=", 0.05)
    assert rule.text == "upper(flip_rate) <= 0.05"
    assert parse_rule(rule.text) == rule  # the printed form reads back the same


def test_delta_of_a_coefficient_names_the_delta_figure() -> None:
    rule = parse_rule("lower(delta(cohen_kappa)) >= -0.05")
    assert (rule.metric, rule.bound, rule.threshold) == ("delta.cohen_kappa", "lower", -0.05)
    slices = parse_rule("upper(flip_rate) <= 0.10 on each slice with n >= 30")
    assert (slices.slices, slices.min_items) == ("each", 30)
    parse_rules(
        ["flip_rate <= 0.05", "lower(delta(gwet_ac)) >= -0.1"],
        known_metrics=list(DRIFT_METRICS),
    )


def test_a_bad_drift_rule_says_where() -> None:
    with pytest.raises(GateRuleError, match=r"rule 1, value: after flip_rate expected a number"):
        parse_rule("flip_rate <= lots")
    with pytest.raises(GateRuleError, match=r"unknown metric 'delta.kapa'; did you mean"):
        parse_rules(["lower(delta(kapa)) >= 0"], known_metrics=list(DRIFT_METRICS))


def test_drift_figures_pass_fail_and_stay_open() -> None:
    figures = {
        "flip_rate": {
            "all": {"value": 0.03, "ci": [0.02, 0.045], "n": 900},
            "category=coding": {"value": 0.3, "ci": [0.2, 0.4], "n": 40},
            "category=math": {"value": 0.02, "ci": None, "n": 40},  # too few prompts
        },
        "delta.cohen_kappa": {"all": {"value": -0.02, "ci": [-0.08, 0.03], "n": 900}},
    }
    result = evaluate_gate(
        [
            "flip_rate <= 0.05",
            "upper(flip_rate) <= 0.10 on each slice with n >= 30",
            "lower(delta(cohen_kappa)) >= -0.05",
        ],
        figures,
    )
    statuses = [rule.status for rule in result.rules]
    assert statuses == [PASS, FAIL, INCONCLUSIVE]
    each = {s.slice: s.status for s in result.rules[1].slices}
    assert each == {"all": PASS, "category=coding": FAIL, "category=math": INCONCLUSIVE}
    assert result.status == FAIL and result.exit_code == 1
