"""Metrics per slice of the vote table."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.metrics import metrics_by_slice, percent_agreement

VOTES = pd.DataFrame(
    [
        (1, "judge", "A", "refusal"),
        (1, "human", "A", "refusal"),
        (2, "judge", "B", "refusal"),
        (2, "human", "A", "refusal"),
        (3, "judge", "B", "normal"),
        (3, "human", "B", "normal"),
    ],
    columns=["item", "rater", "value", "response_class"],
)


def test_it_computes_each_metric_on_each_slice_and_overall() -> None:
    results = metrics_by_slice(
        VOTES, "response_class", {"agreement": lambda v: percent_agreement(v, "judge")}
    )
    assert list(results) == ["all", "normal", "refusal"]
    assert results["all"]["agreement"].value == pytest.approx(2 / 3)
    assert results["refusal"]["agreement"].value == pytest.approx(1 / 2)
    assert results["normal"]["agreement"].value == 1.0


def test_it_names_a_missing_slice_column() -> None:
    with pytest.raises(ValueError, match="'dataset'"):
        metrics_by_slice(VOTES, "dataset", {})
