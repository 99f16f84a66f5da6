"""Geometry of the per-class bar chart (pure: no Django).

Templates draw the chart as SVG from these numbers, so every piece of text goes through
Django's autoescaping, and colours come from CSS classes (`.class-bar-<class>` in
static/css/tribunal.css), never from `style=` attributes, which the CSP forbids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

LABEL_WIDTH: Final = 160.0
BAR_MAX: Final = 250.0
COUNT_WIDTH: Final = 110.0
ROW_HEIGHT: Final = 26.0
BAR_HEIGHT: Final = 18.0
PADDING: Final = 4.0


@dataclass(frozen=True)
class ClassBar:
    label: str  # the class value, e.g. "ethical_refusal"
    name: str  # what people read, e.g. "Ethical refusal"
    count: int
    share: float  # of all classified responses, 0..1
    y: float  # top of the row
    width: float  # bar length; 0 for an empty class

    @property
    def bar_y(self) -> float:
        return self.y + (ROW_HEIGHT - BAR_HEIGHT) / 2

    @property
    def text_y(self) -> float:
        return self.y + ROW_HEIGHT / 2 + 5

    @property
    def count_x(self) -> float:
        return LABEL_WIDTH + self.width + 6

    @property
    def percent(self) -> float:
        return 100 * self.share


@dataclass(frozen=True)
class ClassChart:
    bars: tuple[ClassBar, ...]
    total: int
    width: float
    height: float
    label_width: float = LABEL_WIDTH
    bar_height: float = BAR_HEIGHT

    @property
    def label_x(self) -> float:
        return self.label_width - 8  # class names end here (text-anchor="end")


def class_chart(
    counts: Mapping[str, int], *, classes: Sequence[str], names: Mapping[str, str]
) -> ClassChart:
    """One bar per class in `classes` order (classes missing from `counts` have 0); bars are
    scaled to the largest count, so the most frequent class spans the full width."""
    values = [max(int(counts.get(label, 0)), 0) for label in classes]
    total = sum(values)
    largest = max(values, default=0)
    bars = tuple(
        ClassBar(
            label=label,
            name=names.get(label, label),
            count=count,
            share=count / total if total else 0.0,
            y=PADDING + row * ROW_HEIGHT,
            width=round(BAR_MAX * count / largest, 1) if largest else 0.0,
        )
        for row, (label, count) in enumerate(zip(classes, values, strict=True))
    )
    return ClassChart(
        bars=bars,
        total=total,
        width=LABEL_WIDTH + BAR_MAX + COUNT_WIDTH,
        height=2 * PADDING + ROW_HEIGHT * len(bars),
    )
