"""Reading a judge's answer: the verdict, per-criterion verdicts, both orders, logprob margins.

Verdict tokens
--------------
Overall verdicts are written in double square brackets. Recognised tokens and their meaning
(outcome, strength; strength 2 means "much better", ties have no strength):

============  ===========  ========================================
token         outcome      source
============  ===========  ========================================
``[[A]]``     A, 1         MT-Bench pair-v2 (FastChat)
``[[B]]``     B, 1         MT-Bench pair-v2
``[[C]]``     tie          MT-Bench pair-v2
``[[A>>B]]``  A, 2         Arena-Hard / SOS-Bench
``[[A>B]]``   A, 1         Arena-Hard / SOS-Bench
``[[A=B]]``   tie          Arena-Hard / SOS-Bench
``[[B>A]]``   B, 1         Arena-Hard / SOS-Bench
``[[B>>A]]``  B, 2         Arena-Hard / SOS-Bench
============  ===========  ========================================

Per-criterion verdicts use double parentheses after a name and a colon, e.g.
``Correctness: ((A>B))`` or ``**Safety**: ((A=B))``; the same tokens apply without the
MT-Bench letters ``A``/``B``/``C`` being required.

Two modes:

- **tolerant** (default): case and inner whitespace are ignored (``[[ a > b ]]``), the mirrored
  spellings ``A<B``, ``A<<B``, ``B<A``, ``B<<A``, ``B=A`` are read as the verdicts they state,
  and when the answer holds several verdicts **the last one wins** (models often quote the
  format, "[[A]] if A is better, [[B]] if B is better", before concluding). FastChat instead
  checks ``[[A]]``, then ``[[B]]``, then ``[[C]]`` anywhere in the text, so a quoted format
  makes every answer "A"; reading the last verdict avoids that.
- **strict**: only the exact spellings in the table, and several *different* verdicts in one
  answer are a failed parse, as in Arena-Hard-Auto's ``get_score``.

Anything else is a failed parse with the reason; a verdict is never guessed from prose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from judges.core.templates import SOS_BENCH_CRITERIA

Outcome = Literal["A", "B", "tie"]
ParseStatus = Literal["ok", "failed"]
ParseMode = Literal["tolerant", "strict"]

# token -> (outcome, strength)
EXACT_TOKENS: Final[Mapping[str, tuple[Outcome, int | None]]] = MappingProxyType(
    {
        "A": ("A", 1),
        "B": ("B", 1),
        "C": ("tie", None),
        "A>>B": ("A", 2),
        "A>B": ("A", 1),
        "A=B": ("tie", None),
        "B>A": ("B", 1),
        "B>>A": ("B", 2),
    }
)
MIRRORED_TOKENS: Final[Mapping[str, str]] = MappingProxyType(
    {"A<B": "B>A", "A<<B": "B>>A", "B<A": "A>B", "B<<A": "A>>B", "B=A": "A=B"}
)
# Criterion verdicts: the graded tokens only (a bare "((A))" is not a documented criterion form).
CRITERION_TOKENS: Final = ("A>>B", "A>B", "A=B", "B>A", "B>>A")

_BRACKET = re.compile(r"\[\[([^\[\]\n]{0,24})\]\]")
# A criterion name of one to three words, optionally in markdown bold, a colon (ASCII or
# full-width), then the ((...)) token.
_CRITERION = re.compile(
    r"(?<![A-Za-z])(?P<name>[A-Za-z][A-Za-z-]*(?:[ \t]+[A-Za-z][A-Za-z-]*){0,2})"
    r"[ \t]*\**[ \t]*[:\uff1a][ \t]*\**[ \t]*\(\((?P<token>[^()\n]{0,24})\)\)"
)
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CriterionVerdict:
    outcome: Outcome
    strength: int | None
    token: str


@dataclass(frozen=True)
class ParsedVerdict:
    """One answer read in the labels the judge saw (its "A" is whatever was shown first).

    ``letter_offset`` is the index in the text of the first character inside the winning
    ``[[...]]`` (the "A" of ``[[A>B]]``): the position whose log-probabilities give the margin.
    ``conflicting`` is True when the answer held several different verdicts (tolerant mode
    kept the last one).
    """

    status: ParseStatus
    outcome: Outcome | None = None
    strength: int | None = None
    token: str | None = None
    criteria: Mapping[str, CriterionVerdict] = field(default_factory=dict)
    reason: str = ""
    letter_offset: int | None = None
    conflicting: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def criteria_json(self) -> dict[str, dict[str, Any]]:
        """Criteria as plain JSON: ``{"safety": {"outcome": "A", "strength": 2, ...}}``."""
        return {
            name: {"outcome": c.outcome, "strength": c.strength, "token": c.token}
            for name, c in self.criteria.items()
        }


def normalise_token(raw: str, *, mode: ParseMode = "tolerant") -> str | None:
    """The canonical spelling of a verdict token, or None when it is not one."""
    if mode == "strict":
        return raw if raw in EXACT_TOKENS else None
    token = _WHITESPACE.sub("", raw).upper()
    token = MIRRORED_TOKENS.get(token, token)
    return token if token in EXACT_TOKENS else None


def parse_verdict(
    text: str | None,
    *,
    mode: ParseMode = "tolerant",
    allow_tie: bool = True,
    known_criteria: Sequence[str] = SOS_BENCH_CRITERIA,
) -> ParsedVerdict:
    """Read the overall and per-criterion verdicts of one judge answer.

    ``allow_tie=False`` (the ``force_choice`` tie policy) makes a tie answer a failed parse:
    the judge disobeyed the prompt, and counting it as a tie would hide that.
    ``known_criteria`` (default: SOS-Bench's five) maps a longer captured name onto the known
    criterion that ends it ("verdict for correctness" -> "correctness"); other names are kept
    as written, lowercased, with runs of whitespace collapsed.
    """
    if text is None or not text.strip():
        return ParsedVerdict(status="failed", reason="empty output")
    criteria, warnings = _parse_criteria(text, mode=mode, known_criteria=known_criteria)

    found: list[tuple[str, int]] = []  # (canonical token, offset of its first letter)
    unrecognised: list[str] = []
    for match in _BRACKET.finditer(text):
        raw = match.group(1)
        token = normalise_token(raw, mode=mode)
        if token is None:
            unrecognised.append(match.group(0))
            continue
        inner_start = match.start(1)
        found.append((token, inner_start + (len(raw) - len(raw.lstrip()))))

    if not found:
        if unrecognised:
            shown = ", ".join(repr(u) for u in unrecognised[:3])
            reason = f"no verdict token; found {shown}, which {_is_are(unrecognised)} not one"
        else:
            reason = "no verdict token such as [[A]], [[B]], [[C]] or [[A>B]] in the output"
        return ParsedVerdict(status="failed", criteria=criteria, reason=reason, warnings=warnings)

    distinct_outcomes = {(EXACT_TOKENS[t][0], EXACT_TOKENS[t][1]) for t, _ in found}
    conflicting = len(distinct_outcomes) > 1
    if conflicting and mode == "strict":
        tokens = ", ".join(f"[[{t}]]" for t, _ in found)
        return ParsedVerdict(
            status="failed",
            criteria=criteria,
            reason=f"conflicting verdicts in strict mode: {tokens}",
            conflicting=True,
            warnings=warnings,
        )

    token, offset = found[-1]
    outcome, strength = EXACT_TOKENS[token]
    if outcome == "tie" and not allow_tie:
        return ParsedVerdict(
            status="failed",
            token=token,
            criteria=criteria,
            reason=f"tie verdict [[{token}]] although the tie policy is force_choice",
            letter_offset=offset,
            conflicting=conflicting,
            warnings=warnings,
        )
    return ParsedVerdict(
        status="ok",
        outcome=outcome,
        strength=strength,
        token=token,
        criteria=criteria,
        letter_offset=offset,
        conflicting=conflicting,
        warnings=warnings,
    )


def _parse_criteria(
    text: str, *, mode: ParseMode, known_criteria: Sequence[str]
) -> tuple[dict[str, CriterionVerdict], tuple[str, ...]]:
    known = [k.lower() for k in known_criteria]
    criteria: dict[str, CriterionVerdict] = {}
    warnings: list[str] = []
    for match in _CRITERION.finditer(text):
        name = _WHITESPACE.sub(" ", match.group("name").strip()).lower()
        for candidate in known:
            if name == candidate or name.endswith(" " + candidate):
                name = candidate
                break
        raw = match.group("token")
        token = normalise_token(raw, mode=mode)
        if token is None or token not in CRITERION_TOKENS:
            warnings.append(f"criterion {name!r}: (({raw})) is not a verdict token")
            continue
        outcome, strength = EXACT_TOKENS[token]
        criteria.pop(name, None)  # re-insert so the dict keeps the order of the last mention
        criteria[name] = CriterionVerdict(outcome=outcome, strength=strength, token=token)
    return criteria, tuple(warnings)


def _is_are(items: Sequence[object]) -> str:
    return "is" if len(items) == 1 else "are"


# --- both orders ------------------------------------------------------------------------------

_SWAP: Final[Mapping[Outcome, Outcome]] = MappingProxyType({"A": "B", "B": "A", "tie": "tie"})


def map_back(outcome: Outcome | None) -> Outcome | None:
    """An outcome read in the swapped order ("ba"), in the pair's own labels."""
    return None if outcome is None else _SWAP[outcome]


@dataclass(frozen=True)
class CombinedVerdict:
    """A pair's verdict after both orders, in the pair's own labels.

    ``outcome_ba`` and ``margin_ba`` are already mapped back (the judge's "A" in the swapped
    order is the pair's B, and its margin is negated). ``consistent`` is None when only one
    order ran. ``status`` is "failed" when an order that should have run did not parse; the
    pair then has no combined outcome (a failure is not a tie).
    """

    status: ParseStatus
    outcome: Outcome | None
    strength: int | None
    consistent: bool | None
    outcome_ab: Outcome | None
    outcome_ba: Outcome | None
    margin: float | None
    margin_ab: float | None
    margin_ba: float | None
    reason: str = ""


def combine_orders(
    ab: ParsedVerdict | None,
    ba: ParsedVerdict | None,
    *,
    margin_ab: float | None = None,
    margin_ba: float | None = None,
    swapped: bool = True,
) -> CombinedVerdict:
    """Combine the verdicts of the two presentation orders (MT-Bench's rule).

    ``ab``/``ba`` are the parses in the labels the judge saw; None means the call failed.
    ``swapped=False`` is the ``ab_only`` swap policy: the AB verdict stands alone.

    - Both orders agree (after mapping BA back): that outcome; strength is the weaker of the
      two, so "A>>B" one way and "A>B" the other is "A>B".
    - They disagree: a tie, as MT-Bench counts an inconsistent pair (FastChat
      ``play_a_match_pair``: ``g1_winner != g2_winner`` -> ``"inconsistent"``), with no
      strength.
    - Margin: the mean of the AB margin and the negated BA margin, so a judge that favours
      the first slot by the same amount in both orders nets to zero. None when either is None.
    """
    mapped_margin_ba = None if margin_ba is None else -margin_ba
    outcome_ab = ab.outcome if ab is not None and ab.ok else None
    outcome_ba = map_back(ba.outcome) if ba is not None and ba.ok else None

    failed = []
    if ab is None or not ab.ok:
        failed.append("AB")
    if swapped and (ba is None or not ba.ok):
        failed.append("BA")
    if failed:
        return CombinedVerdict(
            status="failed",
            outcome=None,
            strength=None,
            consistent=None,
            outcome_ab=outcome_ab,
            outcome_ba=outcome_ba,
            margin=None,
            margin_ab=margin_ab,
            margin_ba=mapped_margin_ba,
            reason=f"{' and '.join(failed)} order has no parsed verdict",
        )
    assert ab is not None and outcome_ab is not None
    if not swapped:
        return CombinedVerdict(
            status="ok",
            outcome=outcome_ab,
            strength=ab.strength,
            consistent=None,
            outcome_ab=outcome_ab,
            outcome_ba=None,
            margin=margin_ab,
            margin_ab=margin_ab,
            margin_ba=None,
        )
    assert ba is not None and outcome_ba is not None
    consistent = outcome_ab == outcome_ba
    strength: int | None = None
    if consistent and outcome_ab != "tie" and ab.strength is not None and ba.strength is not None:
        strength = min(ab.strength, ba.strength)
    margin = None
    if margin_ab is not None and mapped_margin_ba is not None:
        margin = (margin_ab + mapped_margin_ba) / 2
    return CombinedVerdict(
        status="ok",
        outcome=outcome_ab if consistent else "tie",
        strength=strength,
        consistent=consistent,
        outcome_ab=outcome_ab,
        outcome_ba=outcome_ba,
        margin=margin,
        margin_ab=margin_ab,
        margin_ba=mapped_margin_ba,
    )


# --- log-probability margins --------------------------------------------------------------------


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class LogprobMargin:
    """logprob("A") - logprob("B") at the verdict position, in the labels the judge saw.

    ``exact`` is False when one letter was missing from the top-k alternatives: its
    log-probability is then at most the smallest one listed, so ``value`` is a bound that
    understates the margin's size (a lower bound when A was listed, an upper bound when B
    was). ``value`` is None, with the reason, when neither letter could be read.
    """

    value: float | None
    exact: bool
    reason: str = ""
    token_index: int | None = None


def verdict_margin(
    tokens: Sequence[TokenLogprob], *, mode: ParseMode = "tolerant"
) -> LogprobMargin:
    """The A-vs-B log-probability margin at the verdict token.

    How the verdict token is located: the tokens are joined back into the answer text, the
    answer is parsed exactly as `parse_verdict` does (so the *last* verdict, the one that
    counts), and the token covering the first character inside its ``[[`` is the verdict
    token -- the "A" of ``[[A>B]]``, or ``[[A`` when the tokenizer merged the brackets with
    the letter. Among that position's top alternatives, those with the same text before the
    letter (the brackets, if merged) vote: the best alternative starting with A gives
    logprob(A), the best starting with B gives logprob(B). For graded verdicts this compares
    the first letter only ("A>B" and "A=B" both start with A); for MT-Bench's [[C]] the C
    alternative is ignored.
    """
    if not tokens:
        return LogprobMargin(None, False, "no log-probabilities were returned")
    text = "".join(t.token for t in tokens)
    parsed = parse_verdict(text, mode=mode)
    if parsed.letter_offset is None:
        return LogprobMargin(None, False, f"verdict not located in the tokens: {parsed.reason}")
    offset = parsed.letter_offset
    index, start = _token_at(tokens, offset)
    tok = tokens[index]
    prefix = text[start:offset].strip()
    candidates = [(tok.token, tok.logprob), *tok.top]
    best: dict[str, float] = {}
    for alt, logprob in candidates:
        alt_text = alt.strip()
        if not alt_text.startswith(prefix):
            continue
        rest = alt_text[len(prefix) :].lstrip()
        if len(rest) > 1 and rest[1].isalpha():
            continue  # a word such as "Assistant", not a verdict letter
        letter = rest[:1] if mode == "strict" else rest[:1].upper()
        if letter in ("A", "B") and logprob > best.get(letter, float("-inf")):
            best[letter] = logprob
    if "A" in best and "B" in best:
        return LogprobMargin(best["A"] - best["B"], True, token_index=index)
    listed = [lp for _, lp in candidates]
    floor = min(listed)
    if "A" in best:
        return LogprobMargin(
            best["A"] - floor,
            False,
            f"B not among the {len(tok.top)} listed alternatives; value is a lower bound",
            token_index=index,
        )
    if "B" in best:
        return LogprobMargin(
            floor - best["B"],
            False,
            f"A not among the {len(tok.top)} listed alternatives; value is an upper bound",
            token_index=index,
        )
    return LogprobMargin(
        None, False, "neither A nor B among the verdict token's alternatives", token_index=index
    )


def _token_at(tokens: Sequence[TokenLogprob], offset: int) -> tuple[int, int]:
    """Index of the token covering character ``offset`` of the joined text, and its start."""
    start = 0
    for index, tok in enumerate(tokens):
        end = start + len(tok.token)
        if offset < end:
            return index, start
        start = end
    raise ValueError(f"offset {offset} is past the end of the tokens")  # pragma: no cover


def combine_margins(
    margin_ab: float | None, margin_ba: float | None, *, swapped: bool = True
) -> float | None:
    """Mean of the AB margin and the negated BA margin (both in the labels the judge saw)."""
    if not swapped:
        return margin_ab
    if margin_ab is None or margin_ba is None:
        return None
    return (margin_ab - margin_ba) / 2
