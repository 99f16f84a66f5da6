"""The per-class bar chart's geometry (pure)."""

from __future__ import annotations

import pytest

from judges.charts import BAR_MAX, LABEL_WIDTH, ROW_HEIGHT, class_chart

CLASSES = ("normal", "ethical_refusal", "technical_refusal")
NAMES = {"normal": "Normal", "ethical_refusal": "Ethical refusal"}


def test_it_scales_bars_to_the_largest_class_and_keeps_the_class_order() -> None:
    chart = class_chart({"ethical_refusal": 30, "normal": 60}, classes=CLASSES, names=NAMES)

    assert [bar.label for bar in chart.bars] == list(CLASSES)
    assert [bar.count for bar in chart.bars] == [60, 30, 0]
    assert [bar.width for bar in chart.bars] == [BAR_MAX, BAR_MAX / 2, 0.0]
    assert [bar.percent for bar in chart.bars] == pytest.approx([200 / 3, 100 / 3, 0.0])
    assert [bar.name for bar in chart.bars] == ["Normal", "Ethical refusal", "technical_refusal"]
    assert chart.total == 90
    assert chart.bars[1].y - chart.bars[0].y == ROW_HEIGHT
    assert chart.bars[0].count_x == LABEL_WIDTH + BAR_MAX + 6
    assert chart.height == chart.bars[-1].y + ROW_HEIGHT + chart.bars[0].y


def test_it_draws_empty_bars_when_nothing_is_counted() -> None:
    chart = class_chart({}, classes=CLASSES, names=NAMES)

    assert chart.total == 0
    assert [(bar.width, bar.share) for bar in chart.bars] == [(0.0, 0.0)] * 3
