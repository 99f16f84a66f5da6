"""What the report page shows of the studies (refusal gap, style, criteria, PPI, confidence
sequences), built from a snapshot's stored JSON only (``metrics["studies"]``).

Figures on the 0-1 scale are shown in percentage points ("pts") or percent; every chart is
server-rendered SVG from :mod:`analysis.plots`, which escapes every label.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from analysis import plots
from analysis.display import CLASSES
from analysis.metrics.outcomes import dig as _get
from analysis.plots import IntervalRow, ReferenceLine, Series
from analysis.report_self_family import self_family_model

CLASS_NAMES = CLASSES  # the one display-name mapping (analysis/display.py)
FEATURE_NAMES = {
    "length": "length (tanh of the standardised difference)",
    "headers": "markdown headers",
    "lists": "list items",
    "bold": "bold spans",
}


def _scaled(result: Mapping[str, Any] | None, factor: float) -> dict[str, Any]:
    result = dict(result or {})
    if result.get("value") is not None:
        result["value"] = result["value"] * factor
        ci = result.get("ci")
        if ci and None not in ci:
            result["ci"] = [ci[0] * factor, ci[1] * factor]
    return result


def pts(result: Mapping[str, Any] | None, digits: int = 1) -> dict[str, Any]:
    """A table cell in percentage points: value, interval and p-value texts."""
    scaled = _scaled(result, 100.0)
    value = scaled.get("value")
    if value is None:
        reason = (result or {}).get("reason") or "not computed"
        return {"value": "—", "ci": "", "p": "", "undefined": True, "reason": reason, "sort": ""}
    ci = scaled.get("ci")
    p_value = _get(result, "details", "p_value")
    return {
        "value": f"{value:+.{digits}f}",
        "ci": f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]" if ci and None not in ci else "",
        "p": "" if p_value is None else _p_text(p_value),
        "undefined": False,
        "reason": "",
        "sort": repr(float(value)),
    }


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


def studies_model(
    studies: Mapping[str, Any] | None, judges: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Everything the report shows of ``metrics["studies"]`` (empty for older snapshots)."""
    if not studies:
        return {}
    names = {"human": "human majority", **{j["id"]: j["label"] for j in judges}}
    colours = {"human": plots.CEILING, **{j["id"]: j["colour"] for j in judges}}
    notes = {
        j["id"]: DEMONSTRATION_JUDGES[j["model_id"]]
        for j in judges
        if j.get("model_id") in DEMONSTRATION_JUDGES
    }
    half_width = float(studies.get("half_width") or 0.05)
    return {
        "half_width_pts": round(100 * half_width),
        "refusal": _refusal(studies.get("refusal") or {}, names, colours, notes),
        "style": _style(studies.get("style") or {}, names, colours),
        "criteria": _criteria(studies.get("criteria") or {}, names),
        "ppi": _optional(_ppi, studies.get("ppi"), names, colours),
        "sequential": _optional(_sequential, studies.get("sequential"), names, colours),
        "self_family": self_family_model(
            studies.get("self_family"), names, pts=pts, percent=percent
        ),
    }


def _points_chart(
    rows: Sequence[tuple[str, Mapping[str, Any] | None]], *, title: str, colour: str, zero: str
) -> plots.Svg:
    """A forest plot of 0-1-scale figures in percentage points around a zero line; empty
    (no chart) when none of the rows has a number."""
    if not any((result or {}).get("value") is not None for _, result in rows):
        return plots.Svg("")
    return plots.interval_chart(
        [IntervalRow.of(label, _scaled(result, 100.0), colour) for label, result in rows],
        title=title,
        references=[ReferenceLine(zero, 0.0, colour=plots.MUTED)],
        domain=(-10.0, 10.0),
        digits=1,
        unit=" pts",
    )


# --- refusal gap -----------------------------------------------------------------------------


def _rate_rows(rows: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[dict]:
    out = []
    for row in rows:
        out.append(
            {
                "rater": names.get(row["rater"], row["rater"]),
                "class": CLASS_NAMES.get(row["response_class"], row["response_class"]),
                "n": row["n"],
                "win": percent(row["win_rate"], row["win_low"], row["win_high"]),
                "loss": percent(row["loss_rate"], row["loss_low"], row["loss_high"]),
                "tie": percent(row["tie_rate"], row["tie_low"], row["tie_high"]),
                "wl": plots.result_text(
                    {"value": row["wl_ratio"], "ci": [row["wl_low"], row["wl_high"]]}, digits=2
                )
                if row.get("wl_ratio") is not None
                else "—",
            }
        )
    return out


def _refusal(
    data: Mapping[str, Any],
    names: Mapping[str, str],
    colours: Mapping[str, str],
    notes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    if not data or data.get("reason"):
        return {"reason": data.get("reason") or "not computed"}
    notes = notes or {}
    gaps = []
    for judge, gap in (data.get("gaps") or {}).items():
        label = names.get(judge, judge)
        if not gap.get("rows"):
            gaps.append(
                {
                    "label": label,
                    "reason": gap.get("reason") or "not computed",
                    "note": notes.get(judge, ""),
                }
            )
            continue
        rows = [
            {
                "class": CLASS_NAMES.get(row["class"], row["class"]),
                "human": pts(row["human"]),
                "judge": pts(row["judge"]),
                "gap": pts(row["gap"]),
                "half": pts(row["gap_ties_half"]),
            }
            for row in gap["rows"]
        ]
        gaps.append(
            {
                "label": label,
                "note": notes.get(judge, ""),
                "pairs": gap.get("pairs"),
                "reason": gap.get("reason"),
                "rows": rows,
                "length": pts(gap.get("length")),
                "svg": _points_chart(
                    [(CLASS_NAMES.get(r["class"], r["class"]), r["gap"]) for r in gap["rows"]],
                    title=f"{label}: how much more the judge rewards each class than people",
                    colour=colours.get(judge, plots.PALETTE[0]),
                    zero="no gap",
                ),
            }
        )
    lpm = []
    for rater, model in (data.get("lpm") or {}).items():
        lpm.append(
            {
                "rater": names.get(rater, rater),
                "reason": model.get("reason"),
                "rows": [
                    {
                        "term": row["term"],
                        "coef": f"{row['coef_pp']:+.1f}" if row["coef_pp"] is not None else "—",
                        "ci": f"[{row['ci_low_pp']:+.1f}, {row['ci_high_pp']:+.1f}]"
                        if row["ci_low_pp"] is not None
                        else "",
                        "p": _p_text(row["p_value"]) if row["p_value"] is not None else "",
                        "note": row.get("note") or "",
                    }
                    for row in model.get("rows", [])
                ],
            }
        )
    counts = data.get("class_counts") or {}
    return {
        "pairs": data.get("pairs"),
        "classifier": (data.get("classifier") or "")[:12],
        "length_unit": data.get("length_unit"),
        "similarity": data.get("similarity"),
        "class_counts": [(CLASS_NAMES.get(c, c), n) for c, n in counts.items()],
        "rates": _rate_rows(data.get("rates") or [], names),
        "rates_vs_normal": _rate_rows(
            [r for r in data.get("rates_vs_normal") or [] if r["response_class"] != "normal"],
            names,
        ),
        "gaps": gaps,
        "lpm": lpm,
    }


def _text_cell(value: Any) -> str:
    """Text for a CSV cell that a spreadsheet will not run: judge names come from imported
    files, and a cell starting with =, +, - or @ would be read as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def refusal_csv(studies: Mapping[str, Any] | None, names: Mapping[str, str]) -> str:
    """The refusal-gap tables as CSV: one row per (judge, class) gap, then the class rates."""
    data = _get(studies, "refusal") or {}
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

    def pp(result: Mapping[str, Any] | None, index: int | None = None) -> Any:
        if not result or result.get("value") is None:
            return ""
        if index is None:
            return round(100 * result["value"], 4)
        ci = result.get("ci")
        return round(100 * ci[index], 4) if ci and ci[index] is not None else ""

    for judge, gap in (data.get("gaps") or {}).items():
        for row in gap.get("rows", []):
            result = row["gap"]
            writer.writerow(
                [
                    "gap",
                    judge,
                    _text_cell(names.get(judge, judge)),
                    row["class"],
                    result.get("n", ""),
                    pp(result),
                    pp(result, 0),
                    pp(result, 1),
                    _get(result, "details", "p_value") or "",
                    pp(row["human"]),
                    pp(row["judge"]),
                    pp(row["gap_ties_half"]),
                    *[""] * 6,
                    result.get("reason") or "",
                ]
            )
    for table in ("rates", "rates_vs_normal"):
        for row in data.get(table) or []:
            writer.writerow(
                [
                    table,
                    row["rater"],
                    _text_cell(names.get(row["rater"], row["rater"])),
                    row["response_class"],
                    row["n"],
                    *[""] * 7,
                    row["win_rate"],
                    row["win_low"],
                    row["win_high"],
                    row["loss_rate"],
                    row["tie_rate"],
                    "" if row.get("wl_ratio") is None else row["wl_ratio"],
                    "",
                ]
            )
    return out.getvalue()


# --- style and length ------------------------------------------------------------------------


def _style(
    data: Mapping[str, Any], names: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, Any]:
    if not data or data.get("reason"):
        return {"reason": data.get("reason") or "not computed"}
    judges = []
    for judge, fit in (data.get("sensitivity") or {}).items():
        label = names.get(judge, judge)
        if not fit.get("rows"):
            judges.append({"label": label, "reason": fit.get("reason") or "not computed"})
            continue
        rows = [
            {
                "feature": FEATURE_NAMES.get(row["feature"], row["feature"]),
                "human": pts(row["human"]),
                "judge": pts(row["judge"]),
                "net": pts(row["net"]),
            }
            for row in fit["rows"]
        ]
        chart = _points_chart(
            [(row["feature"], row["net"]) for row in fit["rows"]],
            title=f"{label}: sensitivity net of people's (points of win probability)",
            colour=colours.get(judge, plots.PALETTE[0]),
            zero="same as people",
        )
        judges.append(
            {
                "label": label,
                "pairs": fit.get("pairs"),
                "reason": fit.get("reason"),
                "rows": rows,
                "svg": chart,
            }
        )
    lc = data.get("lc_win_rates") or {}
    lc_reason = lc.get("reason") if isinstance(lc.get("reason"), str) else None
    raters = [r for r in lc if r != "reason"]
    models: dict[str, dict[str, Any]] = {}
    for rater in raters:
        for row in lc[rater]:
            entry = models.setdefault(row["model"], {"model": row["model"], "cells": {}})
            entry["cells"][rater] = {
                "raw": percent(row["win_rate"]),
                "lc": percent(row["lc_win_rate"], row["lc_low"], row["lc_high"])
                if not row.get("note")
                else {"value": "—", "ci": row["note"], "undefined": True, "sort": ""},
                "n": row["n"],
            }
    return {
        "pairs": data.get("pairs"),
        "features": [FEATURE_NAMES.get(f, f) for f in data.get("features", [])],
        "missing": data.get("missing") or [],
        "length_unit": data.get("length_unit"),
        "judges": judges,
        "lc_reason": lc_reason,
        "lc_raters": [{"id": r, "name": names.get(r, r)} for r in raters],
        "lc_models": [
            {"model": m["model"], "cells": [m["cells"].get(r) for r in raters]}
            for m in models.values()
        ],
    }


# --- criteria --------------------------------------------------------------------------------


def _criteria(data: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    if not data or data.get("reason"):
        return {"reason": data.get("reason") or "not computed"}
    judges = []
    for judge, report in (data.get("judges") or {}).items():
        rows = [
            {
                "criterion": row["criterion"],
                "judge_share": percent(row.get("judge_share")),
                "human_share": percent(row.get("human_share")),
                "diff": pts(
                    {
                        "value": row.get("dominance_diff"),
                        "ci": [row.get("diff_low"), row.get("diff_high")],
                    }
                ),
                "judge_agreement": percent(
                    row.get("judge_agreement"),
                    row.get("judge_agreement_low"),
                    row.get("judge_agreement_high"),
                ),
                "human_agreement": percent(
                    row.get("human_agreement"),
                    row.get("human_agreement_low"),
                    row.get("human_agreement_high"),
                ),
            }
            for row in report.get("rows", [])
        ]
        share = report.get("style_share") or {}
        judges.append(
            {
                "label": names.get(judge, judge),
                "pairs": report.get("pairs"),
                "rows": rows,
                "r2_judge": plots.result_text(_get(report, "r2", "judge")),
                "r2_human": plots.result_text(_get(report, "r2", "human")),
                "style_judge": plots.result_text(share.get("judge")),
                "style_human": plots.result_text(share.get("human")),
                "style_difference": plots.result_text(share.get("difference")),
                "dropped": report.get("dropped") or {},
            }
        )
    return {"judges": judges}


# --- few labels, many verdicts ---------------------------------------------------------------


def _optional(
    build: Callable[[Mapping[str, Any], Mapping[str, str], Mapping[str, str]], dict[str, Any]],
    data: Mapping[str, Any] | None,
    names: Mapping[str, str],
    colours: Mapping[str, str],
) -> dict[str, Any] | None:
    """A study older snapshots may lack: None without it, its reason when it is undefined."""
    if data is None:
        return None
    if data.get("reason"):
        return {"reason": data["reason"]}
    return build(data, names, colours)


def _bounds(row: Mapping[str, Any], estimate: str) -> tuple[Any, Any, Any]:
    """A PPI row's ``estimate`` (``classical`` or ``ppi``) and its interval's ends."""
    return row.get(estimate), row.get(f"{estimate}_low"), row.get(f"{estimate}_high")


def _ppi(
    data: Mapping[str, Any], names: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, Any]:
    tables = []
    for key, title in (("by_model", "model"), ("by_class", "response class")):
        for judge, entry in (data.get(key) or {}).items():
            label = names.get(judge, judge)
            if not entry.get("rows"):
                tables.append(
                    {"judge": label, "by": title, "reason": entry.get("reason") or "no rows"}
                )
                continue
            rows = []
            chart_rows = []
            for row in entry["rows"]:
                group = (
                    CLASS_NAMES.get(row["group"], row["group"])
                    if key == "by_class"
                    else row["group"]
                )
                rows.append(
                    {
                        "group": group,
                        "labelled": row["n_labelled"],
                        "judged": row["n_judged"],
                        "judge_only": percent(row["judge_only"]),
                        "classical": percent(*_bounds(row, "classical")),
                        "ppi": percent(*_bounds(row, "ppi")),
                        "lam": plots.number_text(row.get("lambda"), 2),
                        "more": row.get("labels_more"),
                        "note": row.get("note") or "",
                    }
                )
                for estimate, name, colour in (
                    ("classical", "labels only", plots.MUTED),
                    ("ppi", "PPI", colours.get(judge, plots.PALETTE[0])),
                ):
                    value, low, high = _bounds(row, estimate)
                    result = {"value": value, "ci": [low, high], "reason": row.get("note")}
                    chart_rows.append(IntervalRow.of(f"{group} · {name}", result, colour))
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
    return {"labelled": data.get("labelled"), "method": data.get("method"), "tables": tables}


def _sequential(
    data: Mapping[str, Any], names: Mapping[str, str], colours: Mapping[str, str]
) -> dict[str, Any]:
    rows = []
    for judge, entry in (data.get("judges") or {}).items():
        label = names.get(judge, judge)
        if entry.get("reason"):
            rows.append({"label": label, "reason": entry["reason"]})
            continue
        path = entry.get("path") or []
        colour = colours.get(judge, plots.PALETTE[0])
        series = [
            Series("upper bound", [(p[0], p[3]) for p in path], colour, dashed=True),
            Series("estimate", [(p[0], p[2]) for p in path], colour),
            Series("lower bound", [(p[0], p[1]) for p in path], colour, dashed=True),
        ]
        rows.append(
            {
                "label": label,
                "current": plots.result_text(entry.get("current"), with_n=True),
                "fixed": plots.result_text(entry.get("fixed_n")),
                "more": entry.get("more"),
                "projection": entry.get("projection"),
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
