"""Figures for people: server-rendered SVG charts and the text form of a result.

Pure functions (no Django), returning :class:`Svg`, a ``str`` that templates insert as is.
Every piece of text that reaches the markup (judge names, slice values, reasons) goes
through :func:`esc`; colours and sizes are SVG presentation attributes (``fill=``,
``stroke=``), never ``style=``, so the pages keep a strict Content Security Policy.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.display import display_text
from analysis.snapshot import Result

# A figure as the snapshot stores it (analysis.snapshot.Result), or the same JSON from a
# figure computed on request (the judge comparison's drift figures).
AnyResult = Result | Mapping[str, Any] | None


def as_result(result: AnyResult) -> Result | None:
    """A figure as :class:`~analysis.snapshot.Result` (None when there is none)."""
    if result is None or isinstance(result, Result):
        return result
    if not result:
        return None
    data = dict(result)
    ci = data.get("ci")
    if ci is not None and (len(ci) < 2 or ci[0] is None or ci[1] is None):
        data["ci"] = None
    return Result.model_validate(data)


PALETTE = ("#2f5d8a", "#b3261e", "#2e7d4f", "#a86b00", "#6a3d9a", "#00838f", "#5d4037", "#c2185b")
INK = "#1d1d1f"
MUTED = "#6b6b70"
LINE = "#dcdcd8"
CEILING = "#2e7d4f"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


class Svg(str):
    """Markup built here from escaped parts: safe to insert into a page as is."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def esc(text: Any) -> str:
    """Text for SVG/HTML content or an attribute value."""
    return html.escape(str(text), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


# --- text --------------------------------------------------------------------------------------


def number_text(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def result_text(result: AnyResult, digits: int = 3, with_n: bool = False) -> str:
    """``0.706 [0.668, 0.746]`` for a defined result, ``undefined: <reason>`` otherwise."""
    found = as_result(result)
    if found is None:
        return "undefined: not computed"
    if found.value is None:
        return f"undefined: {found.reason or 'no value'}"
    text = number_text(found.value, digits)
    if found.ci is not None:
        text += f" [{number_text(found.ci[0], digits)}, {number_text(found.ci[1], digits)}]"
    if with_n:
        text += f" (n={found.n:,})"
    return text


# --- interval bars -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalRow:
    label: str
    value: float | None
    ci: tuple[float, float] | None = None
    reason: str | None = None
    n: int | None = None
    colour: str = PALETTE[0]

    @classmethod
    def of(cls, label: str, result: AnyResult, colour: str = PALETTE[0]) -> IntervalRow:
        found = as_result(result)
        if found is None:
            return cls(label, None, reason="not computed", colour=colour)
        return cls(
            label,
            *_value_and_ci(found),
            reason=found.reason,
            n=found.n if "n" in found.model_fields_set else None,
            colour=colour,
        )


@dataclass(frozen=True)
class ReferenceLine:
    label: str
    value: float | None
    ci: tuple[float, float] | None = None
    colour: str = CEILING
    dashed: bool = True

    @classmethod
    def of(cls, label: str, result: AnyResult, colour: str = CEILING) -> ReferenceLine:
        found = as_result(result)
        if found is None:
            return cls(label, None, colour=colour)
        return cls(label, *_value_and_ci(found), colour=colour)


def _value_and_ci(result: Result) -> tuple[float | None, tuple[float, float] | None]:
    """A result's value and its interval (None unless both ends are numbers)."""
    ci = result.ci
    return result.value, (ci[0], ci[1]) if ci is not None else None


def _domain(values: Sequence[float | None], low: float, high: float) -> tuple[float, float]:
    present = [v for v in values if v is not None and math.isfinite(v)]
    if present:
        low = min(low, math.floor(min(present) * 10) / 10)
        high = max(high, math.ceil(max(present) * 10) / 10)
    return low, high if high > low else low + 1.0


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    if span <= 1.0:
        step = 0.25
    elif span <= 2.0:
        step = 0.5
    else:  # a round step giving about five ticks (percentage points, counts)
        raw = span / 5.0
        magnitude = 10.0 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    count = math.floor((high - first) / step + 1e-9) + 1
    return [round(first + i * step, 6) for i in range(count)]


def interval_chart(
    rows: Sequence[IntervalRow],
    *,
    title: str,
    references: Sequence[ReferenceLine] = (),
    domain: tuple[float, float] = (0.0, 1.0),
    width: int = 480,
    label_width: int = 170,
    digits: int = 3,
    unit: str = "",
) -> Svg:
    """Horizontal point-and-interval bars, one row per rater, with reference lines.

    ``digits`` and ``unit`` (e.g. ``" pts"``) shape the value written beside each bar.

    A reference with a CI (the human ceiling) is drawn as a band behind a dashed line; rows
    without a value show ``undefined: reason`` in place of the bar.
    """
    row_height, top, bottom = 26, 24, 30 + 16 * len(references)
    height = top + row_height * max(len(rows), 1) + bottom
    everything: list[float | None] = []
    for row in rows:
        everything += [row.value, *(row.ci or ())]
    for ref in references:
        everything += [ref.value, *(ref.ci or ())]
    low, high = _domain(everything, *domain)
    left, right = label_width, width - 70
    plot_bottom = top + row_height * max(len(rows), 1)

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{esc(title)}" font-family="{esc(FONT)}" '
        f'font-size="12">',
        f"<title>{esc(title)}</title>",
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{_f(x(tick))}" y1="{top - 6}" x2="{_f(x(tick))}" y2="{plot_bottom}" '
            f'stroke="{LINE}" stroke-width="1"/>'
            f'<text x="{_f(x(tick))}" y="{plot_bottom + 14}" text-anchor="middle" '
            f'fill="{MUTED}">{esc(_tick_text(tick, high - low))}</text>'
        )
    for ref in references:
        if ref.value is None:
            continue
        if ref.ci is not None:
            parts.append(
                f'<rect x="{_f(x(ref.ci[0]))}" y="{top - 6}" '
                f'width="{_f(max(x(ref.ci[1]) - x(ref.ci[0]), 1.0))}" '
                f'height="{plot_bottom - top + 6}" fill="{ref.colour}" fill-opacity="0.12"/>'
            )
        dash = ' stroke-dasharray="5 3"' if ref.dashed else ""
        parts.append(
            f'<line x1="{_f(x(ref.value))}" y1="{top - 6}" x2="{_f(x(ref.value))}" '
            f'y2="{plot_bottom}" stroke="{ref.colour}" stroke-width="1.5"{dash}>'
            f"<title>{esc(ref.label)}: {esc(number_text(ref.value))}</title></line>"
        )
    for index, row in enumerate(rows):
        y = top + row_height * index + row_height / 2
        parts.append(
            f'<text x="{label_width - 8}" y="{_f(y + 4)}" text-anchor="end" fill="{INK}">'
            f"{esc(_clip(row.label, 26))}<title>{esc(row.label)}</title></text>"
        )
        if row.value is None:
            # The reason in full is in the tooltip and in the table beside the chart; the
            # chart's line is cut at a word so it never runs off the picture mid-word.
            reason = f"undefined: {display_text(row.reason or 'no value')}"
            room = int((width - left - 8) / 6.6)  # characters of 12 px text that fit
            parts.append(
                f'<text x="{left}" y="{_f(y + 4)}" fill="{MUTED}" font-style="italic">'
                f"{esc(_clip_words(reason, room))}<title>{esc(reason)}</title></text>"
            )
            continue
        tip = f"{row.label}: {number_text(row.value, digits)}{unit}"
        if row.ci is not None:
            tip += f" [{number_text(row.ci[0], digits)}, {number_text(row.ci[1], digits)}]"
            parts.append(
                f'<line x1="{_f(x(row.ci[0]))}" y1="{_f(y)}" x2="{_f(x(row.ci[1]))}" '
                f'y2="{_f(y)}" stroke="{row.colour}" stroke-width="3" stroke-linecap="round"/>'
            )
        if row.n is not None:
            tip += f", n = {row.n:,}"
        parts.append(
            f'<circle cx="{_f(x(row.value))}" cy="{_f(y)}" r="5" fill="{row.colour}" '
            f'stroke="#fff" stroke-width="1.5"><title>{esc(tip)}</title></circle>'
            f'<text x="{right + 8}" y="{_f(y + 4)}" fill="{INK}">'
            f"{esc(number_text(row.value, digits) + unit)}</text>"
        )
    legend_y = plot_bottom + 32
    for ref in references:
        if ref.value is None:
            continue
        text = f"{ref.label}: {number_text(ref.value)}"
        if ref.ci is not None:
            text += f" [{number_text(ref.ci[0])}, {number_text(ref.ci[1])}]"
        dash = ' stroke-dasharray="5 3"' if ref.dashed else ""
        parts.append(
            f'<line x1="{left}" y1="{legend_y - 4}" x2="{left + 18}" y2="{legend_y - 4}" '
            f'stroke="{ref.colour}" stroke-width="1.5"{dash}/>'
            f'<text x="{left + 24}" y="{legend_y}" fill="{MUTED}">{esc(text)}</text>'
        )
        legend_y += 16
    parts.append("</svg>")
    return Svg("".join(parts))


def _tick_text(tick: float, span: float) -> str:
    return number_text(tick, 2) if span <= 2.0 else f"{tick:g}"


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _clip_words(text: str, length: int) -> str:
    """``text`` cut at the last whole word that fits in ``length`` characters, with "…"."""
    if len(text) <= length:
        return text
    head = text[: length - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return head + "…"


# --- trend lines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None is a gap
    colour: str = PALETTE[0]
    dashed: bool = False


def trend_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    domain: tuple[float, float] = (0.0, 1.0),
    width: int = 480,
    height: int = 240,
) -> Svg:
    """Lines of a figure against the label count, one per rater; a legend below."""
    xs = [p[0] for s in series for p in s.points]
    ys = [p[1] for s in series for p in s.points]
    low, high = _domain(ys, *domain)
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high <= x_low:
        x_low, x_high = x_low - 1, x_high + 1
    left, right, top = 52, width - 16, 16
    plot_bottom = height - 44
    legend_rows = math.ceil(len(series) / 2)
    total_height = height + 18 * legend_rows

    def px(value: float) -> float:
        return left + (value - x_low) / (x_high - x_low) * (right - left)

    def py(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" '
        f'viewBox="0 0 {width} {total_height}" width="100%" role="img" '
        f'aria-label="{esc(title)}" font-family="{esc(FONT)}" font-size="12">',
        f"<title>{esc(title)}</title>",
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{left}" y1="{_f(py(tick))}" x2="{right}" y2="{_f(py(tick))}" '
            f'stroke="{LINE}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{_f(py(tick) + 4)}" text-anchor="end" fill="{MUTED}">'
            f"{esc(_tick_text(tick, high - low))}</text>"
        )
    for tick in _x_ticks(x_low, x_high):
        parts.append(
            f'<text x="{_f(px(tick))}" y="{plot_bottom + 16}" text-anchor="middle" '
            f'fill="{MUTED}">{esc(number_text(int(tick)))}</text>'
        )
    parts.append(
        f'<text x="{_f((left + right) / 2)}" y="{plot_bottom + 34}" text-anchor="middle" '
        f'fill="{MUTED}">{esc(x_label)}</text>'
        f'<text x="12" y="{_f((top + plot_bottom) / 2)}" text-anchor="middle" fill="{MUTED}" '
        f'transform="rotate(-90 12 {_f((top + plot_bottom) / 2)})">{esc(y_label)}</text>'
    )
    if not xs:
        parts.append(
            f'<text x="{_f((left + right) / 2)}" y="{_f((top + plot_bottom) / 2)}" '
            f'text-anchor="middle" fill="{MUTED}">no snapshots yet</text>'
        )
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        for segment in _segments(s.points):
            coords = " ".join(f"{_f(px(a))},{_f(py(b))}" for a, b in segment)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{s.colour}" '
                f'stroke-width="2"{dash}/>'
            )
        for a, b in s.points:
            if b is None:
                continue
            tip = f"{s.label}: {number_text(b)} at {number_text(int(a))} labels"
            parts.append(
                f'<circle cx="{_f(px(a))}" cy="{_f(py(b))}" r="3" fill="{s.colour}">'
                f"<title>{esc(tip)}</title></circle>"
            )
    for index, s in enumerate(series):
        column, row = index % 2, index // 2
        lx = left + column * (right - left) / 2
        ly = height + 18 * row
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        parts.append(
            f'<line x1="{_f(lx)}" y1="{ly - 4}" x2="{_f(lx + 18)}" y2="{ly - 4}" '
            f'stroke="{s.colour}" stroke-width="2"{dash}/>'
            f'<text x="{_f(lx + 24)}" y="{ly}" fill="{INK}">{esc(_clip(s.label, 30))}</text>'
        )
    parts.append("</svg>")
    return Svg("".join(parts))


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for a, b in points:
        if b is None:
            segments.append([])
        else:
            segments[-1].append((a, b))
    return [s for s in segments if s]


def _x_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high - low < count:
        return [float(v) for v in range(math.ceil(low), math.floor(high) + 1)]
    step = (high - low) / (count - 1)
    return [round(low + i * step) for i in range(count)]


# --- heatmaps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heatmap:
    title: str
    rows: Sequence[Sequence[int]]
    row_labels: Sequence[str]
    column_labels: Sequence[str]
    row_title: str
    column_title: str
    notes: Sequence[str] = field(default_factory=tuple)


def _shade(share: float) -> tuple[str, str]:
    """Fill from white to the accent colour by a 0..1 share; text colour that stays legible."""
    share = min(max(share, 0.0), 1.0)
    base = (47, 93, 138)
    rgb = tuple(round(255 + (c - 255) * share) for c in base)
    return "#{:02x}{:02x}{:02x}".format(*rgb), ("#ffffff" if share > 0.55 else INK)


def heatmap(data: Heatmap, *, cell: int = 54) -> Svg:
    """A small confusion matrix: counts in cells shaded by their share of the row."""
    q_rows, q_columns = len(data.rows), len(data.column_labels)
    left, top = 64, 44  # the row title is in the caption and in each cell's tooltip
    width = left + cell * q_columns + 12
    height = top + cell * q_rows + 12
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heatmap" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(data.title)}" font-family="{esc(FONT)}" font-size="12">',
        f"<title>{esc(data.title)}</title>",
        f'<text x="{left + cell * q_columns / 2}" y="12" text-anchor="middle" fill="{MUTED}">'
        f"{esc(_clip(data.column_title, 40))}</text>",
    ]
    for j, label in enumerate(data.column_labels):
        parts.append(
            f'<text x="{left + cell * j + cell / 2}" y="{top - 8}" text-anchor="middle" '
            f'fill="{INK}">{esc(label)}</text>'
        )
    for i, (label, counts) in enumerate(zip(data.row_labels, data.rows, strict=True)):
        total = sum(counts)
        y = top + cell * i
        parts.append(
            f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end" fill="{INK}">'
            f"{esc(label)}</text>"
        )
        for j, count in enumerate(counts):
            share = count / total if total else 0.0
            fill, ink = _shade(share)
            tip = (
                f"{data.row_title} {label}, {data.column_title} {data.column_labels[j]}: {count:,}"
            )
            if total:
                tip += f" ({share:.0%} of the row)"
            parts.append(
                f'<rect x="{left + cell * j}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{fill}" stroke="{LINE}"><title>{esc(tip)}</title></rect>'
                f'<text x="{left + cell * j + (cell - 2) / 2}" y="{y + cell / 2 + 4}" '
                f'text-anchor="middle" fill="{ink}">{esc(f"{count:,}")}</text>'
            )
    parts.append("</svg>")
    return Svg("".join(parts))
