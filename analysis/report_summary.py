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

Pure: no Django; reads the typed snapshot (:mod:`analysis.snapshot`); the report view calls
:func:`summary` and :func:`slices_folded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.display import display_text
from analysis.snapshot import (
    Figures,
    JudgeRater,
    Result,
    SliceRow,
    SnapshotMetrics,
    StyleFit,
)

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
    def of(cls, result: Result | None, *, scale: float = 1.0) -> Figure:
        if result is None:
            return cls(value=None, reason="not computed")
        value, ci = result.value, result.ci
        has_ci = value is not None and ci is not None
        p_value = result.details.get("p_value")
        return cls(
            value=None if value is None else float(value) * scale,
            low=float(ci[0]) * scale if has_ci and ci else None,
            high=float(ci[1]) * scale if has_ci and ci else None,
            n=result.n if "n" in result.model_fields_set else None,
            p_value=None if p_value is None else float(p_value),
            reason=display_text(result.reason or ""),
        )

    @classmethod
    def missing(cls, reason: str) -> Figure:
        """No figure, and why."""
        return cls(value=None, reason=display_text(reason))

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
    metrics: SnapshotMetrics,
    *,
    gate: Mapping[str, str] | None = None,
) -> Summary:
    """The summary of one snapshot's figures. ``gate`` maps a judge id of the snapshot
    (``"j:<pk>"``) to the release gate's status for it."""
    gate = gate or {}
    ceiling = metrics.figures.S1.ceiling
    level = float(metrics.settings.level or 0.95)
    lines = [_judge_line(judge, metrics, gate.get(judge.id)) for judge in metrics.raters.judges]
    findings = [
        _refusal_finding(lines, metrics, level),
        _position_finding(lines, level),
        _style_finding(lines, metrics, level),
    ]
    findings.sort(key=_finding_order)
    return Summary(
        judges=lines,
        ceiling_agreement=Figure.of(ceiling.percent_agreement),
        ceiling_kappa=Figure.of(ceiling.cohen_kappa),
        findings=findings,
        level=level,
    )


def _finding_order(finding: Finding) -> tuple[int, float]:
    if finding.size is None:
        return (2, 0.0)
    return (0 if finding.conclusive else 1, -finding.size)


def _judge_line(judge: JudgeRater, metrics: SnapshotMetrics, gate: str | None) -> JudgeLine:
    key = judge.id
    judge_figures = metrics.figures.S1.judges.get(key)
    vs_humans = judge_figures.vs_humans if judge_figures else None
    studies = metrics.studies
    refusal = studies.refusal if studies else None
    found = refusal.gaps.get(key) if refusal else None
    gap_row = (
        next((r for r in found.rows if r.response_class == GAP_CLASS), None) if found else None
    )
    gap = (
        Figure.of(gap_row.gap, scale=100.0)
        if gap_row is not None
        else Figure.missing(
            (found.reason if found else None)
            or (refusal.reason if refusal else None)
            or "no refusal gap in this snapshot"
        )
    )
    position = metrics.position.judges.get(key)
    fit = studies.style.sensitivity.get(key) if studies else None
    feature, net = _largest_style(fit)
    style = (
        Figure.of(net, scale=100.0)
        if net is not None
        else Figure.missing(
            (fit.reason if fit else None)
            or (studies.style.reason if studies else None)
            or "no style figures in this snapshot"
        )
    )
    return JudgeLine(
        id=key,
        label=judge.label or key,
        gate=gate,
        agreement=Figure.of(vs_humans.percent_agreement if vs_humans else None),
        kappa=Figure.of(vs_humans.cohen_kappa if vs_humans else None),
        refusal_gap=gap,
        fairness=Figure.of(position.fairness if position else None, scale=100.0),
        consistency=Figure.of(position.consistency if position else None),
        style_feature=feature,
        style=style,
    )


def _largest_style(fit: StyleFit | None) -> tuple[str | None, Result | None]:
    """The feature whose judge-minus-people coefficient is largest in size, among those whose
    interval excludes 0 if any (the same rule as between judges)."""
    rows = [r for r in (fit.rows if fit else []) if r.net.value is not None]
    if not rows:
        return None, None
    clear = [r for r in rows if Figure.of(r.net).excludes_zero]
    best = max(clear or rows, key=lambda r: abs(float(r.net.value or 0.0)))
    return best.feature, best.net


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


def _study_finding(
    kind: str,
    title: str,
    anchor: str,
    lines: Sequence[JudgeLine],
    figure_of: Callable[[JudgeLine], Figure],
    study_reason: str | None,
    describe: Callable[[JudgeLine, Figure], str],
) -> Finding:
    """A study's finding (refusal gap, style), led by the judge :func:`_pick` chooses and said
    by ``describe(judge, figure)``; when no judge has the figure, not measured for the study's
    reason, else the first judge's."""
    best, defined, clear = _pick(lines, figure_of)
    if best is None:
        reason = display_text(study_reason) or next(
            (figure_of(line).reason for line in lines if figure_of(line).reason),
            "no judge has verdicts",
        )
        return _not_measured(kind, title, anchor, reason)
    figure = figure_of(best)
    sentence = describe(best, figure)
    return _measured(kind, title, anchor, best.label, figure, sentence, _others(defined, clear))


def _refusal_finding(lines: Sequence[JudgeLine], metrics: SnapshotMetrics, level: float) -> Finding:
    def describe(best: JudgeLine, gap: Figure) -> str:
        numbers = (
            f"{pts(gap.value)} points of win probability, {_interval_words(gap, level)}"  # type: ignore[arg-type]
            f"{_p_words(gap)}; {_n_words(gap.n, 'pairs')}"
        )
        return _sentence("refusal", gap, label=best.label, numbers=numbers)

    study = metrics.studies.refusal.reason if metrics.studies else None
    return _study_finding(
        "refusal",
        "Refusal gap",
        "refusal-gap",
        lines,
        lambda line: line.refusal_gap,
        study,
        describe,
    )


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


def _style_finding(lines: Sequence[JudgeLine], metrics: SnapshotMetrics, level: float) -> Finding:
    def describe(best: JudgeLine, net: Figure) -> str:
        feature = best.style_feature or ""
        numbers = (
            f"{pts(net.value)} points of win probability "  # type: ignore[arg-type]
            f"{FEATURE_UNITS.get(feature, 'per unit')}, net of people's, "
            f"{_interval_words(net, level)}{_p_words(net)}; {_n_words(net.n, 'pairs')}"
        )
        words = FEATURE_WORDS.get(feature, feature)
        return _sentence("style", net, label=best.label, words=words, numbers=numbers)

    study = metrics.studies.style.reason if metrics.studies else None
    return _study_finding(
        "style", "Style and length", "style", lines, lambda line: line.style, study, describe
    )


# --- slices: fold the small ones ---------------------------------------------------------------


@dataclass(frozen=True)
class Pooled:
    """A figure pooled over folded slices: a value without an interval, or only n."""

    value: float | None
    n: int


@dataclass(frozen=True)
class FoldedSlices:
    """The "other" row of a slice table: the slices under the minimum, pooled."""

    slices: int
    items: int
    ceiling: dict[str, Pooled]  # S1, S2
    judges: dict[str, dict[str, Pooled]]  # judge -> S1, S2, kappa_S1


def _pooled_agreement(results: Sequence[Result | None]) -> Pooled:
    """Agreement over the union of slices: sum of agreements / sum of comparisons.

    A slice's stored agreement is agreements / comparisons (``details.pairs``); each item is
    in one slice, so the union's table is the sum of the slices' tables and this is the
    figure the engine would compute on it (no interval: that needs the resampling).
    """
    agreements = comparisons = 0.0
    n = 0
    for result in results:
        if result is None:
            continue
        n += int(result.n or 0)
        pairs = result.details.get("pairs")
        if result.value is None or not pairs:
            continue
        agreements += float(result.value) * float(pairs)
        comparisons += float(pairs)
    return Pooled(agreements / comparisons if comparisons else None, n)


HEADLINE = (("S1", "percent_agreement"), ("S2", "percent_agreement"), ("S1", "cohen_kappa"))


def judge_headline(figures: Figures, judge: str) -> tuple[list[Result | None], int | None]:
    """A judge's six headline figures in the order of the report's columns (agreement S1, S2
    and Cohen's kappa S1 against the human votes, then the same against the majority) and
    the number of items behind them."""
    cells: list[Result | None] = []
    for against in ("vs_humans", "vs_majority"):
        for policy, metric in HEADLINE:
            found = figures.policy(policy).judges.get(judge)
            cells.append(getattr(getattr(found, against), metric) if found else None)
    first = figures.S1.judges.get(judge)
    agreement = first.vs_humans.percent_agreement if first else None
    return cells, agreement.n if agreement else None


def slice_figures(row: SliceRow, judges: Sequence[str]) -> list[Result | None]:
    """A slice row's figures in the order of the report's columns: the people's ceiling S1
    and S2, then per judge S1, S2 and kappa S1."""
    figures = [row.ceiling.S1, row.ceiling.S2]
    for judge in judges:
        found = row.judges.get(judge)
        figures += [found.S1, found.S2, found.kappa_S1] if found else [None, None, None]
    return figures


def folded_figures(other: FoldedSlices, judges: Sequence[str]) -> list[Pooled]:
    """The "other" row's figures in the order of :func:`slice_figures`."""
    figures = [other.ceiling["S1"], other.ceiling["S2"]]
    for judge in judges:
        figures += [other.judges[judge][key] for key in ("S1", "S2", "kappa_S1")]
    return figures


def slices_folded(
    rows: Sequence[SliceRow],
    judges: Sequence[str],
    *,
    min_items: int = MIN_SLICE_ITEMS,
) -> tuple[list[SliceRow], FoldedSlices | None]:
    """The slices kept (at least ``min_items`` items) and one "other" row for the rest.

    The other row: ``slices``, ``items`` (exact sums), ``ceiling`` and each judge's ``S1``
    and ``S2`` pooled agreement (:func:`_pooled_agreement`), each judge's ``kappa_S1`` as n
    only (a kappa needs the pooled table's marginals, which a slice does not store).
    """
    kept = [row for row in rows if row.items >= min_items]
    small = [row for row in rows if row.items < min_items]
    if not small:
        return kept, None

    def of(row: SliceRow, judge: str, key: str) -> Result | None:
        found = row.judges.get(judge)
        result: Result | None = getattr(found, key) if found else None
        return result

    def kappa_n(judge: str) -> Pooled:
        return Pooled(
            None, sum(r.n for row in small if (r := of(row, judge, "kappa_S1")) is not None)
        )

    return kept, FoldedSlices(
        slices=len(small),
        items=sum(row.items for row in small),
        ceiling={
            "S1": _pooled_agreement([row.ceiling.S1 for row in small]),
            "S2": _pooled_agreement([row.ceiling.S2 for row in small]),
        },
        judges={
            judge: {
                "S1": _pooled_agreement([of(row, judge, "S1") for row in small]),
                "S2": _pooled_agreement([of(row, judge, "S2") for row in small]),
                "kappa_S1": kappa_n(judge),
            }
            for judge in judges
        },
    )
