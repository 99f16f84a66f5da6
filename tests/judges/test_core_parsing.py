from __future__ import annotations

import math

import pytest

from judges.core.parsing import (
    LogprobMargin,
    ParsedVerdict,
    TokenLogprob,
    combine_margins,
    combine_orders,
    parse_verdict,
    verdict_margin,
)

# --- overall verdicts ---------------------------------------------------------------------------

DOCUMENTED = [
    ("[[A]]", "A", 1),
    ("[[B]]", "B", 1),
    ("[[C]]", "tie", None),
    ("[[A>>B]]", "A", 2),
    ("[[A>B]]", "A", 1),
    ("[[A=B]]", "tie", None),
    ("[[B>A]]", "B", 1),
    ("[[B>>A]]", "B", 2),
]


@pytest.mark.parametrize(("token", "outcome", "strength"), DOCUMENTED)
@pytest.mark.parametrize("mode", ["tolerant", "strict"])
def test_it_reads_every_documented_verdict(
    token: str, outcome: str, strength: int | None, mode: str
) -> None:
    text = f"Both answers are fine but one is better.\n\nMy final verdict is: {token}"
    parsed = parse_verdict(text, mode=mode)  # type: ignore[arg-type]
    assert parsed.ok, parsed.reason
    assert (parsed.outcome, parsed.strength) == (outcome, strength)
    # the offset points at the first letter inside the brackets
    assert parsed.letter_offset == text.rindex("[[") + 2
    assert text[parsed.letter_offset] in "ABC"


@pytest.mark.parametrize(
    ("text", "outcome", "strength"),
    [
        ("[[a]]", "A", 1),
        ("[[b]]", "B", 1),
        ("[[c]]", "tie", None),
        ("[[ A ]]", "A", 1),
        ("[[a>>b]]", "A", 2),
        ("[[ B > A ]]", "B", 1),
        ("[[b >> a]]", "B", 2),
        ("[[a = b]]", "tie", None),
        ("**[[A>B]]**", "A", 1),
        ("Verdict: [[A<B]]", "B", 1),  # mirrored spellings mean what they say
        ("Verdict: [[B<<A]]", "A", 2),
        ("Verdict: [[B=A]]", "tie", None),
    ],
)
def test_it_tolerates_case_whitespace_and_mirrored_variants(
    text: str, outcome: str, strength: int | None
) -> None:
    parsed = parse_verdict(text)
    assert parsed.ok, parsed.reason
    assert (parsed.outcome, parsed.strength) == (outcome, strength)


@pytest.mark.parametrize("text", ["[[a]]", "[[ A ]]", "[[A > B]]", "[[B<A]]"])
def test_it_refuses_variants_in_strict_mode(text: str) -> None:
    parsed = parse_verdict(text, mode="strict")
    assert parsed.status == "failed"
    assert parsed.outcome is None
    assert text in parsed.reason


def test_it_takes_the_last_verdict_when_the_format_is_quoted_first() -> None:
    text = (
        'The instructions ask for "[[A]]" if assistant A is better and "[[B]]" if '
        "assistant B is better. Assistant A is verbose; assistant B is correct and short.\n"
        "Final verdict: [[B]]"
    )
    parsed = parse_verdict(text)
    assert parsed.ok
    assert parsed.outcome == "B"
    assert parsed.conflicting  # restated verdicts are flagged even when read
    assert parsed.letter_offset == text.rindex("[[B]]") + 2


def test_it_takes_the_last_verdict_when_the_model_changes_its_mind() -> None:
    parsed = parse_verdict("At first I'd say [[A>B]]. On reflection, [[B>>A]].")
    assert (parsed.outcome, parsed.strength) == ("B", 2)


def test_it_fails_conflicting_verdicts_in_strict_mode() -> None:
    parsed = parse_verdict("[[A]] if A is better, [[B]] if B... My verdict: [[B]]", mode="strict")
    assert parsed.status == "failed"
    assert "conflicting" in parsed.reason
    assert "[[A]]" in parsed.reason and "[[B]]" in parsed.reason


def test_it_accepts_a_restated_identical_verdict_in_strict_mode() -> None:
    parsed = parse_verdict("My verdict is [[A>B]].\n\nFinal: [[A>B]]", mode="strict")
    assert parsed.ok and parsed.outcome == "A"
    assert not parsed.conflicting


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("", "empty output"),
        ("   \n ", "empty output"),
        ("Assistant A is clearly better.", "no verdict token"),
        ("I prefer A. Final answer: A", "no verdict token"),
        ("Rating: [[7]]", "'[[7]]'"),
        ("[[A>B>A]]", "'[[A>B>A]]'"),
        ("[A] is better", "no verdict token"),
        ("((A>B))", "no verdict token"),
    ],
)
def test_it_reports_a_failed_parse_with_the_reason_instead_of_guessing(
    text: str, reason_part: str
) -> None:
    parsed = parse_verdict(text)
    assert parsed.status == "failed"
    assert parsed.outcome is None and parsed.strength is None
    assert reason_part in parsed.reason


def test_it_treats_none_as_an_empty_output() -> None:
    assert parse_verdict(None).reason == "empty output"


def test_it_fails_a_tie_under_force_choice_and_says_why() -> None:
    parsed = parse_verdict("They are equal. [[C]]", allow_tie=False)
    assert parsed.status == "failed"
    assert parsed.outcome is None
    assert parsed.token == "C"  # what the judge said is kept for the record
    assert "force_choice" in parsed.reason
    assert parse_verdict("[[A>B]]", allow_tie=False).outcome == "A"


# --- criteria ------------------------------------------------------------------------------------

SOS_ANSWER = """\
Both are accurate, but A has a typo in the formula. Correctness: ((B>A))

**Completeness**: ((A>>B)) A covers the edge cases.

3. Safety: ((A=B))
Conciseness\uff1a ((b > a))
My verdict for style: ((A>B))

My final verdict is: [[A>B]]
"""


def test_it_reads_per_criterion_verdicts_keyed_by_name() -> None:
    parsed = parse_verdict(SOS_ANSWER)
    assert parsed.ok
    assert (parsed.outcome, parsed.strength) == ("A", 1)
    assert {k: (v.outcome, v.strength) for k, v in parsed.criteria.items()} == {
        "correctness": ("B", 1),
        "completeness": ("A", 2),
        "safety": ("tie", None),
        "conciseness": ("B", 1),  # full-width colon and lowercase token
        "style": ("A", 1),  # "My verdict for style" maps onto the known criterion
    }
    assert parsed.criteria_json()["completeness"] == {
        "outcome": "A",
        "strength": 2,
        "token": "A>>B",
    }


def test_it_reads_criteria_on_one_line_as_in_the_sos_example_output() -> None:
    text = (
        "My verdicts are as follows: Correctness: ((A>>B)). Completeness: ((A=B)). "
        "Safety: ((A=B)). Conciseness: ((A=B)). Style: ((A=B)). My final verdict is tie: [[A=B]]"
    )
    parsed = parse_verdict(text)
    assert parsed.outcome == "tie"
    assert list(parsed.criteria) == [
        "correctness",
        "completeness",
        "safety",
        "conciseness",
        "style",
    ]
    assert parsed.criteria["correctness"].strength == 2


def test_it_keeps_the_last_mention_of_a_criterion_and_warns_on_bad_tokens() -> None:
    text = "Safety: ((A>B))\nSafety: ((B>A))\nStyle: ((N/A))\n[[B>A]]"
    parsed = parse_verdict(text)
    assert parsed.criteria["safety"].outcome == "B"
    assert "style" not in parsed.criteria
    assert any("style" in w and "N/A" in w for w in parsed.warnings)


def test_it_does_not_read_a_criterion_token_separated_from_its_name_by_prose() -> None:
    parsed = parse_verdict("Correctness: A has a typo, so ((B>A)) here.\n[[B>A]]")
    assert parsed.ok
    assert parsed.criteria == {}


def test_it_keeps_unknown_criterion_names_as_written() -> None:
    parsed = parse_verdict("Helpfulness: ((A>B))\nInstruction following: ((B>>A))\n[[A]]")
    assert set(parsed.criteria) == {"helpfulness", "instruction following"}


def test_it_returns_criteria_even_when_the_overall_verdict_is_missing() -> None:
    parsed = parse_verdict("Correctness: ((A>B))\nSafety: ((A=B))\n(ran out of tokens)")
    assert parsed.status == "failed"
    assert "no verdict token" in parsed.reason
    assert set(parsed.criteria) == {"correctness", "safety"}


# --- both orders ---------------------------------------------------------------------------------


def _ok(outcome: str, strength: int | None = 1) -> ParsedVerdict:
    return ParsedVerdict(status="ok", outcome=outcome, strength=strength)  # type: ignore[arg-type]


def test_it_keeps_a_verdict_that_survives_the_swap() -> None:
    # AB: the judge picks A (the pair's A). BA: the pair's A is shown second, judge picks "B".
    combined = combine_orders(_ok("A", 2), _ok("B", 1))
    assert combined.status == "ok"
    assert combined.consistent is True
    assert (combined.outcome, combined.outcome_ab, combined.outcome_ba) == ("A", "A", "A")
    assert combined.strength == 1  # the weaker of >> and >


def test_it_turns_a_swap_inconsistent_verdict_into_a_tie() -> None:
    # The judge picks whatever is shown first: "A" in both orders.
    combined = combine_orders(_ok("A"), _ok("A"))
    assert combined.consistent is False
    assert combined.outcome == "tie"
    assert combined.strength is None
    assert (combined.outcome_ab, combined.outcome_ba) == ("A", "B")


def test_it_keeps_a_tie_given_in_both_orders() -> None:
    combined = combine_orders(_ok("tie", None), _ok("tie", None))
    assert (combined.outcome, combined.consistent) == ("tie", True)


def test_it_counts_tie_against_a_side_as_inconsistent() -> None:
    combined = combine_orders(_ok("tie", None), _ok("A"))
    assert combined.consistent is False
    assert combined.outcome == "tie"
    assert combined.outcome_ba == "B"


def test_it_does_not_combine_when_an_order_failed() -> None:
    failed = ParsedVerdict(status="failed", reason="no verdict token")
    combined = combine_orders(_ok("A"), failed)
    assert combined.status == "failed"
    assert combined.outcome is None  # a failure is not a tie
    assert combined.outcome_ab == "A"
    assert "BA" in combined.reason
    assert combine_orders(None, _ok("A")).reason.startswith("AB")


def test_it_uses_the_ab_verdict_alone_under_ab_only() -> None:
    combined = combine_orders(_ok("B", 2), None, margin_ab=-1.5, swapped=False)
    assert (combined.status, combined.outcome, combined.strength) == ("ok", "B", 2)
    assert combined.consistent is None
    assert combined.margin == -1.5


def test_it_averages_the_ab_margin_and_the_negated_ba_margin() -> None:
    margin_ab, margin_ba = 2.4, -1.6  # BA: the judge favoured its "B", i.e. the pair's A
    combined = combine_orders(_ok("A"), _ok("B"), margin_ab=margin_ab, margin_ba=margin_ba)
    assert combined.margin_ba == -margin_ba
    assert combined.margin == pytest.approx((margin_ab - margin_ba) / 2)
    assert combine_margins(margin_ab, margin_ba) == combined.margin
    # a judge that favours the first slot equally in both orders nets to zero
    assert combine_margins(1.0, 1.0) == 0.0
    assert combine_margins(1.0, None) is None
    assert combine_margins(1.0, None, swapped=False) == 1.0


# --- log-probability margins ---------------------------------------------------------------------


def _tok(token: str, logprob: float = -0.01, top: dict[str, float] | None = None) -> TokenLogprob:
    alts = tuple(sorted((top or {token: logprob}).items(), key=lambda kv: -kv[1]))
    return TokenLogprob(token=token, logprob=logprob, top=alts)


def test_it_reads_the_margin_at_the_token_after_the_brackets() -> None:
    tokens = [
        _tok("A"),  # an "A" early in the text must not be mistaken for the verdict
        _tok(" is"),
        _tok(" better"),
        _tok(". "),
        _tok("[["),
        _tok("A", math.log(0.7), {"A": math.log(0.7), "B": math.log(0.2), "C": math.log(0.1)}),
        _tok("]]"),
    ]
    margin = verdict_margin(tokens)
    assert margin.exact
    assert margin.token_index == 5
    assert margin.value == pytest.approx(math.log(0.7 / 0.2))


def test_it_reads_the_margin_when_the_tokenizer_merges_brackets_and_letter() -> None:
    tokens = [
        _tok("Verdict:"),
        _tok(" [[B", -0.3, {" [[B": -0.3, " [[A": -1.5, " [[": -4.0}),
        _tok(">>"),
        _tok("A"),
        _tok("]]"),
    ]
    margin = verdict_margin(tokens)
    assert margin.exact
    assert margin.value == pytest.approx(-1.5 - -0.3)


def test_it_uses_the_last_verdict_for_the_margin() -> None:
    tokens = [
        _tok("Say "),
        _tok("[["),
        _tok("A", -0.01, {"A": -0.01}),
        _tok("]]"),
        _tok(" or "),
        _tok("[["),
        _tok("B", -0.5, {"B": -0.5, "A": -1.0}),
        _tok("]]"),
    ]
    margin = verdict_margin(tokens)
    assert margin.token_index == 6
    assert margin.value == pytest.approx(-1.0 - -0.5)


def test_it_ignores_words_that_start_with_a_verdict_letter() -> None:
    tokens = [_tok("[["), _tok("A", -0.2, {"A": -0.2, "Assistant": -0.5, "B": -3.0}), _tok("]]")]
    assert verdict_margin(tokens).value == pytest.approx(-0.2 - -3.0)


def test_it_gives_a_bound_when_one_letter_is_outside_the_top_k() -> None:
    tokens = [_tok("[["), _tok("A", -0.05, {"A": -0.05, "C": -3.2, " A": -4.0}), _tok("]]")]
    margin = verdict_margin(tokens)
    assert not margin.exact
    assert "B not among" in margin.reason
    # logprob(B) <= -4.0, the smallest listed, so the true margin is at least this
    assert margin.value == pytest.approx(-0.05 - -4.0)


@pytest.mark.parametrize(
    ("tokens", "reason_part"),
    [
        ([], "no log-probabilities"),
        ([_tok("I"), _tok(" think"), _tok(" A")], "verdict not located"),
        ([_tok("[["), _tok("C", -0.1, {"C": -0.1, "D": -2.0}), _tok("]]")], "neither A nor B"),
    ],
)
def test_it_reports_why_there_is_no_margin(tokens: list[TokenLogprob], reason_part: str) -> None:
    margin = verdict_margin(tokens)
    assert margin == LogprobMargin(margin.value, False, margin.reason, margin.token_index)
    assert margin.value is None
    assert reason_part in margin.reason
