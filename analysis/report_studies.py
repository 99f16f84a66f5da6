"""What the report page shows of the studies (refusal gap, style, criteria, PPI, confidence
sequences), built from a snapshot's stored figures only (the typed ``SnapshotMetrics.studies``).

Figures on the 0-1 scale are shown in percentage points ("pts") or percent; every chart is
server-rendered SVG from :mod:`analysis.plots`, which escapes every label.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from analysis import plots
from analysis.display import CLASSES
from analysis.plots import IntervalRow, ReferenceLine, Series
from analysis.report_self_family import self_family_model
from analysis.snapshot import (
    ClassRate,
    CriteriaStudy,
    PpiRow,
    PpiStudy,
    RefusalStudy,
    Result,
    SequentialStudy,
    SnapshotMetrics,
    Studies,
    StyleStudy,
)

CLASS_NAMES = CLASSES  # the one display-name mapping (analysis/display.py)
FEATURE_NAMES = {
    "length": "length (tanh of the standardised difference)",
    "headers": "markdown headers",
    "lists": "list items",
    "bold": "bold spans",
}


@dataclass(frozen=True)
class JudgeShown:
    """A judge version as the report shows it: its id in the snapshot, label and colour."""

    id: str
    label: str
    colour: str = plots.PALETTE[0]
    model_id: str = ""


def judges_shown(metrics: SnapshotMetrics) -> list[JudgeShown]:
    """The snapshot's judge versions, each with its colour on the page's charts."""
    return [
        JudgeShown(j.id, j.label, plots.PALETTE[i % len(plots.PALETTE)], j.model_id)
        for i, j in enumerate(metrics.raters.judges)
    ]


def _scaled(result: Result, factor: float) -> Result:
    if result.value is None:
        return result
    ci = result.ci
    update: dict[str, Any] = {"value": result.value * factor}
    if ci is not None:
        update["ci"] = (ci[0] * factor, ci[1] * factor)
    return result.model_copy(update=update)


def pts(result: Result | None, digits: int = 1) -> dict[str, Any]:
    """A table cell in percentage points: value, interval and p-value texts."""
    if result is None or result.value is None:
        reason = (result.reason if result else None) or "not computed"
        return {"value": "—", "ci": "", "p": "", "undefined": True, "reason": reason, "sort": ""}
    scaled = _scaled(result, 100.0)
    value, ci = float(scaled.value or 0.0), scaled.ci
    p_value = result.details.get("p_value")
    return {
        "value": f"{value:+.{digits}f}",
        "ci": f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci is not None else "",
        "p": "" if p_value is None else _p_text(float(p_value)),
        "undefined": False,
        "reason": "",
        "sort": repr(value),
    }


def pts_cells(**columns: Result | None) -> dict[str, dict[str, Any]]:
    """A table row's cells in percentage points (:func:`pts`), by column name."""
    return {name: pts(result) for name, result in columns.items()}


# Judges shipped to show the mechanics, keyed on their model id: the report says so beside
# their refusal gap (judges/data/gemma/README.md).
DEMONSTRATION_JUDGES: Final = {
    "gemma-3-270m": (
        "Demonstration judge: Gemma 3 270M is a 270-million-parameter base model, its verdicts "
        "read from the next-token probabilities of [[A]], [[B]] and [[C]]. Its gap shows how "
        "the refusal gap is computed on real pairs and people's votes; it is not a finding "
        "about large judges."
    ),
}


def _p_text(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def percent(value: Any, low: Any = None, high: Any = None) -> dict[str, Any]:
    """A share as a percent cell, with its interval when given."""
    if value is None:
        return {"value": "—", "ci": "", "undefined": True, "sort": ""}
    ci = f"[{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return {"value": f"{100 * value:.1f}%", "ci": ci, "undefined": False, "sort": repr(value)}


def studies_model(studies: Studies | None, judges: Sequence[JudgeShown]) -> dict[str, Any]:
    """Everything the report shows of the snapshot's studies (empty for older snapshots)."""
    if studies is None:
        return {}
    names = {"human": "human majority", **{j.id: j.label for j in judges}}
    colours = {"human": plots.CEILING, **{j.id: j.colour for j in judges}}
    notes = {
        j.id: DEMONSTRATION_JUDGES[j.model_id] for j in judges if j.model_id in DEMONSTRATION_JUDGES
    }
    given = studies.model_fields_set
    half_width = float(studies.half_width or 0.05)
    return {
        "half_width_pts": round(100 * half_width),
        "refusal": _refusal(studies.refusal if "refusal" in given else None, names, colours, notes),
        "style": _style(studies.style if "style" in given else None, names, colours),
        "criteria": _criteria(studies.criteria if "criteria" in given else None, names),
        "ppi": _optional(_ppi, studies.ppi, names, colours),
        "sequential": _optional(_sequential, studies.sequential, names, colours),
        "self_family": self_family_model(studies.self_family, names, pts=pts, percent=percent),
    }


def _points_chart(
    rows: Sequence[tuple[str, Result | None]], *, title: str, colour: str, zero: str
) -> plots.Svg:
    """A forest plot of 0-1-scale figures in percentage points around a zero line; empty
    (no chart) when none of the rows has a number."""
    if not any(result is not None and result.value is not None for _, result in rows):
        return plots.Svg("")
    return plots.interval_chart(
        [
            IntervalRow.of(label, None if result is None else _scaled(result, 100.0), colour)
            for label, result in rows
        ],
        title=title,
        references=[ReferenceLine(zero, 0.0, colour=plots.MUTED)],
        domain=(-10.0, 10.0),
        digits=1,
        unit=" pts",
    )


# --- refusal gap -----------------------------------------------------------------------------


def _rate_rows(rows: Iterable[ClassRate], names: Mapping[str, str]) -> list[dict]:
    out = []
    for row in rows:
        out.append(
            {
                "rater": names.get(row.rater, row.rater),
                "class": CLASS_NAMES.get(row.response_class, row.response_class),
                "n": row.n,
                "win": percent(row.win_rate, row.win_low, row.win_high),
                "loss": percent(row.loss_rate, row.loss_low, row.loss_high),
                "tie": percent(row.tie_rate, row.tie_low, row.tie_high),
                "wl": plots.result_text(
                    Result.of(row.wl_ratio, (row.wl_low, row.wl_high)), digits=2
                )
                if row.wl_ratio is not None
                else "—",
            }
        )
    return out


def _refusal(
    data: RefusalStudy | None,
    names: Mapping[str, str],
    colours: Mapping[str, str],
    notes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    if data is None or data.reason:
        return {"reason": (data.reason if data else None) or "not computed"}
    notes = notes or {}
    gaps: list[dict[str, Any]] = []
    for judge, gap in data.gaps.items():
        label = names.get(judge, judge)
        if not gap.rows:
            gaps.append(
                {
                    "label": label,
                    "reason": gap.reason or "not computed",
                    "note": notes.get(judge, ""),
                }
            )
            continue
        rows = [
            {
                "class": CLASS_NAMES.get(row.response_class, row.response_class),
                **pts_cells(human=row.human, judge=row.judge, gap=row.gap, half=row.gap_ties_half),
            }
            for row in gap.rows
        ]
        gaps.append(
            {
                "label": label,
                "note": notes.get(judge, ""),
                "pairs": gap.pairs,
                "reason": gap.reason,
                "rows": rows,
                "length": pts(gap.length),
                "svg": _points_chart(
                    [
                        (CLASS_NAMES.get(r.response_class, r.response_class), r.gap)
                        for r in gap.rows
                    ],
                    title=f"{label}: how much more the judge rewards each class than people",
                    colour=colours.get(judge, plots.PALETTE[0]),
                    zero="no gap",
                ),
            }
        )
    lpm = []
    for rater, model in data.lpm.items():
        lpm.append(
            {
                "rater": names.get(rater, rater),
                "reason": model.reason,
                "rows": [
                    {
                        "term": row.term,
                        "coef": f"{row.coef_pp:+.1f}" if row.coef_pp is not None else "—",
                        "ci": f"[{row.ci_low_pp:+.1f}, {row.ci_high_pp:+.1f}]"
                        if row.ci_low_pp is not None and row.ci_high_pp is not None
                        else "",
                        "p": _p_text(row.p_value) if row.p_value is not None else "",
                        "note": row.note or "",
                    }
                    for row in model.rows
                ],
            }
        )
    return {
        "pairs": data.pairs,
        "classifier": (data.classifier or "")[:12],
        "length_unit": data.length_unit,
        "similarity": data.similarity,
        "class_counts": [(CLASS_NAMES.get(c, c), n) for c, n in data.class_counts.items()],
        "rates": _rate_rows(data.rates, names),
        "rates_vs_normal": _rate_rows(
            [r for r in data.rates_vs_normal if r.response_class != "normal"], names
        ),
        "gaps": gaps,
        "lpm": lpm,
    }


def _text_cell(value: Any) -> str:
    """Text for a CSV cell that a spreadsheet will not run: judge names come from imported
    files, and a cell starting with =, +, - or @ would be read as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def refusal_csv(studies: Studies | None, names: Mapping[str, str]) -> str:
    """The refusal-gap tables as CSV: one row per (judge, class) gap, then the class rates."""
    data = studies.refusal if studies is not None else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "table",
            "rater",
            "rater_name",
            "response_class",
            "n",
            "estimate_pp",
            "ci_low_pp",
            "ci_high_pp",
            "p_value",
            "human_pp",
            "judge_pp",
            "gap_ties_half_pp",
            "win_rate",
            "win_low",
            "win_high",
            "loss_rate",
            "tie_rate",
            "wl_ratio",
            "note",
        ]
    )

    def pp(result: Result | None, index: int | None = None) -> Any:
        if result is None or result.value is None:
            return ""
        if index is None:
            return round(100 * result.value, 4)
        return round(100 * result.ci[index], 4) if result.ci is not None else ""

    def blank(value: Any) -> Any:
        return "" if value is None else value

    if data is None:
        return out.getvalue()
    for judge, gap in data.gaps.items():
        for row in gap.rows:
            result = row.gap
            writer.writerow(
                [
                    "gap",
                    judge,
                    _text_cell(names.get(judge, judge)),
                    row.response_class,
                    result.n if "n" in result.model_fields_set else "",
                    pp(result),
                    pp(result, 0),
                    pp(result, 1),
                    result.details.get("p_value") or "",
                    pp(row.human),
                    pp(row.judge),
                    pp(row.gap_ties_half),
                    *[""] * 6,
                    result.reason or "",
                ]
            )
    for table, rates in (("rates", data.rates), ("rates_vs_normal", data.rates_vs_normal)):
        for rate in rates:
            writer.writerow(
                [
                    table,
                    rate.rater,
                    _text_cell(names.get(rate.rater, rate.rater)),
                    rate.response_class,
                    rate.n,
                    *[""] * 7,
                    blank(rate.win_rate),
                    blank(rate.win_low),
                    blank(rate.win_high),
                    blank(rate.loss_rate),
                    blank(rate.tie_rate),
                    blank(rate.wl_ratio),
                    "",
                ]
            )
    return out.getvalue()


# --- style and length ------------------------------------------------------------------------


def _style(
    data: StyleStudy | None, names: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, Any]:
    if data is None or data.reason:
        return {"reason": (data.reason if data else None) or "not computed"}
    judges: list[dict[str, Any]] = []
    for judge, fit in data.sensitivity.items():
        label = names.get(judge, judge)
        if not fit.rows:
            judges.append({"label": label, "reason": fit.reason or "not computed"})
            continue
        rows = [
            {
                "feature": FEATURE_NAMES.get(row.feature, row.feature),
                **pts_cells(human=row.human, judge=row.judge, net=row.net),
            }
            for row in fit.rows
        ]
        chart = _points_chart(
            [(row.feature, row.net) for row in fit.rows],
            title=f"{label}: sensitivity net of people's (points of win probability)",
            colour=colours.get(judge, plots.PALETTE[0]),
            zero="same as people",
        )
        judges.append(
            {"label": label, "pairs": fit.pairs, "reason": fit.reason, "rows": rows, "svg": chart}
        )
    by_rater = data.lc_win_rates.by_rater()
    raters = list(by_rater)
    models: dict[str, dict[str, Any]] = {}
    for rater, lc_rows in by_rater.items():
        for lc in lc_rows:
            entry = models.setdefault(lc.model, {"model": lc.model, "cells": {}})
            entry["cells"][rater] = {
                "raw": percent(lc.win_rate),
                "lc": percent(lc.lc_win_rate, lc.lc_low, lc.lc_high)
                if not lc.note
                else {"value": "—", "ci": lc.note, "undefined": True, "sort": ""},
                "n": lc.n,
            }
    return {
        "pairs": data.pairs,
        "features": [FEATURE_NAMES.get(f, f) for f in data.features],
        "missing": data.missing,
        "length_unit": data.length_unit,
        "judges": judges,
        "lc_reason": data.lc_win_rates.reason,
        "lc_raters": [{"id": r, "name": names.get(r, r)} for r in raters],
        "lc_models": [
            {"model": m["model"], "cells": [m["cells"].get(r) for r in raters]}
            for m in models.values()
        ],
    }


# --- criteria --------------------------------------------------------------------------------


def _criteria(data: CriteriaStudy | None, names: Mapping[str, str]) -> dict[str, Any]:
    if data is None or data.reason:
        return {"reason": (data.reason if data else None) or "not computed"}
    judges = []
    for judge, report in data.judges.items():
        rows = [
            {
                "criterion": row.criterion,
                "judge_share": percent(row.judge_share),
                "human_share": percent(row.human_share),
                "diff": pts(Result.of(row.dominance_diff, (row.diff_low, row.diff_high))),
                "judge_agreement": percent(
                    row.judge_agreement, row.judge_agreement_low, row.judge_agreement_high
                ),
                "human_agreement": percent(
                    row.human_agreement, row.human_agreement_low, row.human_agreement_high
                ),
            }
            for row in report.rows
        ]
        share = report.style_share
        judges.append(
            {
                "label": names.get(judge, judge),
                "pairs": report.pairs,
                "rows": rows,
                "r2_judge": plots.result_text(report.r2.get("judge")),
                "r2_human": plots.result_text(report.r2.get("human")),
                "style_judge": plots.result_text(share.get("judge")),
                "style_human": plots.result_text(share.get("human")),
                "style_difference": plots.result_text(share.get("difference")),
                "dropped": report.dropped,
            }
        )
    return {"judges": judges}


# --- few labels, many verdicts ---------------------------------------------------------------

Study = TypeVar("Study", PpiStudy, SequentialStudy)


def _optional(
    build: Callable[[Study, Mapping[str, str], Mapping[str, str]], dict[str, Any]],
    data: Study | None,
    names: Mapping[str, str],
    colours: Mapping[str, str],
) -> dict[str, Any] | None:
    """A study older snapshots may lack: None without it, its reason when it is undefined."""
    if data is None:
        return None
    if data.reason:
        return {"reason": data.reason}
    return build(data, names, colours)


def _bounds(row: PpiRow, estimate: str) -> tuple[Any, Any, Any]:
    """A PPI row's ``estimate`` (``classical`` or ``ppi``) and its interval's ends."""
    if estimate == "ppi":
        return row.ppi, row.ppi_low, row.ppi_high
    return row.classical, row.classical_low, row.classical_high


def _ppi(data: PpiStudy, names: Mapping[str, str], colours: Mapping[str, str]) -> dict[str, Any]:
    tables: list[dict[str, Any]] = []
    for key, title, by_judge in (
        ("by_model", "model", data.by_model),
        ("by_class", "response class", data.by_class),
    ):
        for judge, entry in by_judge.items():
            label = names.get(judge, judge)
            if not entry.rows:
                tables.append({"judge": label, "by": title, "reason": entry.reason or "no rows"})
                continue
            rows = []
            chart_rows = []
            for row in entry.rows:
                group = CLASS_NAMES.get(row.group, row.group) if key == "by_class" else row.group
                rows.append(
                    {
                        "group": group,
                        "labelled": row.n_labelled,
                        "judged": row.n_judged,
                        "judge_only": percent(row.judge_only),
                        "classical": percent(*_bounds(row, "classical")),
                        "ppi": percent(*_bounds(row, "ppi")),
                        "lam": plots.number_text(row.lam, 2),
                        "more": row.labels_more,
                        "note": row.note or "",
                    }
                )
                for estimate, name, colour in (
                    ("classical", "labels only", plots.MUTED),
                    ("ppi", "PPI", colours.get(judge, plots.PALETTE[0])),
                ):
                    value, low, high = _bounds(row, estimate)
                    ci = (low, high) if low is not None and high is not None else None
                    chart_rows.append(
                        IntervalRow(
                            f"{group} · {name}", value, ci, reason=row.note or None, colour=colour
                        )
                    )
            has_numbers = any(r.value is not None for r in chart_rows)
            tables.append(
                {
                    "judge": label,
                    "by": title,
                    "rows": rows,
                    "svg": plots.Svg("")
                    if not has_numbers
                    else plots.interval_chart(
                        chart_rows,
                        title=f"Human win rate by {title}: labels alone and with {label}",
                        references=[ReferenceLine("even", 0.5, colour=plots.MUTED)],
                    ),
                }
            )
    return {"labelled": data.labelled, "method": data.method, "tables": tables}


def _sequential(
    data: SequentialStudy, names: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for judge, entry in data.judges.items():
        label = names.get(judge, judge)
        if entry.reason:
            rows.append({"label": label, "reason": entry.reason})
            continue
        path = entry.path
        colour = colours.get(judge, plots.PALETTE[0])
        series = [
            Series("upper bound", [(p[0], p[3]) for p in path], colour, dashed=True),
            Series("estimate", [(p[0], p[2]) for p in path], colour),
            Series("lower bound", [(p[0], p[1]) for p in path], colour, dashed=True),
        ]
        rows.append(
            {
                "label": label,
                "current": plots.result_text(entry.current, with_n=True),
                "fixed": plots.result_text(entry.fixed_n),
                "more": entry.more,
                "projection": entry.projection,
                "svg": plots.trend_chart(
                    series,
                    title=f"{label}: agreement with the labels, anytime-valid 95% sequence",
                    x_label="labels",
                    y_label="agreement (S1)",
                )
                if path
                else plots.Svg(""),
            }
        )
    return {"judges": rows}
