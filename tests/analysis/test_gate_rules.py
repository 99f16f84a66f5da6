"""Release gate: rule language, PASS / FAIL / INCONCLUSIVE, labels still needed, pinning."""

from __future__ import annotations

import json
import math

import pytest

from analysis.metrics import Estimate, Undefined, wilson_interval
from analysis.metrics.gate import (
    EXIT_CODES,
    FAIL,
    INCONCLUSIVE,
    PASS,
    GateRuleError,
    evaluate_gate,
    labels_to_decide,
    parse_rule,
    parse_rules,
)

KAPPA_RULE = {
    "metric": "cohen_kappa",
    "bound": "lower",
    "op": ">=",
    "value": 0.6,
    "slice": "each",
    "min_items": 30,
}
GAP_RULE = {"metric": "refusal_gap.ethical_refusal", "interval_excludes_above": 0.10}


def kappa(value: float, low: float, high: float, n: int) -> Estimate:
    return Estimate(value=value, n=n, ci=(low, high), level=0.95)


def test_it_passes_when_every_slice_clears_the_lower_bound() -> None:
    figures = {
        "cohen_kappa": {
            "all": kappa(0.75, 0.70, 0.80, 400),
            "normal": kappa(0.78, 0.72, 0.84, 300),
            "ethical_refusal": kappa(0.70, 0.62, 0.78, 100),
        },
        "refusal_gap.ethical_refusal": Estimate(0.03, 400, (-0.01, 0.07)),
    }
    result = evaluate_gate([KAPPA_RULE, GAP_RULE], figures, fingerprint="sha256:abc")
    assert result.status == PASS and result.exit_code == 0
    assert result.fingerprint == "sha256:abc"
    assert [o.status for o in result.rules] == [PASS, PASS]
    assert result.reason == "all 2 rule(s) pass"


def test_it_fails_when_a_whole_interval_misses_and_names_the_slice() -> None:
    figures = {
        "cohen_kappa": {
            "all": kappa(0.70, 0.65, 0.75, 400),
            "ethical_refusal": kappa(0.40, 0.30, 0.50, 80),
        }
    }
    result = evaluate_gate([KAPPA_RULE], figures)
    assert result.status == FAIL and result.exit_code == 1
    rule = result.rules[0]
    assert rule.reason == ("ethical_refusal: the whole interval [0.3, 0.5] misses >= 0.6")
    assert "rule 1 (lower(cohen_kappa) >= 0.6 on each slice with n >= 30)" in result.reason


def test_it_is_inconclusive_with_the_labels_still_needed_to_decide() -> None:
    # 40 of 50 ethical refusals agree: Wilson interval around 0.8 straddles 0.7.
    low, high = wilson_interval(40, 50)  # type: ignore[misc]
    figures = {"agreement": {"ethical_refusal": Estimate(0.8, 50, (low, high))}}
    rule = {"metric": "agreement", "op": ">=", "value": 0.7, "slice": "ethical_refusal"}
    result = evaluate_gate([rule], figures)
    assert result.status == INCONCLUSIVE and result.exit_code == 2
    more = result.labels_needed
    expected = math.ceil(50 * ((0.8 - low) / 0.1) ** 2) - 50
    assert more == expected
    # With that many more labels at the same agreement rate the interval clears 0.7.
    total = 50 + expected
    decided = wilson_interval(round(0.8 * total), total)
    assert decided is not None and decided[0] >= 0.69
    assert f"about {expected} more labels to decide" in result.rules[0].reason


def test_it_skips_small_slices_and_asks_for_labels_when_none_is_big_enough() -> None:
    figures = {"cohen_kappa": {"all": kappa(0.8, 0.7, 0.9, 20), "refusal": kappa(0.9, 0.8, 1, 5)}}
    result = evaluate_gate([KAPPA_RULE], figures)
    assert result.status == INCONCLUSIVE
    assert result.rules[0].reason == "no slice has at least 30 items (largest: 20)"
    assert result.labels_needed == 10
    named = dict(KAPPA_RULE, slice="refusal")
    outcome = evaluate_gate([named], figures).rules[0]
    assert outcome.slices[0].reason == "5 items, fewer than the 30 the rule asks for"
    assert outcome.labels_needed == 25


@pytest.mark.parametrize(
    ("ci", "status"),
    [((0.02, 0.08), PASS), ((0.12, 0.30), FAIL), ((0.05, 0.25), INCONCLUSIVE)],
)
def test_it_checks_that_the_gap_interval_excludes_more_than_ten_points(
    ci: tuple[float, float], status: str
) -> None:
    figures = {"refusal_gap.ethical_refusal": Estimate(sum(ci) / 2, 500, ci)}
    assert evaluate_gate([GAP_RULE], figures).status == status


@pytest.mark.parametrize(
    ("ci", "status"),
    [
        ((-0.05, 0.08), PASS),
        ((0.12, 0.30), FAIL),
        ((-0.2, -0.15), FAIL),
        ((0.05, 0.2), INCONCLUSIVE),
    ],
)
def test_it_checks_that_an_interval_lies_within_a_band(
    ci: tuple[float, float], status: str
) -> None:
    figures = {"gap": Estimate(sum(ci) / 2, 500, ci)}
    assert evaluate_gate(["interval(gap) within [-0.1, 0.1]"], figures).status == status


def test_it_reads_the_string_form_as_the_dict_form() -> None:
    text = parse_rule("lower(cohen_kappa) >= 0.6 on each slice with n >= 30")
    assert text == parse_rule(KAPPA_RULE)
    gap = parse_rule("interval(refusal_gap.ethical_refusal) excludes above 0.10")
    assert gap == parse_rule(GAP_RULE)
    named = parse_rule("value(win_rate) > 0.5 on slices gpt-4o, llama-3")
    assert named.slices == ("gpt-4o", "llama-3") and named.bound == "value"
    for rule in (text, gap, named, parse_rule("interval(x) within [-0.1, 0.2] with n >= 5")):
        assert parse_rule(rule.text, rule.number) == rule


def test_it_defaults_to_the_cautious_bound() -> None:
    assert parse_rule({"metric": "k", "op": ">=", "value": 0.6}).bound == "lower"
    assert parse_rule({"metric": "gap", "op": "<", "value": 0.1}).bound == "upper"


def test_it_uses_the_point_estimate_for_a_value_bound() -> None:
    figures = {"win_rate": Estimate(0.55, 100, (0.45, 0.65))}
    assert evaluate_gate(["value(win_rate) > 0.5"], figures).status == PASS
    assert evaluate_gate(["value(win_rate) > 0.6"], figures).status == FAIL


def test_it_ranks_fail_above_inconclusive_above_pass() -> None:
    figures = {"a": Estimate(0.9, 100, (0.85, 0.95)), "b": Estimate(0.5, 100, (0.3, 0.7))}
    fail = evaluate_gate(["lower(a) >= 0.8", "lower(b) >= 0.6", "upper(a) < 0.8"], figures)
    assert fail.status == FAIL and fail.exit_code == EXIT_CODES[FAIL] == 1
    assert fail.reason.startswith("rule 3 (upper(a) < 0.8)")
    inconclusive = evaluate_gate(["lower(a) >= 0.8", "lower(b) >= 0.6"], figures)
    assert inconclusive.status == INCONCLUSIVE and inconclusive.exit_code == 2


def test_it_is_inconclusive_when_the_figures_come_from_another_judge() -> None:
    figures = {"refusal_gap.ethical_refusal": Estimate(0.03, 400, (-0.01, 0.07))}
    result = evaluate_gate(
        [GAP_RULE], figures, fingerprint="sha256:new", pinned_fingerprint="sha256:old"
    )
    assert result.status == INCONCLUSIVE
    assert "pinned to judge sha256:old but the figures come from sha256:new" in result.reason
    assert result.rules[0].status == PASS  # the rules still show what the figures say


def test_it_is_inconclusive_for_an_undefined_or_missing_figure() -> None:
    figures = {"cohen_kappa": Undefined("only one category observed", n=40)}
    result = evaluate_gate(["lower(cohen_kappa) >= 0.6", "lower(fleiss) >= 0.5"], figures)
    assert result.status == INCONCLUSIVE
    assert result.rules[0].reason == "undefined: only one category observed"
    assert result.rules[1].reason == "no figure 'fleiss' (figures: cohen_kappa)"
    assert result.labels_needed is None


def test_it_reads_figures_given_as_plain_dicts() -> None:
    figures = {"gap": {"value": 0.2, "ci_low": 0.15, "ci_high": 0.25, "n": 300}}
    result = evaluate_gate(["interval(gap) excludes above 0.1"], figures)
    assert result.status == FAIL
    json.dumps(result.as_dict())  # storable as it is
    assert result.as_dict()["rules"][0]["slices"][0]["ci"] == [0.15, 0.25]


def test_it_computes_labels_to_decide_from_the_square_root_law() -> None:
    # Half-width 0.1 at n = 100 must shrink below the distance 0.05: n' = 100 * 4 = 400.
    assert labels_to_decide(0.65, (0.55, 0.75), 100, 0.6) == 300
    assert labels_to_decide(0.6, (0.5, 0.7), 100, 0.6) is None
    assert labels_to_decide(0.65, (0.55, 0.75), None, 0.6) is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("lower(cohen_kappa) => 0.6", r"rule 2, op: after lower\(cohen_kappa\) expected an op"),
        ("lowr(kappa) >= 0.6", r"rule 2, metric: expected lower\(METRIC\)"),
        ("interval(gap) excludes 0.1", r"rule 2, check: after interval\(\.\.\.\) expected"),
        ("lower(k) >= 0.6 on eachslice", r"rule 2, slice: expected 'on each slice'"),
        ("lower(k) >= 0.6 sometimes", r"rule 2: unexpected text 'sometimes'"),
        ("lower(k) >= 0.6 with n >= many", r"rule 2, min_items: expected a whole number"),
        ({"metric": "k", "op": ">=", "value": "0.6"}, r"rule 2, value: expected a number"),
        (
            {"metric": "k", "op": ">=", "value": 0.6, "min_item": 3},
            r"min_item: unknown field; did you mean 'min_items'\?",
        ),
        ({"metric": "k", "op": "=", "value": 0.6}, r"rule 2, op: expected one of >=, >, <=, <"),
        ({"metric": "k", "op": ">=", "value": 0.6, "bound": "middle"}, r"rule 2, bound:"),
        ({"op": ">=", "value": 0.6}, r"rule 2, metric: expected a metric name"),
        (
            {"metric": "k", "interval_within": [0.2, 0.1]},
            r"interval_within: low 0.2 is above high 0.1",
        ),
        (
            {"metric": "k", "op": ">=", "value": 0.6, "interval_excludes_above": 0.1},
            r"rule 2: give either",
        ),
        ({"metric": "k", "op": ">=", "value": 0.6, "slice": 3}, r"rule 2, slice: expected 'all'"),
        (42, r"rule 2: a rule is a dict or a string, got int"),
    ],
)
def test_it_names_the_rule_and_field_of_a_bad_rule(rule: object, message: str) -> None:
    with pytest.raises(GateRuleError, match=message):
        parse_rules([{"metric": "k", "op": ">=", "value": 0.5}, rule])  # type: ignore[list-item]


def test_it_suggests_a_known_metric_for_a_typo() -> None:
    with pytest.raises(GateRuleError, match=r"rule 1, metric: .*did you mean 'cohen_kappa'\?"):
        parse_rules(["lower(cohen_kapa) >= 0.6"], known_metrics=["cohen_kappa", "fleiss_kappa"])
    with pytest.raises(GateRuleError, match=r"the gate has no rules"):
        parse_rules([])


def test_it_does_not_trust_an_interval_from_a_handful_of_items() -> None:
    # One label gives a bootstrap interval of [0, 0]: that decides nothing.
    figures = {"cohen_kappa": kappa(0.0, 0.0, 0.0, n=1)}
    result = evaluate_gate(["lower(cohen_kappa) >= 0.4"], figures)
    assert result.status == "INCONCLUSIVE"
    assert "only 1 items" in result.reason
    assert result.labels_needed == 9
    enough = {"cohen_kappa": kappa(0.0, -0.1, 0.1, n=10)}
    assert evaluate_gate(["lower(cohen_kappa) >= 0.4"], enough).status == "FAIL"
