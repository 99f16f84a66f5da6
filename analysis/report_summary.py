"""The report's one-screen summary, built from a snapshot's stored JSON only (no recomputing).

Per judge version: the release gate's status (when a gate names it), its agreement and
Cohen's kappa with the human votes (S1, with intervals) beside the people's own (the
ceiling), and the three findings a lead asks about first, each in one sentence that states
its number, interval and n:

* the **refusal gap**: how many points more the judge rewards ethical refusals than people
  do on the same pairs (``studies.refusal.gaps``; Pasch 2025);
* **position bias**: preference fairness (recency - primacy)/n after swapping the sides
  (``position.judges``; Shi et al. 2024), with the share of verdicts that survive the swap;
* **style and length**: the judge's sensitivity net of the people's to the feature where
  the two differ most (``studies.style.sensitivity``; METHODS.md section 5).

Each finding names the judge with the largest estimate (judges whose interval excludes 0 are
preferred); an interval that spans 0 is called inconclusive, never a finding. The three are
ordered: findings whose interval excludes 0 first, then by the size of the estimate in
points, then the inconclusive ones by size, then those not measured.

Also here: folding slices smaller than :data:`MIN_SLICE_ITEMS` items into one "other" row,
whose figures are pooled from the stored counts where that is exact (agreement is
agreements / comparisons, and each item belongs to one slice) and left out where it is not
(kappa, intervals, distinct prompts).

Pure: no Django; the report view calls :func:`summary` and :func:`slices_folded`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.display import display_text
from analysis.metrics.outcomes import dig

MIN_SLICE_ITEMS: Final = 10  # slices with fewer items are folded into "other (n = ...)"
GAP_CLASS: Final = "ethical_refusal"  # the refusal gap of the summary (Pasch's headline)
FEATURE_WORDS: Final = {
    "length": "longer answers",
    "headers": "markdown headers",
    "lists": "list items",
    "bold": "bold text",
}
FEATURE_UNITS: Final = {
    "length": "from equal length to much longer",
    "headers": "from no headers to all of them on one side",
    "lists": "from no list items to all of them on one side",
    "bold": "from no bold text to all of it on one side",
}


@dataclass(frozen=True)
class Figure:
    """One stored result: value and interval (None when undefined), n, the reason if none."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    p_value: float | None = None
    reason: str = ""

    @classmethod
    def of(cls, result: Mapping[str, Any] | None, *, scale: float = 1.0) -> Figure:
        result = result or {}
        value = result.get("value")
        ci = result.get("ci") or [None, None]
        has_ci = value is not None and None not in ci[:2] and len(ci) >= 2
        p_value = dig(result, "details", "p_value")
        return cls(
            value=None if value is None else float(value) * scale,
            low=float(ci[0]) * scale if has_ci else None,
            high=float(ci[1]) * scale if has_ci else None,
            n=result.get("n"),
            p_value=None if p_value is None else float(p_value),
            reason=display_text(result.get("reason") or ("" if result else "not computed")),
        )

    @property
    def defined(self) -> bool:
        return self.value is not None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of 0 (False without an interval)."""
        return self.has_interval and (self.low > 0 or self.high < 0)  # type: ignore[operator]


@dataclass(frozen=True)
class JudgeLine:
    """One judge version's row of the summary table."""

    id: str
    label: str
    gate: str | None  # PASS / FAIL / INCONCLUSIVE for the gated judge, else None
    agreement: Figure
    kappa: Figure
    refusal_gap: Figure  # points
    fairness: Figure  # points of pairs, (recency - primacy) / n * 100
    consistency: Figure  # share
    style_feature: str | None
    style: Figure  # points of win probability, net of people's


@dataclass(frozen=True)
class Finding:
    """One of the three findings, as a sentence with its numbers."""

    kind: str  # "refusal", "position", "style"
    title: str
    sentence: str
    judge: str | None
    size: float | None  # |estimate| in points; None when not measured
    conclusive: bool
    anchor: str

    @property
    def status(self) -> str:
        if self.size is None:
            return "not measured"
        return "finding" if self.conclusive else "inconclusive"


@dataclass(frozen=True)
class Summary:
    judges: list[JudgeLine]
    ceiling_agreement: Figure
    ceiling_kappa: Figure
    findings: list[Finding] = field(default_factory=list)
    level: float = 0.95


# --- numbers in words ------------------------------------------------------------------------


def pts(value: float) -> str:
    """Points with a sign and one decimal; a true minus sign."""
    return f"{value:+.1f}".replace("-", "\u2212")


def _interval_words(figure: Figure, level: float) -> str:
    """``95% CI -17.0 to +0.8`` (points, a true minus sign) or "no interval"."""
    if not figure.has_interval:
        return "no interval"
    return f"{round(100 * level)}% CI {pts(figure.low)} to {pts(figure.high)}"  # type: ignore[arg-type]


def _p_words(figure: Figure) -> str:
    if figure.p_value is None:
        return ""
    return ", p < 0.001" if figure.p_value < 0.001 else f", p = {figure.p_value:.3f}"


def _n_words(n: int | None, unit: str) -> str:
    return f"{n:,} {unit}" if n else f"n not stored ({unit})"


# --- the summary -----------------------------------------------------------------------------


def summary(
    metrics: Mapping[str, Any],
    *,
    gate: Mapping[str, str] | None = None,
) -> Summary:
    """The summary of one snapshot's figures. ``gate`` maps a judge id of the snapshot
    (``"j:<pk>"``) to the release gate's status for it."""
    gate = gate or {}
    figures = metrics.get("figures") or {}
    level = float(dig(metrics, "settings", "level") or 0.95)
    lines = [
        _judge_line(judge, metrics, gate.get(judge["id"]))
        for judge in dig(metrics, "raters", "judges") or []
    ]
    findings = [
        _refusal_finding(lines, metrics, level),
        _position_finding(lines, level),
        _style_finding(lines, metrics, level),
    ]
    findings.sort(key=_finding_order)
    return Summary(
        judges=lines,
        ceiling_agreement=Figure.of(dig(figures, "S1", "ceiling", "percent_agreement")),
        ceiling_kappa=Figure.of(dig(figures, "S1", "ceiling", "cohen_kappa")),
        findings=findings,
        level=level,
    )


def _finding_order(finding: Finding) -> tuple[int, float]:
    if finding.size is None:
        return (2, 0.0)
    return (0 if finding.conclusive else 1, -finding.size)


def _judge_line(
    judge: Mapping[str, Any], metrics: Mapping[str, Any], gate: str | None
) -> JudgeLine:
    key = judge["id"]
    vs_humans = dig(metrics, "figures", "S1", "judges", key, "vs_humans") or {}
    gap_rows = dig(metrics, "studies", "refusal", "gaps", key, "rows") or []
    gap = next((row["gap"] for row in gap_rows if row.get("class") == GAP_CLASS), None)
    if gap is None:
        gap = {
            "reason": dig(metrics, "studies", "refusal", "gaps", key, "reason")
            or dig(metrics, "studies", "refusal", "reason")
            or "no refusal gap in this snapshot"
        }
    position = dig(metrics, "position", "judges", key) or {}
    feature, style = _largest_style(dig(metrics, "studies", "style", "sensitivity", key))
    if style is None:
        style = {
            "reason": dig(metrics, "studies", "style", "sensitivity", key, "reason")
            or dig(metrics, "studies", "style", "reason")
            or "no style figures in this snapshot"
        }
    return JudgeLine(
        id=key,
        label=str(judge.get("label") or key),
        gate=gate,
        agreement=Figure.of(vs_humans.get("percent_agreement")),
        kappa=Figure.of(vs_humans.get("cohen_kappa")),
        refusal_gap=Figure.of(gap, scale=100.0),
        fairness=Figure.of(position.get("fairness"), scale=100.0),
        consistency=Figure.of(position.get("consistency")),
        style_feature=feature,
        style=Figure.of(style, scale=100.0),
    )


def _largest_style(fit: Mapping[str, Any] | None) -> tuple[str | None, Mapping[str, Any] | None]:
    """The feature whose judge-minus-people coefficient is largest in size, among those whose
    interval excludes 0 if any (the same rule as between judges)."""
    rows = [r for r in (fit or {}).get("rows") or [] if dig(r, "net", "value") is not None]
    if not rows:
        return None, None
    clear = [r for r in rows if Figure.of(r["net"]).excludes_zero]
    best = max(clear or rows, key=lambda r: abs(float(r["net"]["value"])))
    return str(best["feature"]), best["net"]


def _pick(lines: Sequence[JudgeLine], figure_of: Any) -> tuple[JudgeLine | None, int, int]:
    """The judge whose figure leads the finding, how many judges have the figure defined,
    and how many of those have an interval excluding 0."""
    defined = [line for line in lines if figure_of(line).defined]
    clear = [line for line in defined if figure_of(line).excludes_zero]
    pool = clear or defined
    if not pool:
        return None, 0, 0
    best = max(pool, key=lambda line: abs(figure_of(line).value))
    return best, len(defined), len(clear)


def _others(defined: int, clear: int) -> str:
    if defined <= 1:
        return ""
    verb = "has" if clear == 1 else "have"
    return f" Of {defined} judge versions measured, {clear} {verb} an interval that excludes 0."


def _not_measured(kind: str, title: str, anchor: str, reason: str) -> Finding:
    return Finding(kind, title, f"Not measured: {reason}.", None, None, False, anchor)


@dataclass(frozen=True)
class _Sentences:
    """A finding's sentence when the interval excludes 0 (``clear``) and when it does not:
    format strings over the caller's words, {direction} (the first of ``directions`` for a
    positive value, the second for a negative one), {size} (the value's size, 1 decimal) and
    {signed} (the value)."""

    directions: tuple[str, str]
    clear: str
    inconclusive: str


SENTENCES = {
    "refusal": _Sentences(
        ("more", "less"),
        "{label} rewards ethical refusals {size} points {direction} than people do on the same "
        "pairs ({numbers}).",
        "Inconclusive: {label} rewards ethical refusals {signed} points against people, but the "
        "interval spans 0 ({numbers}).",
    ),
    "position": _Sentences(
        ("second", "first"),
        "{label} favours the response shown {direction} when the sides are swapped ({numbers}).",
        "Inconclusive: no clear preference for either slot in {label}; the interval spans 0 "
        "({numbers}).",
    ),
    "style": _Sentences(
        ("more", "less"),
        "{label} rewards {words} {direction} than people do ({numbers}).",
        "Inconclusive: {label}'s weight on {words} differs from people's by {signed} points, but "
        "the interval spans 0 ({numbers}).",
    ),
}


def _sentence(kind: str, figure: Figure, **words: str) -> str:
    sentences = SENTENCES[kind]
    value = float(figure.value)  # type: ignore[arg-type]
    return (sentences.clear if figure.excludes_zero else sentences.inconclusive).format(
        direction=sentences.directions[0] if value > 0 else sentences.directions[1],
        size=f"{abs(value):.1f}",
        signed=pts(value),
        **words,
    )


def _measured(
    kind: str, title: str, anchor: str, label: str, figure: Figure, sentence: str, others: str
) -> Finding:
    """A finding led by the judge ``label``, sized by its ``figure``."""
    size = abs(figure.value)  # type: ignore[arg-type]
    return Finding(kind, title, sentence + others, label, size, figure.excludes_zero, anchor)


def _refusal_finding(
    lines: Sequence[JudgeLine], metrics: Mapping[str, Any], level: float
) -> Finding:
    title, anchor = "Refusal gap", "refusal-gap"
    best, defined, clear = _pick(lines, lambda line: line.refusal_gap)
    if best is None:
        reason = display_text(dig(metrics, "studies", "refusal", "reason")) or next(
            (line.refusal_gap.reason for line in lines if line.refusal_gap.reason),
            "no judge has verdicts",
        )
        return _not_measured("refusal", title, anchor, reason)
    gap = best.refusal_gap
    numbers = (
        f"{pts(gap.value)} points of win probability, {_interval_words(gap, level)}"  # type: ignore[arg-type]
        f"{_p_words(gap)}; {_n_words(gap.n, 'pairs')}"
    )
    sentence = _sentence("refusal", gap, label=best.label, numbers=numbers)
    return _measured("refusal", title, anchor, best.label, gap, sentence, _others(defined, clear))


def _position_finding(lines: Sequence[JudgeLine], level: float) -> Finding:
    title, anchor = "Position bias", "position"
    best, defined, clear = _pick(lines, lambda line: line.fairness)
    if best is None:
        kept = [line for line in lines if line.consistency.defined]
        if kept:  # imported as "consistent or not" only: no side, no size to compare
            line = min(kept, key=lambda line: line.consistency.value)  # type: ignore[arg-type, return-value]
            share = line.consistency
            return _not_measured(
                "position",
                title,
                anchor,
                f"which side {line.label} favours (the two orders' verdicts were not "
                f"imported); its verdict survives swapping the sides on "
                f"{100 * share.value:.1f}% of {_n_words(share.n, 'pairs')}",  # type: ignore[operator]
            )
        reason = next((line.fairness.reason for line in lines if line.fairness.reason), "")
        return _not_measured("position", title, anchor, reason or "no judge has verdicts")
    fair = best.fairness
    share = best.consistency
    survives = (
        f"; its verdict survives the swap on {100 * share.value:.1f}%"  # type: ignore[operator]
        + (
            f" [{100 * share.low:.1f}, {100 * share.high:.1f}]"  # type: ignore[operator]
            if share.has_interval
            else ""
        )
        if share.defined
        else ""
    )
    numbers = (
        f"preference fairness {pts(fair.value)} points, {_interval_words(fair, level)}; "  # type: ignore[arg-type]
        f"{_n_words(fair.n, 'pairs in both orders')}{survives}"
    )
    sentence = _sentence("position", fair, label=best.label, numbers=numbers)
    return _measured("position", title, anchor, best.label, fair, sentence, _others(defined, clear))


def _style_finding(lines: Sequence[JudgeLine], metrics: Mapping[str, Any], level: float) -> Finding:
    title, anchor = "Style and length", "style"
    best, defined, clear = _pick(lines, lambda line: line.style)
    if best is None:
        reason = display_text(dig(metrics, "studies", "style", "reason")) or next(
            (line.style.reason for line in lines if line.style.reason), "no judge has verdicts"
        )
        return _not_measured("style", title, anchor, reason)
    net = best.style
    feature = best.style_feature or ""
    words = FEATURE_WORDS.get(feature, feature)
    numbers = (
        f"{pts(net.value)} points of win probability {FEATURE_UNITS.get(feature, 'per unit')}, "  # type: ignore[arg-type]
        f"net of people's, {_interval_words(net, level)}{_p_words(net)}; "
        f"{_n_words(net.n, 'pairs')}"
    )
    sentence = _sentence("style", net, label=best.label, words=words, numbers=numbers)
    return _measured("style", title, anchor, best.label, net, sentence, _others(defined, clear))


# --- slices: fold the small ones ---------------------------------------------------------------


@dataclass(frozen=True)
class Pooled:
    """A figure pooled over folded slices: a value without an interval, or only n."""

    value: float | None
    n: int


def _pooled_agreement(results: Sequence[Mapping[str, Any] | None]) -> Pooled:
    """Agreement over the union of slices: sum of agreements / sum of comparisons.

    A slice's stored agreement is agreements / comparisons (``details.pairs``); each item is
    in one slice, so the union's table is the sum of the slices' tables and this is the
    figure the engine would compute on it (no interval: that needs the resampling).
    """
    agreements = comparisons = 0.0
    n = 0
    for result in results:
        if not result:
            continue
        n += int(result.get("n") or 0)
        pairs = dig(result, "details", "pairs")
        if result.get("value") is None or not pairs:
            continue
        agreements += float(result["value"]) * float(pairs)
        comparisons += float(pairs)
    return Pooled(agreements / comparisons if comparisons else None, n)


HEADLINE = (("S1", "percent_agreement"), ("S2", "percent_agreement"), ("S1", "cohen_kappa"))


def judge_headline(figures: Mapping[str, Any], judge: str) -> tuple[list[Any], Any]:
    """A judge's six headline figures in the order of the report's columns (agreement S1, S2
    and Cohen's kappa S1 against the human votes, then the same against the majority) and
    the number of items behind them."""
    path = ("judges", judge)
    cells = [
        dig(figures, policy, *path, against, metric)
        for against in ("vs_humans", "vs_majority")
        for policy, metric in HEADLINE
    ]
    return cells, dig(figures, "S1", *path, "vs_humans", "percent_agreement", "n")


def slice_figures(row: Mapping[str, Any], judges: Sequence[str]) -> list[Any]:
    """A slice row's figures in the order of the report's columns: the people's ceiling S1
    and S2, then per judge S1, S2 and kappa S1 (a stored row or the folded "other" row)."""
    figures = [dig(row, "ceiling", "S1"), dig(row, "ceiling", "S2")]
    for judge in judges:
        figures += [dig(row, "judges", judge, key) for key in ("S1", "S2", "kappa_S1")]
    return figures


def slices_folded(
    rows: Sequence[Mapping[str, Any]],
    judges: Sequence[str],
    *,
    min_items: int = MIN_SLICE_ITEMS,
) -> tuple[list[Mapping[str, Any]], dict[str, Any] | None]:
    """The slices kept (at least ``min_items`` items) and one "other" row for the rest.

    The other row: ``slices``, ``items`` (exact sums), ``ceiling`` and each judge's ``S1``
    and ``S2`` pooled agreement (:func:`_pooled_agreement`), each judge's ``kappa_S1`` as n
    only (a kappa needs the pooled table's marginals, which a slice does not store).
    """
    kept = [row for row in rows if int(row.get("items") or 0) >= min_items]
    small = [row for row in rows if int(row.get("items") or 0) < min_items]
    if not small:
        return kept, None
    other: dict[str, Any] = {
        "slices": len(small),
        "items": sum(int(row.get("items") or 0) for row in small),
        "ceiling": {
            policy: _pooled_agreement([dig(row, "ceiling", policy) for row in small])
            for policy in ("S1", "S2")
        },
        "judges": {},
    }
    for judge in judges:
        other["judges"][judge] = {
            "S1": _pooled_agreement([dig(row, "judges", judge, "S1") for row in small]),
            "S2": _pooled_agreement([dig(row, "judges", judge, "S2") for row in small]),
            "kappa_S1": Pooled(
                None, sum(int(dig(row, "judges", judge, "kappa_S1", "n") or 0) for row in small)
            ),
        }
    return kept, other
