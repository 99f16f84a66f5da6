"""Verdict vocabulary, tie policies and the result types every metric returns.

A pairwise verdict, from a person or a judge, is one of ``A``, ``B``, ``tie`` or ``both_bad``.
``both_bad`` counts as a tie unless a policy keeps it apart. Every agreement figure states its
tie policy (METHODS.md section 1, after MT-Bench, Zheng et al. 2023, arXiv 2306.05685):

- **S1, ties kept**: a tie is a category; a judge verdict that flips when the two responses are
  swapped counts as a tie (see :func:`combine_orders`). Chance level 1/3.
- **S2, ties dropped**: only votes where both sides prefer a response. Chance level 1/2.

Degenerate input never yields NaN or an exception: a coefficient returns :class:`Undefined`
with the reason, so a page can print "undefined: only one category observed".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from scipy import stats

A: Final = "A"
B: Final = "B"
TIE: Final = "tie"
BOTH_BAD: Final = "both_bad"
OUTCOMES: Final = (A, B, TIE, BOTH_BAD)


@functools.lru_cache(maxsize=16)
def normal_z(level: float) -> float:
    """The two-sided normal quantile of a confidence ``level`` (1.96 at 0.95), computed once
    per level: scipy's ppf costs ~0.1 ms a call and a snapshot asks for it a few hundred times."""
    return float(stats.norm.ppf(0.5 + level / 2.0))


@functools.lru_cache(maxsize=64)
def t_quantile(level: float, df: int) -> float:
    """The two-sided Student t quantile of a confidence ``level`` with ``df`` degrees of
    freedom, computed once per (level, df): a snapshot's regressions ask for it some eighty
    times with a handful of distinct df, at ~0.1 ms a scipy call."""
    return float(stats.t.ppf(0.5 + level / 2.0, df))


NO_ITEMS: Final = "no items"
ONE_CATEGORY: Final = "only one category observed"
FEWER_THAN_TWO_RATERS: Final = "fewer than 2 raters on every item"

# Spellings met in public datasets (Chatbot Arena, MT-Bench human judgments).
_ALIASES: Final[Mapping[str, str]] = {
    "a": A,
    "model_a": A,
    "b": B,
    "model_b": B,
    "tie": TIE,
    "tie (inconsistent)": TIE,
    "both_bad": BOTH_BAD,
    "bothbad": BOTH_BAD,
    "tie (bothbad)": BOTH_BAD,
}


def parse_outcome(raw: object) -> str:
    """Return the canonical verdict for ``raw`` (``"model_a"`` -> ``"A"``, ...).

    Raises ``ValueError`` naming the value when it is not a known verdict spelling.
    """
    key = str(raw).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown verdict {raw!r}; expected one of A, B, tie, both_bad")
    return _ALIASES[key]


def swap(outcome: str) -> str:
    """Return the verdict seen from the other side: ``A`` <-> ``B``; ties are unchanged."""
    return {A: B, B: A}.get(outcome, outcome)


def combine_orders(original: Any, swapped: Any) -> np.ndarray:
    """Combine a judge's verdicts from both presentation orders under the S1 rule.

    Both arguments are array-likes of verdicts *about the same responses* (``A`` always names
    the same response; map a verdict given in swapped slot order back with :func:`swap` first).
    A verdict that survives the swap is kept; an inconsistent one becomes ``tie``
    (MT-Bench: "we treat inconsistent verdicts as ties"). ``both_bad`` is read as a tie.
    """
    first = _as_tie(np.asarray(original, dtype=object))
    second = _as_tie(np.asarray(swapped, dtype=object))
    if first.shape != second.shape:
        raise ValueError(
            f"original has {first.shape[0]} verdicts but swapped has {second.shape[0]}"
        )
    return np.where(first == second, first, TIE)


def _as_tie(values: np.ndarray) -> np.ndarray:
    return np.where(values == BOTH_BAD, TIE, values)


@dataclass(frozen=True)
class TiePolicy:
    """How ties enter an agreement figure.

    ``drop_ties`` is S2: votes that are ``tie`` (or ``both_bad``) are removed, so every remaining
    comparison is between two preferences. ``both_bad_is_tie`` (default) merges ``both_bad``
    into ``tie``; set it to False to keep "both are bad" as its own category under S1.
    """

    name: str
    drop_ties: bool
    both_bad_is_tie: bool = True

    @property
    def categories(self) -> tuple[str, ...]:
        """The verdict scale under this policy, in ordinal order (prefer A .. prefer B)."""
        if self.drop_ties:
            return (A, B)
        if self.both_bad_is_tie:
            return (A, TIE, B)
        return (A, TIE, BOTH_BAD, B)

    @property
    def chance_level(self) -> float:
        """Agreement of two raters answering uniformly at random (1/3 for S1, 1/2 for S2)."""
        return 1.0 / len(self.categories)

    def apply(self, values: pd.Series) -> pd.Series:
        """Return ``values`` with ``both_bad`` merged into ``tie`` and, under S2, ties removed.

        Values outside the verdict vocabulary (e.g. a 1-5 scale) pass through untouched.
        """
        if self.both_bad_is_tie or self.drop_ties:
            values = values.mask(values.eq(BOTH_BAD), TIE)
        if self.drop_ties:
            values = values[~values.eq(TIE)]
        return values


S1: Final = TiePolicy("S1", drop_ties=False)
S2: Final = TiePolicy("S2", drop_ties=True)


@dataclass(frozen=True)
class Estimate:
    """A defined statistic: its value, the number of items behind it and, if asked, a CI.

    ``n`` counts the units the bootstrap resamples (items, or clusters when a cluster column is
    given the CI resamples clusters but ``n`` still counts items). ``details`` holds the parts
    of the formula (``p_a``, ``p_e``, counts) so a page can show how the figure was reached.
    """

    value: float
    n: int
    ci: tuple[float, float] | None = None
    level: float | None = None
    details: Mapping[str, float | int | str] = field(default_factory=dict)

    defined = True
    reason = None


@dataclass(frozen=True)
class Undefined:
    """A statistic that has no value on this input, with the reason in plain words.

    ``value`` is always None so templates can test ``result.defined`` or ``result.value``
    the same way for both result types.
    """

    reason: str
    n: int = 0
    details: Mapping[str, float | int | str] = field(default_factory=dict)

    value = None
    ci = None
    level = None
    defined = False


Result = Estimate | Undefined


# --- JSON ------------------------------------------------------------------------------------


def json_number(value: Any) -> Any:
    """A JSON-safe scalar: finite floats rounded to 6 decimals, NaN/inf as None."""
    kind = type(value)
    if kind is float:  # the common case first: a snapshot converts some 10,000 numbers
        return round(value, 6) if math.isfinite(value) else None
    if kind is str:
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return round(number, 6) if math.isfinite(number) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def result_json(result: Result) -> dict[str, Any]:
    """An Estimate or Undefined as JSON: value, n, ci, level, details (or reason)."""
    details = {str(k): json_number(v) for k, v in dict(result.details).items()}
    if isinstance(result, Undefined) or not result.defined:
        return {"value": None, "reason": result.reason, "n": int(result.n), "details": details}
    ci = None
    if result.ci is not None:
        low, high = (json_number(v) for v in result.ci)
        ci = [low, high] if low is not None and high is not None else None
    return {
        "value": json_number(result.value),
        "n": int(result.n),
        "ci": ci,
        "level": json_number(result.level),
        "details": details,
    }
