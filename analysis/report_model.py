"""One report model of a snapshot, which every presenter renders: the report pages (HTML,
``templates/analysis/report.html``), the ``report`` command (Markdown, through
``templates/analysis/report.md``) and the API (JSON, ``GET .../report/model/``).

:func:`report_build` reads the typed snapshot (:mod:`analysis.snapshot`) once and lays out
every section: the summary, the headline table, charts (server-rendered SVG, which the API
leaves out), the judges against each person, reliability, confusion matrices, position bias,
slices (folded for the page, every row for the Markdown listing), rankings, consensus and the
studies (:mod:`analysis.report_studies`). Cells carry their text (``text``), its value and
interval parts and a sort key, so every rendering shows the same numbers.

Nothing here recomputes a figure; no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any, Protocol

from analysis import plots, report_summary
from analysis.display import OUTCOMES, display_name
from analysis.plots import AnyResult, IntervalRow, ReferenceLine, Series
from analysis.report_studies import JudgeShown, judges_shown, studies_model
from analysis.snapshot import (
    Consensus,
    Figures,
    JudgeConfusion,
    JudgePosition,
    JudgeRanking,
    OrderAgreement,
    PolicyFigures,
    Position,
    PositionOrders,
    Ranking,
    Result,
    Shape,
    SliceDimension,
    SnapshotCounts,
    SnapshotMetrics,
    Trend,
)
from analysis.vote_table import SLICE_LABELS

OUTCOME_NAMES = OUTCOMES
ABOUT = {
    "percent_agreement": "agreement",
    "cohen_kappa": "Cohen's \u03ba",
    "cohen_kappa_linear": "Cohen's \u03ba (linear weights)",
    "scott_pi": "Scott's \u03c0",
    "gwet_ac": "Gwet's AC1",
    "fleiss_kappa": "Fleiss' \u03ba",
    "krippendorff_alpha": "Krippendorff's \u03b1",
}
# The same coefficients in plain words, for the Markdown report.
PLAIN = {
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac": "Gwet's AC1",
    "scott_pi": "Scott's pi",
}


class StoredSnapshot(Protocol):
    """What the model reads of a stored snapshot (``analysis.models.MetricSnapshot``)."""

    pk: Any
    created_at: datetime
    compute_ms: int
    label_count: int

    @property
    def typed(self) -> SnapshotMetrics: ...

    @property
    def typed_counts(self) -> SnapshotCounts: ...


def _cell(result: AnyResult) -> dict[str, Any]:
    """A table cell: the full text, its value and interval parts, a sort key."""
    found = plots.as_result(result)
    value = found.value if found is not None else None
    text = plots.result_text(found)
    head, _, tail = text.partition(" [")
    return {
        "text": text,
        "value": text if value is None else head,
        "ci": f"[{tail}".replace(", ", ",\u00a0") if value is not None and tail else "",
        "sort": "" if value is None else repr(float(value)),
        "undefined": value is None,
    }


def report_build(
    snapshot: StoredSnapshot,
    history: Sequence[Mapping[str, Any]] = (),
    *,
    gate: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything a report shows of one snapshot, from its stored figures only; ``history``
    (:func:`analysis.selectors.snapshot_history`) draws the trend, ``gate`` maps the gated
    judge's id in the snapshot to the gate's status."""
    metrics = snapshot.typed
    judges = judges_shown(metrics)
    humans = metrics.human_names()
    figures = metrics.figures
    return {
        "head": _head(snapshot),
        "judges": judges,
        "humans": humans,
        "progress": metrics.progress,
        "settings": metrics.settings,
        "headline": _headline(figures, judges),
        "each_human": _each_human(figures, judges, humans),
        "other_coefficients": _other_coefficients(figures, judges),
        "charts": _agreement_charts(figures, judges),
        "trend": _trend_charts(history, judges),
        "confusion": _confusion(metrics.confusion, judges),
        "position": _position(metrics.position, judges, humans),
        "reliability": _reliability(figures),
        "human_pairs": [
            {
                "label": f"{humans.get(p.a, p.a)} / {humans.get(p.b, p.b)}",
                "agreement": _cell(p.percent_agreement),
                "kappa": _cell(p.cohen_kappa),
            }
            for p in figures.S1.human_pairs
        ],
        "consensus": _consensus(metrics.consensus, humans),
        "ranking": _ranking(metrics.ranking, judges, given="ranking" in metrics.model_fields_set),
        "slices": _slices(metrics.slices, judges),
        "studies": studies_model(metrics.studies, judges),
        "summary": _summary(metrics, judges, gate),
    }


def _head(snapshot: StoredSnapshot) -> dict[str, Any]:
    """What the figures were computed from, and how."""
    metrics = snapshot.typed
    return {
        "snapshot": snapshot.pk,
        "created_at": snapshot.created_at,
        "compute_ms": snapshot.compute_ms,
        "label_count": snapshot.label_count,
        "subject": metrics.subject,
        "counts": snapshot.typed_counts,
        "level_percent": f"{metrics.settings.level:.0%}",
    }


def _each_human(
    figures: Figures, judges: Sequence[JudgeShown], humans: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each judge against each person: agreement S1 and S2, one cell per person."""
    rows = []
    for judge in judges:
        one, two = figures.S1.judges.get(judge.id), figures.S2.judges.get(judge.id)
        cells = []
        for human in humans:
            s1 = _cell(one.vs_each_human.get(human) if one else None)
            s2 = _cell(two.vs_each_human.get(human) if two else None)
            cells.append({"S1": s1, "S2": s2})
        rows.append({"label": judge.label, "colour": judge.colour, "cells": cells})
    return rows


def _other_coefficients(figures: Figures, judges: Sequence[JudgeShown]) -> list[dict[str, Any]]:
    """Scott's pi, Gwet's AC1 and linear-weighted kappa against the human votes (S1)."""
    rows = []
    for judge in judges:
        found = figures.S1.judges.get(judge.id)
        mine = found.vs_humans if found else None
        rows.append(
            {
                "label": judge.label,
                "cells": [
                    _cell(getattr(mine, key, None))
                    for key in ("scott_pi", "gwet_ac", "cohen_kappa_linear")
                ],
            }
        )
    return rows


def _summary(
    metrics: SnapshotMetrics,
    judges: Sequence[JudgeShown],
    gate: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The one-screen summary (analysis/report_summary.py) as table cells and sentences."""
    found = report_summary.summary(metrics, gate=gate)
    colours = {j.id: j.colour for j in judges}
    return {
        "judges": [
            {
                "label": line.label,
                "colour": colours.get(line.id, plots.PALETTE[0]),
                "gate": line.gate,
                "agreement": _share_cell(line.agreement),
                "kappa": _figure_cell(line.kappa, digits=3),
                "refusal_gap": _points_cell(line.refusal_gap),
                "fairness": _points_cell(line.fairness),
                "style": _points_cell(line.style),
                "style_feature": report_summary.FEATURE_WORDS.get(
                    line.style_feature or "", line.style_feature or ""
                ),
            }
            for line in found.judges
        ],
        "ceiling": {
            "agreement": _share_cell(found.ceiling_agreement),
            "kappa": _figure_cell(found.ceiling_kappa, digits=3),
        },
        "findings": found.findings,
        "any_gate": bool(gate),
        "level": round(100 * found.level),
    }


def _figure_cell(
    figure: report_summary.Figure, *, digits: int, scale: float = 1.0, suffix: str = ""
) -> dict[str, Any]:
    if figure.value is None:
        return {"value": "\u2014", "ci": "", "undefined": True, "reason": figure.reason}
    ci = ""
    if figure.low is not None and figure.high is not None:
        ci = f"[{scale * figure.low:.{digits}f}, {scale * figure.high:.{digits}f}]"
    return {
        "value": f"{scale * figure.value:.{digits}f}{suffix}",
        "ci": ci.replace(", ", ",\u00a0"),
        "undefined": False,
        "reason": "",
        "excludes_zero": False,  # shown plain (a share or a kappa is not a difference)
    }


def _share_cell(figure: report_summary.Figure) -> dict[str, Any]:
    return _figure_cell(figure, digits=1, scale=100.0, suffix="%")


def _points_cell(figure: report_summary.Figure) -> dict[str, Any]:
    if figure.value is None:
        return _figure_cell(figure, digits=1)
    ci = ""
    if figure.low is not None and figure.high is not None:
        ci = f"[{report_summary.pts(figure.low)},\u00a0{report_summary.pts(figure.high)}]"
    return {
        "value": report_summary.pts(figure.value),
        "ci": ci,
        "undefined": False,
        "reason": "",
        "excludes_zero": figure.excludes_zero,
    }


def _headline(figures: Figures, judges: Sequence[JudgeShown]) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for judge in judges:
        cells, n = report_summary.judge_headline(figures, judge.id)
        rows.append(
            {
                "label": judge.label,
                "colour": judge.colour,
                "kind": "judge",
                "cells": [_cell(c) for c in cells],
                "n": n,
            }
        )
    s1, s2 = figures.S1, figures.S2
    agreement = s1.ceiling.percent_agreement
    rows.append(
        {
            "label": "human \u2013 human (ceiling)",
            "kind": "ceiling",
            "cells": [
                _cell(agreement),
                _cell(s2.ceiling.percent_agreement),
                _cell(s1.ceiling.cohen_kappa),
                _dash(),
                _dash(),
                _dash(),
            ],
            "n": agreement.n if agreement else None,
        }
    )
    baseline = s1.baseline.vs_humans
    answer = baseline.details.get("answer") if baseline else None
    rows.append(
        {
            "label": f"always \u201c{answer}\u201d (baseline)" if answer else "constant answer",
            "kind": "baseline",
            "answer": answer,
            "cells": [
                _cell(baseline),
                _cell(s2.baseline.vs_humans),
                _dash("0 by construction"),
                _cell(s1.baseline.vs_majority),
                _cell(s2.baseline.vs_majority),
                _dash("0 by construction"),
            ],
            "n": baseline.n if baseline else None,
        }
    )
    return rows


def _dash(text: str = "\u2014") -> dict[str, Any]:
    return {"text": text, "value": text, "ci": "", "sort": "", "undefined": True}


def _agreement_charts(figures: Figures, judges: Sequence[JudgeShown]) -> list[dict[str, Any]]:
    charts = []
    specs = [
        ("S1", "percent_agreement", "vs_humans", "Agreement with each human vote, S1 (ties kept)"),
        (
            "S2",
            "percent_agreement",
            "vs_humans",
            "Agreement with each human vote, S2 (ties dropped)",
        ),
        ("S1", "cohen_kappa", "vs_humans", "Cohen's \u03ba with the human votes, S1"),
        ("S1", "percent_agreement", "vs_majority", "Agreement with the human majority, S1"),
    ]
    for policy, metric, target, title in specs:
        figures_of = figures.policy(policy)

        rows = [
            IntervalRow.of(j.label, _judge_result(figures_of, j.id, target, metric), j.colour)
            for j in judges
        ]
        references = []
        if target == "vs_humans":
            references.append(
                ReferenceLine.of("human \u2013 human ceiling", getattr(figures_of.ceiling, metric))
            )
        if metric == "percent_agreement":
            baseline: Result | None = getattr(figures_of.baseline, target)
            answer = baseline.details.get("answer") if baseline else None
            references.append(
                ReferenceLine(
                    f"always \u201c{answer}\u201d" if answer else "constant answer",
                    baseline.value if baseline else None,
                    colour=plots.PALETTE[3],
                )
            )
            chance = 1 / 3 if policy == "S1" else 1 / 2
            references.append(ReferenceLine("chance", chance, colour=plots.MUTED))
        if not any(row.value is not None for row in rows):
            continue  # a chart only where it has numbers: the table says why there are none
        domain = (0.0, 1.0)
        charts.append(
            {
                "title": title,
                "svg": plots.interval_chart(
                    rows, title=title, references=references, domain=domain
                ),
            }
        )
    return charts


def _judge_result(figures: PolicyFigures, judge: str, target: str, metric: str) -> Result | None:
    """``figures.judges[judge].<target>.<metric>``, None where the judge has none."""
    found = figures.judges.get(judge)
    result: Result | None = getattr(getattr(found, target), metric) if found else None
    return result


def _trend_charts(
    history: Sequence[Mapping[str, Any]], judges: Sequence[JudgeShown]
) -> list[dict[str, Any]]:
    """Agreement and kappa against the labels so far, one point per snapshot (``history``:
    :func:`analysis.selectors.snapshot_history`, each point a stored ``trend``)."""
    points = [Trend.model_validate(point) for point in history]
    latest_per_count = {p.label_count: p for p in points}  # history is oldest first
    trend = sorted(latest_per_count.values(), key=lambda p: p.label_count)
    if len(trend) < 2:
        return []
    names = {j.id: j.label for j in judges}
    colours = {j.id: j.colour for j in judges}
    ids = list(names)
    for point in trend:
        for judge, label in point.names.items():
            if judge not in names:
                names[judge] = label
                colours[judge] = plots.PALETTE[len(colours) % len(plots.PALETTE)]
                ids.append(judge)

    def judge_value(point: Trend, judge: str, key: str) -> float | None:
        found = point.judges.get(judge)
        value: float | None = getattr(found, key) if found else None
        return value

    charts = []
    for key, title, y_label in (
        ("S1", "Agreement with the human votes (S1) as labels accumulate", "agreement"),
        ("kappa_S1", "Cohen's \u03ba with the human votes (S1) as labels accumulate", "\u03ba"),
    ):
        series = [
            Series(
                names[judge],
                [(p.label_count, judge_value(p, judge, key)) for p in trend],
                colours[judge],
            )
            for judge in ids
        ]
        series.append(
            Series(
                "human \u2013 human ceiling",
                [(p.label_count, getattr(p.ceiling, key)) for p in trend],
                plots.CEILING,
                dashed=True,
            )
        )
        series = [s for s in series if any(y is not None for _, y in s.points)]
        if not series:
            continue
        charts.append(
            {
                "title": title,
                "svg": plots.trend_chart(
                    series, title=title, x_label="human votes", y_label=y_label
                ),
            }
        )
    return charts


def _confusion(
    confusion: Mapping[str, JudgeConfusion], judges: Sequence[JudgeShown]
) -> list[dict[str, Any]]:
    out = []
    for judge in judges:
        found = confusion.get(judge.id)
        table = found.vs_majority if found else None
        if table is None or not table.total:
            continue
        labels = [OUTCOME_NAMES.get(c, c) for c in table.categories]
        out.append(
            {
                "label": judge.label,
                "svg": plots.heatmap(
                    plots.Heatmap(
                        title=f"{judge.label} against the human majority",
                        rows=table.rows,
                        row_labels=labels,
                        column_labels=labels,
                        row_title=judge.label,
                        column_title="human majority",
                    )
                ),
                "total": table.total,
                "categories": table.categories,
                "matrix": [
                    {"category": category, "counts": counts}
                    for category, counts in zip(table.categories, table.rows, strict=True)
                ],
            }
        )
    return out


def _position(
    position: Position,
    judges: Sequence[JudgeShown],
    humans: Mapping[str, str],
) -> dict[str, Any]:
    rows = []
    chart_rows = []
    for judge in judges:
        data = position.judges.get(judge.id) or JudgePosition()
        rows.append(
            {
                "label": judge.label,
                "method": data.method,
                "consistency": _cell(data.consistency),
                "fairness": _cell(data.fairness),
                "n": data.n if "n" in data.model_fields_set else None,
                "primacy": data.primacy,
                "recency": data.recency,
                **_orders(data.orders),
            }
        )
        chart_rows.append(IntervalRow.of(judge.label, data.consistency, judge.colour))
    annotators = []
    side_rows = []
    for entry in position.annotators:
        name = humans.get(entry.rater, entry.rater)
        result = Result.of(entry.rate, entry.ci, entry.n)
        annotators.append(
            {
                **entry.as_json(),
                "name": name,
                "rate_text": plots.result_text(result),
                "p_text": plots.number_text(entry.p_value),
            }
        )
        side_rows.append(IntervalRow.of(name, result))
    consistency_chart = (
        plots.interval_chart(
            chart_rows, title="Position consistency: the verdict survives swapping the sides"
        )
        if any(r.value is not None for r in chart_rows)
        else None
    )
    left_chart = (
        plots.interval_chart(
            side_rows,
            title="Share of side choices that picked the left-hand response",
            references=[ReferenceLine("no side preference", 0.5, colour=plots.MUTED)],
        )
        if side_rows
        else None
    )
    return {
        "judges": rows,
        "any_judge": any(row["method"] for row in rows),
        "any_orders": any(row.get("orders") for row in rows),
        "annotators": annotators,
        "consistency_chart": consistency_chart,
        "left_chart": left_chart,
    }


def _orders(orders: PositionOrders | None) -> dict[str, Any]:
    """A judge run in both orders: agreement in both orders and in each (as the Auto-J and
    JudgeBench leaderboards report it), and position consistency per slice, slices under
    `report_summary.MIN_SLICE_ITEMS` pairs folded into one "other" row (consistent pairs over
    pairs, exact from the stored counts)."""
    if orders is None:
        return {}
    agreement = orders.agreement or OrderAgreement()
    slices = []
    by_slice = orders.by_slice.dimensions() if orders.by_slice else {}
    for dimension, values in by_slice.items():
        if not values:
            continue
        big = {v: r for v, r in values.items() if r.n >= report_summary.MIN_SLICE_ITEMS}
        small = [r for v, r in values.items() if v not in big and r.n]
        rows = [
            {"value": display_name(v), "cell": _cell(r), "n": r.n}
            for v, r in sorted(big.items(), key=lambda kv: -kv[1].n)
        ]
        if not big:  # every slice small: one "other" row would repeat the overall figure
            continue
        if small:
            n = sum(r.n for r in small)
            kept = sum(int(r.details.get("consistent") or 0) for r in small)
            rows.append(
                {
                    "value": f"other (n = {n:,} pairs in {len(small)} slices)",
                    "cell": _cell(Result.of(kept / n)),
                    "n": n,
                }
            )
        slices.append({"name": SLICE_LABELS.get(dimension, dimension), "rows": rows})
    return {
        "orders": {
            "n": agreement.n if "n" in agreement.model_fields_set else None,
            "both": _cell(agreement.both_orders),
            "original": _cell(agreement.original_order),
            "swapped": _cell(agreement.swapped_order),
            "slices": slices,
        }
    }


def _reliability(figures: Figures) -> list[dict[str, Any]]:
    rows = []
    for metric in ("fleiss_kappa", "krippendorff_alpha", "gwet_ac", "scott_pi"):
        rows.append(
            {
                "label": f"{ABOUT[metric]}, people",
                "plain": f"{PLAIN[metric]}, people",
                "several_raters": metric in ("fleiss_kappa", "krippendorff_alpha"),
                "S1": _cell(getattr(figures.S1.ceiling, metric)),
                "S2": _cell(getattr(figures.S2.ceiling, metric)),
            }
        )
    for metric in ("fleiss_kappa", "krippendorff_alpha"):
        rows.append(
            {
                "label": f"{ABOUT[metric]}, people and judges",
                "plain": f"{PLAIN[metric]}, people and judges",
                "several_raters": True,
                "S1": _cell(getattr(figures.S1.all_raters, metric)),
                "S2": _cell(getattr(figures.S2.all_raters, metric)),
            }
        )
    return rows


def _consensus(consensus: Consensus, humans: Mapping[str, str]) -> dict[str, Any]:
    majority = consensus.majority
    model = consensus.dawid_skene
    accuracy = [
        {"name": humans.get(rater, rater), "value": plots.number_text(value)}
        for rater, value in (model.accuracy if model else {}).items()
    ]
    return {
        "majority": majority,
        "decided_by": sorted(majority.decided_by.items()),
        "labels": sorted(majority.labels.items()),
        "accuracy": accuracy,
        "ds_reason": model.reason if model else None,
        "ds_agrees": plots.number_text(model.agrees_with_majority if model else None),
    }


def _ranking(ranking: Ranking, judges: Sequence[JudgeShown], *, given: bool) -> dict[str, Any]:
    if not given or not ranking.model_fields_set or "reason" in ranking.model_fields_set:
        return {"reason": ranking.reason or "not computed"}
    people = ranking.humans
    models = [
        {
            **row.as_json(),
            "text": plots.result_text(Result.of(row.strength, row.ci), digits=2),
            "strength_text": plots.result_text(Result.of(row.strength, row.ci)),
        }
        for row in (people.models if people else [])
    ]
    rows = []
    for judge in judges:
        data = ranking.judges.get(judge.id) or JudgeRanking()
        order = [m.model for m in data.ranking.models] if data.ranking else []
        rows.append(
            {
                "label": judge.label,
                "tau": _cell(data.kendall_tau),
                "rho": _cell(data.spearman_rho),
                "separability": _cell(data.separability),
                "order": order,
                "reason": data.ranking.reason if data.ranking else None,
            }
        )
    return {"models": models, "people_reason": people.reason if people else None, "judges": rows}


def _slices(
    slices: Mapping[str, SliceDimension],
    judges: Sequence[JudgeShown],
    min_items: int = report_summary.MIN_SLICE_ITEMS,
) -> list[dict]:
    """Each slice dimension's table; slices under ``min_items`` items folded into one
    "other" row (:func:`analysis.report_summary.slices_folded`)."""
    out = []
    judge_ids = [j.id for j in judges]
    for dimension, data in slices.items():
        kept, other = report_summary.slices_folded(data.rows, judge_ids, min_items=min_items)
        rows = []
        for row in kept:
            cells = [_cell(f) for f in report_summary.slice_figures(row, judge_ids)]
            rows.append(
                {
                    "value": display_name(row.value),
                    "items": row.items,
                    "prompts": row.prompts,
                    "cells": cells,
                }
            )
        folded = None
        if other is not None:
            cells = [_pooled_cell(f) for f in report_summary.folded_figures(other, judge_ids)]
            folded = {"slices": other.slices, "items": other.items, "cells": cells}
        every_row = [
            {
                "value": row.value,
                "items": row.items,
                "prompts": row.prompts,
                "cells": [_cell(f) for f in report_summary.slice_figures(row, judge_ids)],
            }
            for row in data.rows
        ]
        out.append(
            {
                "dimension": dimension,
                "label": data.label or dimension,
                "rows": rows,
                "every_row": every_row,
                "other": folded,
                "min_items": min_items,
                "omitted": data.omitted,
            }
        )
    return out


def _pooled_cell(pooled: report_summary.Pooled) -> dict[str, Any]:
    """A cell of the folded "other" row: a pooled value without an interval, else n only."""
    if pooled.value is None:
        text = f"n = {pooled.n:,}" if pooled.n else "\u2014"
        return {"text": text, "value": text, "ci": "", "sort": "", "undefined": True}
    value = plots.number_text(pooled.value)
    return {"text": value, "value": value, "ci": "pooled", "sort": "", "undefined": False}


# --- the model as JSON (the API) -------------------------------------------------------------

_LEFT_OUT = object()


def report_json(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report model as JSON for the API: every section and cell as the pages and the
    Markdown show them, without the drawings (SVG charts are left out with their keys)."""
    plain = _plain(report)
    assert isinstance(plain, dict)
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, plots.Svg):
        return _LEFT_OUT
    if isinstance(value, Shape):
        return value.as_json()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {str(k): _plain(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _LEFT_OUT}
    if isinstance(value, list | tuple):
        return [v for v in (_plain(item) for item in value) if v is not _LEFT_OUT]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
