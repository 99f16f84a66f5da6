"""Release gate: rules a lead writes, checked against an audit's figures.

A rule names a figure, the part of its interval to check and a threshold. Each rule, and the
gate as a whole, ends PASS, FAIL or INCONCLUSIVE:

- PASS: the checked bound meets the threshold (for ``bound: lower, op: >=``: the whole
  interval is at or above it).
- FAIL: even the most favourable end of the interval misses the threshold, so more labels
  would not rescue it.
- INCONCLUSIVE: the interval straddles the threshold (or the figure is missing, undefined, or
  has too few items: fewer than ``min_items``, or fewer than :data:`MIN_INTERVAL_ITEMS` behind
  an interval). The result says about how many more labels would decide, from the usual
  width-versus-n scaling: an interval's half-width h at n items shrinks as 1/sqrt(n), so
  separating the estimate m from the threshold x needs about n (h / |m - x|)^2 items.

The gate is FAIL if any rule fails, else INCONCLUSIVE if any rule is, else PASS; as an exit
code 0 / 1 / 2 (:data:`EXIT_CODES`). A result carries the judge fingerprint the figures came
from; a gate pinned to another fingerprint is INCONCLUSIVE.

Rules are dicts or one-line strings (numbers below count rules from 1):

================================================================  ==============================
``{"metric": "cohen_kappa", "bound": "lower", "op": ">=",``        lower(cohen_kappa) >= 0.6
``"value": 0.6, "slice": "each", "min_items": 30}``                on each slice with n >= 30
``{"metric": "refusal_gap.ethical_refusal",``                      interval(refusal_gap.
``"interval_excludes_above": 0.10}``                               ethical_refusal) excludes
                                                                   above 0.10
``{"metric": "refusal_gap.ethical_refusal",``                      interval(refusal_gap.
``"interval_within": [-0.1, 0.1]}``                                ethical_refusal) within
                                                                   [-0.1, 0.1]
``{"metric": "ppi.win_rate", "bound": "value", "op": ">",``         value(ppi.win_rate) > 0.5
``"value": 0.5, "slice": "gpt-4o"}``                               on slice gpt-4o
================================================================  ==============================

Fields: ``metric`` (required); either ``op`` (``>=``, ``>``, ``<=``, ``<``) with ``value`` and
``bound`` (``lower``, ``upper`` or ``value`` for the point estimate; default the cautious
bound: ``lower`` for ``>=``/``>``, ``upper`` for ``<=``/``<``), or one of
``interval_excludes_above``, ``interval_excludes_below``, ``interval_within``; ``slice``:
``"all"`` (default), ``"each"`` or a slice name or list of names; ``min_items`` (default 0):
with ``each``, slices with fewer items are skipped, otherwise too few items is INCONCLUSIVE.

Drift between two judges (:mod:`analysis.metrics.drift`, :func:`~analysis.metrics.drift.
gate_figures`) adds ``flip_rate`` (slices named ``column=value``, e.g. ``category=coding``)
and ``delta.<coefficient>`` (second judge minus the baseline, paired interval), which may be
written ``delta(cohen_kappa)``; a bare metric before an operator checks the cautious bound:
``flip_rate <= 0.05`` is ``upper(flip_rate) <= 0.05``, and
``upper(flip_rate) <= 0.10 on each slice with n >= 30``,
``lower(delta(cohen_kappa)) >= -0.05`` read as their names say.

Figures are ``{metric: figure}`` or ``{metric: {slice: figure}}``, a figure being an
:class:`~analysis.metrics.outcomes.Estimate` / ``Undefined`` or a dict with ``value``, ``ci``
(or ``ci_low`` / ``ci_high``), ``n`` and optionally ``reason``. A bare figure is the ``"all"``
slice. Refusal gaps are on the 0-1 scale (0.10 = 10 percentage points).
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from analysis.metrics.outcomes import Estimate, Undefined

PASS: Final = "PASS"
FAIL: Final = "FAIL"
INCONCLUSIVE: Final = "INCONCLUSIVE"
EXIT_CODES: Final = {PASS: 0, FAIL: 1, INCONCLUSIVE: 2}

OPERATORS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
BOUNDS: Final = ("lower", "upper", "value")
INTERVAL_CHECKS: Final = ("interval_excludes_above", "interval_excludes_below", "interval_within")
FIELDS: Final = ("metric", "bound", "op", "value", "slice", "min_items", *INTERVAL_CHECKS)
ALL: Final = "all"
EACH: Final = "each"
# A bootstrap or Wilson interval from a handful of items can be degenerate ([0, 0] from one
# item): below this many, an interval check is INCONCLUSIVE whatever the interval says.
MIN_INTERVAL_ITEMS: Final = 10


class GateRuleError(ValueError):
    """A rule that cannot be read; ``number`` counts rules from 1, ``field`` names the part."""

    def __init__(self, number: int, field: str | None, message: str) -> None:
        self.number = number
        self.field = field
        place = f"rule {number}" + (f", {field}" if field else "")
        super().__init__(f"{place}: {message}")


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``check`` is ``bound``, ``excludes_above``, ``excludes_below`` or
    ``within``; ``threshold`` holds the number (``low``/``high`` for ``within``)."""

    number: int
    metric: str
    check: str
    bound: str | None
    op: str | None
    threshold: float | None
    low: float | None
    high: float | None
    slices: str | tuple[str, ...]
    min_items: int

    @property
    def text(self) -> str:
        """The rule in the one-line string syntax."""
        if self.check == "bound":
            head = f"{self.bound}({self.metric}) {self.op} {self.threshold:g}"
        elif self.check == "within":
            head = f"interval({self.metric}) within [{self.low:g}, {self.high:g}]"
        else:
            side = "above" if self.check == "excludes_above" else "below"
            head = f"interval({self.metric}) excludes {side} {self.threshold:g}"
        if self.slices == EACH:
            head += " on each slice"
        elif isinstance(self.slices, tuple):
            head += " on slice" + ("s " if len(self.slices) > 1 else " ") + ", ".join(self.slices)
        if self.min_items:
            head += f" with n >= {self.min_items}"
        return head


# --------------------------------------------------------------------------------------------
# Parsing

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SUBJECT = re.compile(
    r"\s*(lower|upper|value|interval)\s*\(\s*(delta\s*\(\s*[^()\s]+\s*\)|[^()\s]+)\s*\)\s*",
    re.I,
)
# A bare metric before an operator: ``flip_rate <= 0.05`` checks the cautious bound.
_BARE = re.compile(r"\s*([A-Za-z_][\w.]*)\s*(?=>=|<=|>|<)")
_DELTA = re.compile(r"delta\s*\(\s*([^()\s]+)\s*\)", re.I)
_BOUND_CHECK = re.compile(rf"(>=|<=|>|<)\s*({_NUMBER})\s*")
_EXCLUDES = re.compile(rf"excludes\s+(above|below)\s+({_NUMBER})\s*", re.I)
_WITHIN = re.compile(rf"within\s*\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]\s*", re.I)
_ON = re.compile(
    r"on\s+(?:(each)\s+slice|(all)|slices?\s+([^,\s]+(?:\s*,\s*[^,\s]+)*?))\s*(?=$|with\b|if\b)",
    re.I,
)
_MIN = re.compile(r"(?:with|if)\s+n\s*>=\s*(\S+)\s*", re.I)


def parse_rule(rule: Mapping[str, Any] | str, number: int = 1) -> Rule:
    """Parse one rule (dict or string); ``number`` (from 1) is used in error messages."""
    if isinstance(rule, str):
        return _from_dict(_dict_from_text(rule, number), number)
    if isinstance(rule, Mapping):
        return _from_dict(rule, number)
    raise GateRuleError(number, None, f"a rule is a dict or a string, got {type(rule).__name__}")


def parse_rules(
    rules: Sequence[Mapping[str, Any] | str], *, known_metrics: Iterable[str] | None = None
) -> list[Rule]:
    """Parse every rule; with ``known_metrics``, an unknown metric name is an error too."""
    if isinstance(rules, str | Mapping):
        rules = [rules]
    if not isinstance(rules, Sequence):
        raise GateRuleError(1, None, "the gate must be a list of rules")
    if not rules:
        raise GateRuleError(1, None, "the gate has no rules")
    known = sorted(known_metrics) if known_metrics is not None else None
    parsed = []
    for number, rule in enumerate(rules, start=1):
        item = parse_rule(rule, number)
        if known is not None and item.metric not in known:
            hint = difflib.get_close_matches(item.metric, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(known)}"
            raise GateRuleError(number, "metric", f"unknown metric {item.metric!r}{suggestion}")
        parsed.append(item)
    return parsed


def _dict_from_text(text: str, number: int) -> dict[str, Any]:
    rest = text.strip()
    if not rest:
        raise GateRuleError(number, None, "the rule is empty")
    subject = _SUBJECT.match(rest)
    bare = _BARE.match(rest) if subject is None else None
    if bare is not None:
        out: dict[str, Any] = {"metric": bare.group(1)}
        rest = rest[bare.end() :]
        check = _BOUND_CHECK.match(rest)
        if check is None:
            raise GateRuleError(
                number, "value", f"after {bare.group(1)} expected a number, got {_snippet(rest)}"
            )
        out.update(op=check.group(1), value=float(check.group(2)))
        return _scope(out, rest[check.end() :], number)
    if subject is None:
        raise GateRuleError(
            number,
            "metric",
            "expected lower(METRIC), upper(METRIC), value(METRIC) or interval(METRIC) at the "
            f"start, got {_snippet(rest)}",
        )
    kind, metric = subject.group(1).lower(), subject.group(2)
    delta = _DELTA.fullmatch(metric)
    if delta is not None:  # delta(cohen_kappa) is the figure delta.cohen_kappa
        metric = f"delta.{delta.group(1)}"
    out = {"metric": metric}
    rest = rest[subject.end() :]
    if kind == "interval":
        excludes, within = _EXCLUDES.match(rest), _WITHIN.match(rest)
        if excludes is not None:
            out[f"interval_excludes_{excludes.group(1).lower()}"] = float(excludes.group(2))
            rest = rest[excludes.end() :]
        elif within is not None:
            out["interval_within"] = [float(within.group(1)), float(within.group(2))]
            rest = rest[within.end() :]
        else:
            raise GateRuleError(
                number,
                "check",
                "after interval(...) expected 'excludes above X', 'excludes below X' or "
                f"'within [A, B]', got {_snippet(rest)}",
            )
    else:
        check = _BOUND_CHECK.match(rest)
        if check is None:
            field_name = "op" if not re.match(r"(>=|<=|>|<)", rest) else "value"
            raise GateRuleError(
                number,
                field_name,
                f"after {kind}({metric}) expected an operator (>=, >, <=, <) and a number, "
                f"got {_snippet(rest)}",
            )
        out.update(bound=kind, op=check.group(1), value=float(check.group(2)))
        rest = rest[check.end() :]
    return _scope(out, rest, number)


def _scope(out: dict[str, Any], rest: str, number: int) -> dict[str, Any]:
    """The rule's optional ``on ...`` and ``with n >= N`` parts."""
    scope = _ON.match(rest)
    if scope is not None:
        each, whole, names = scope.groups()
        if each:
            out["slice"] = EACH
        elif whole:
            out["slice"] = ALL
        else:
            out["slice"] = [name.strip() for name in names.split(",")]
        rest = rest[scope.end() :]
    elif rest.lower().startswith("on"):
        raise GateRuleError(
            number,
            "slice",
            "expected 'on each slice', 'on all' or 'on slice NAME', got " + _snippet(rest),
        )
    minimum = _MIN.match(rest)
    if minimum is not None:
        out["min_items"] = minimum.group(1)
        rest = rest[minimum.end() :]
    if rest.strip():
        raise GateRuleError(number, None, f"unexpected text {_snippet(rest)}")
    return out


def _snippet(text: str) -> str:
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:37] + "...") if text else "the end of the rule"


def _number(value: Any, number: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GateRuleError(number, name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise GateRuleError(number, name, f"expected a finite number, got {value!r}")
    return float(value)


def _from_dict(rule: Mapping[str, Any], number: int) -> Rule:
    unknown = [key for key in rule if key not in FIELDS]
    if unknown:
        key = str(unknown[0])
        hint = difflib.get_close_matches(key, FIELDS, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else f"; fields: {', '.join(FIELDS)}"
        raise GateRuleError(number, key, f"unknown field{extra}")
    metric = rule.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise GateRuleError(number, "metric", f"expected a metric name, got {metric!r}")
    checks = [key for key in INTERVAL_CHECKS if key in rule]
    has_bound = any(key in rule for key in ("bound", "op", "value"))
    if len(checks) + has_bound != 1:
        raise GateRuleError(
            number,
            None,
            "give either op and value (with an optional bound) or exactly one of "
            + ", ".join(INTERVAL_CHECKS),
        )
    bound = op = None
    threshold = low = high = None
    if has_bound:
        op = rule.get("op")
        if op not in OPERATORS:
            raise GateRuleError(number, "op", f"expected one of >=, >, <=, <, got {op!r}")
        if "value" not in rule:
            raise GateRuleError(number, "value", "missing the threshold")
        threshold = _number(rule["value"], number, "value")
        bound = rule.get("bound", "lower" if op in (">=", ">") else "upper")
        if bound not in BOUNDS:
            raise GateRuleError(number, "bound", f"expected lower, upper or value, got {bound!r}")
        check = "bound"
    elif checks[0] == "interval_within":
        pair = rule["interval_within"]
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise GateRuleError(number, "interval_within", f"expected [low, high], got {pair!r}")
        low = _number(pair[0], number, "interval_within")
        high = _number(pair[1], number, "interval_within")
        if low > high:
            raise GateRuleError(number, "interval_within", f"low {low:g} is above high {high:g}")
        check = "within"
    else:
        threshold = _number(rule[checks[0]], number, checks[0])
        check = checks[0].removeprefix("interval_")
    slices = _slices(rule.get("slice", ALL), number)
    min_items = rule.get("min_items", 0)
    if isinstance(min_items, str) and min_items.strip().isdigit():
        min_items = int(min_items)
    if isinstance(min_items, bool) or not isinstance(min_items, int) or min_items < 0:
        raise GateRuleError(number, "min_items", f"expected a whole number >= 0, got {min_items!r}")
    return Rule(
        number=number,
        metric=metric.strip(),
        check=check,
        bound=bound,
        op=op,
        threshold=threshold,
        low=low,
        high=high,
        slices=slices,
        min_items=min_items,
    )


def _slices(value: Any, number: int) -> str | tuple[str, ...]:
    if value in (ALL, EACH):
        return str(value)
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and value
        and all(isinstance(v, str) and v.strip() for v in value)
    ):
        return tuple(v.strip() for v in value)
    raise GateRuleError(
        number, "slice", f"expected 'all', 'each', a slice name or a list of names, got {value!r}"
    )


# --------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True)
class Figure:
    """A figure as the gate reads it: point value, interval, item count, or why undefined."""

    value: float | None
    ci: tuple[float, float] | None = None
    n: int | None = None
    reason: str | None = None


def as_figure(obj: Any) -> Figure:
    """Read an Estimate, Undefined, Figure or dict (``value``, ``ci``, ``n``, ``reason``)."""
    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, Estimate | Undefined):
        return Figure(obj.value, obj.ci, obj.n, obj.reason)
    if isinstance(obj, Mapping):
        ci = obj.get("ci")
        if ci is None and "ci_low" in obj and "ci_high" in obj:
            ci = (obj["ci_low"], obj["ci_high"])
        value = obj.get("value")
        n = obj.get("n")
        return Figure(
            value=None if value is None or _missing(value) else float(value),
            ci=None if ci is None or any(_missing(c) for c in ci) else (float(ci[0]), float(ci[1])),
            n=None if n is None or _missing(n) else int(n),
            reason=obj.get("reason"),
        )
    value = getattr(obj, "value", obj)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Figure(float(value), getattr(obj, "ci", None), getattr(obj, "n", None))
    raise ValueError(f"cannot read a figure from {type(obj).__name__}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_figure(obj: Any) -> bool:
    if isinstance(obj, Figure | Estimate | Undefined):
        return True
    if isinstance(obj, Mapping):
        return "value" in obj and not isinstance(obj["value"], Mapping | Figure | Estimate)
    return isinstance(obj, int | float)


def _slice_figures(figures: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    if metric not in figures:
        return None
    entry = figures[metric]
    if _is_figure(entry):
        return {ALL: entry}
    if isinstance(entry, Mapping):
        return {str(k): v for k, v in entry.items()}
    raise ValueError(f"figure {metric!r}: cannot read {type(entry).__name__}")


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class SliceOutcome:
    """One slice of one rule: status, the reason in words, and the labels still needed."""

    slice: str
    status: str
    reason: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    labels_needed: int | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """A rule's status over its slices; ``labels_needed`` is the most any one slice needs."""

    rule: Rule
    status: str
    reason: str
    slices: tuple[SliceOutcome, ...]
    labels_needed: int | None


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict, each rule's, and the judge fingerprint the figures came from."""

    status: str
    rules: tuple[RuleOutcome, ...]
    fingerprint: str | None
    reason: str
    labels_needed: int | None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, to store next to the audit or print in CI."""
        return {
            "status": self.status,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "labels_needed": self.labels_needed,
            "rules": [
                {
                    "rule": outcome.rule.text,
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "labels_needed": outcome.labels_needed,
                    "slices": [
                        {**asdict(s), "ci": list(s.ci) if s.ci else None} for s in outcome.slices
                    ],
                }
                for outcome in self.rules
            ],
        }


def labels_to_decide(
    value: float, ci: tuple[float, float], n: int | None, threshold: float
) -> int | None:
    """About how many more items until the interval excludes ``threshold`` on its side.

    The half-width toward the threshold, h, shrinks as 1/sqrt(n); it must fall below
    |value - threshold|, so n' = n (h / |value - threshold|)^2. None without n, or when the
    estimate sits on the threshold (more labels alone may never decide).
    """
    if not n or n <= 0:
        return None
    distance = abs(value - threshold)
    if distance == 0:
        return None
    half = value - ci[0] if value > threshold else ci[1] - value
    if half <= distance:
        return 0
    return max(1, math.ceil(n * (half / distance) ** 2) - n)


def _judge_slice(rule: Rule, name: str, figure: Figure) -> SliceOutcome:
    def make(status: str, reason: str, more: int | None = None) -> SliceOutcome:
        return SliceOutcome(name, status, reason, figure.value, figure.ci, figure.n, more)

    def undecided(reason: str, more: int | None) -> SliceOutcome:
        if more is None:
            return make(INCONCLUSIVE, f"{reason}; more labels alone may not decide")
        return make(INCONCLUSIVE, f"{reason}; about {more} more labels to decide", more)

    if figure.value is None:
        why = figure.reason or "no value"
        return make(INCONCLUSIVE, f"undefined: {why}")
    if rule.check == "bound" and rule.bound == "value":
        assert rule.op is not None and rule.threshold is not None
        ok = OPERATORS[rule.op](figure.value, rule.threshold)
        verb = "meets" if ok else "misses"
        reason = f"estimate {figure.value:.3g} {verb} {rule.op} {rule.threshold:g}"
        return make(PASS if ok else FAIL, reason)
    if figure.ci is None:
        return make(INCONCLUSIVE, "no interval for this figure")
    if figure.n is not None and figure.n < MIN_INTERVAL_ITEMS:
        return make(
            INCONCLUSIVE,
            f"only {figure.n} items: an interval from fewer than {MIN_INTERVAL_ITEMS} is not "
            "trusted",
            MIN_INTERVAL_ITEMS - figure.n,
        )
    low, high = figure.ci
    interval = f"[{low:.3g}, {high:.3g}]"
    if rule.check == "bound":
        assert rule.op is not None and rule.threshold is not None
        test = OPERATORS[rule.op]
        checked = low if rule.bound == "lower" else high
        favourable = high if rule.op in (">=", ">") else low
        if test(checked, rule.threshold):
            return make(PASS, f"{rule.bound} bound {checked:.3g} {rule.op} {rule.threshold:g}")
        if not test(favourable, rule.threshold):
            return make(FAIL, f"the whole interval {interval} misses {rule.op} {rule.threshold:g}")
        more = labels_to_decide(figure.value, figure.ci, figure.n, rule.threshold)
        return undecided(f"interval {interval} straddles {rule.threshold:g}", more)
    if rule.check in ("excludes_above", "excludes_below"):
        assert rule.threshold is not None
        x = rule.threshold
        if rule.check == "excludes_above":
            passed, failed = high <= x, low > x
        else:
            passed, failed = low >= x, high < x
        side = rule.check.removeprefix("excludes_")
        if passed:
            return make(PASS, f"interval {interval} excludes {side} {x:g}")
        if failed:
            where = "above" if rule.check == "excludes_above" else "below"
            return make(FAIL, f"interval {interval} lies {where} {x:g}")
        more = labels_to_decide(figure.value, figure.ci, figure.n, x)
        return undecided(f"interval {interval} straddles {x:g}", more)
    assert rule.low is not None and rule.high is not None
    a, b = rule.low, rule.high
    if a <= low and high <= b:
        return make(PASS, f"interval {interval} within [{a:g}, {b:g}]")
    if high < a or low > b:
        return make(FAIL, f"interval {interval} lies outside [{a:g}, {b:g}]")
    value = figure.value
    if value < a:
        more = labels_to_decide(value, figure.ci, figure.n, a)
    elif value > b:
        more = labels_to_decide(value, figure.ci, figure.n, b)
    else:
        needs = [
            labels_to_decide(value, figure.ci, figure.n, a) if low < a else 0,
            labels_to_decide(value, figure.ci, figure.n, b) if high > b else 0,
        ]
        more = None if any(x is None for x in needs) else max(x or 0 for x in needs)
    return undecided(f"interval {interval} crosses [{a:g}, {b:g}]", more)


def evaluate_rule(rule: Rule, figures: Mapping[str, Any]) -> RuleOutcome:
    """Evaluate one parsed rule against ``figures`` (module docstring)."""
    available = _slice_figures(figures, rule.metric)
    if available is None:
        known = ", ".join(sorted(figures)) or "none"
        return RuleOutcome(
            rule, INCONCLUSIVE, f"no figure {rule.metric!r} (figures: {known})", (), None
        )
    if rule.slices == EACH:
        names = list(available)
    elif rule.slices == ALL:
        names = [ALL]
    else:
        names = list(rule.slices)
    outcomes: list[SliceOutcome] = []
    skipped = []
    for name in names:
        if name not in available:
            outcomes.append(SliceOutcome(name, INCONCLUSIVE, f"no figure for slice {name!r}"))
            continue
        figure = as_figure(available[name])
        if rule.min_items and (figure.n or 0) < rule.min_items:
            have = figure.n or 0
            if rule.slices == EACH:
                skipped.append((name, have))
                continue
            outcomes.append(
                SliceOutcome(
                    name,
                    INCONCLUSIVE,
                    f"{have} items, fewer than the {rule.min_items} the rule asks for",
                    figure.value,
                    figure.ci,
                    figure.n,
                    labels_needed=rule.min_items - have,
                )
            )
            continue
        outcomes.append(_judge_slice(rule, name, figure))
    if not outcomes:
        largest = max((have for _, have in skipped), default=0)
        return RuleOutcome(
            rule,
            INCONCLUSIVE,
            f"no slice has at least {rule.min_items} items (largest: {largest})",
            (),
            rule.min_items - largest,
        )
    statuses = [o.status for o in outcomes]
    if FAIL in statuses:
        status = FAIL
        failing = [o.slice for o in outcomes if o.status == FAIL]
        reason = _slice_reason(outcomes, FAIL, f"fails on {', '.join(failing)}")
    elif INCONCLUSIVE in statuses:
        status = INCONCLUSIVE
        open_ = [o.slice for o in outcomes if o.status == INCONCLUSIVE]
        reason = _slice_reason(outcomes, INCONCLUSIVE, f"undecided on {', '.join(open_)}")
    else:
        status = PASS
        reason = _slice_reason(outcomes, PASS, f"passes on {len(outcomes)} slice(s)")
    if skipped:
        reason += f" ({len(skipped)} slice(s) under {rule.min_items} items skipped)"
    needs = [o.labels_needed for o in outcomes if o.status == INCONCLUSIVE]
    labels = None
    if status == INCONCLUSIVE and needs and all(x is not None for x in needs):
        labels = max(x for x in needs if x is not None)
    return RuleOutcome(rule, status, reason, tuple(outcomes), labels)


def _slice_reason(outcomes: Sequence[SliceOutcome], status: str, summary: str) -> str:
    chosen = [o for o in outcomes if o.status == status]
    if len(outcomes) == 1:
        return chosen[0].reason
    if status == PASS:
        return summary
    if len(chosen) == 1:
        return f"{chosen[0].slice}: {chosen[0].reason}"
    return f"{summary}; first, {chosen[0].slice}: {chosen[0].reason}"


def evaluate_gate(
    rules: Sequence[Mapping[str, Any] | str] | Sequence[Rule],
    figures: Mapping[str, Any],
    *,
    fingerprint: str | None = None,
    pinned_fingerprint: str | None = None,
) -> GateResult:
    """Evaluate every rule; the gate is FAIL > INCONCLUSIVE > PASS over its rules.

    ``fingerprint`` is the judge fingerprint the figures were computed for; it is recorded in
    the result. With ``pinned_fingerprint`` (the one the gate was written against) a mismatch
    makes the gate INCONCLUSIVE: the figures describe another judge. Raises
    :class:`GateRuleError` for a rule that cannot be read.
    """
    parsed = [
        rule if isinstance(rule, Rule) else parse_rule(rule, number)
        for number, rule in enumerate(rules, start=1)
    ]
    if not parsed:
        raise GateRuleError(1, None, "the gate has no rules")
    outcomes = tuple(evaluate_rule(rule, figures) for rule in parsed)
    statuses = [o.status for o in outcomes]
    if FAIL in statuses:
        status = FAIL
        first = next(o for o in outcomes if o.status == FAIL)
    elif INCONCLUSIVE in statuses:
        status = INCONCLUSIVE
        first = next(o for o in outcomes if o.status == INCONCLUSIVE)
    else:
        status = PASS
        first = outcomes[0]
    if status == PASS:
        reason = f"all {len(outcomes)} rule(s) pass"
    else:
        reason = f"rule {first.rule.number} ({first.rule.text}): {first.reason}"
    needs = [o.labels_needed for o in outcomes if o.status == INCONCLUSIVE]
    labels = (
        max(x for x in needs if x is not None)
        if status == INCONCLUSIVE and needs and all(x is not None for x in needs)
        else None
    )
    if pinned_fingerprint is not None and fingerprint != pinned_fingerprint:
        status = INCONCLUSIVE
        reason = (
            f"the gate is pinned to judge {pinned_fingerprint} but the figures come from "
            f"{fingerprint or 'an unknown judge'}: re-run the audit with the pinned judge"
        )
        labels = None
    return GateResult(
        status=status,
        rules=outcomes,
        fingerprint=fingerprint,
        reason=reason,
        labels_needed=labels,
    )
