"""The same metrics per slice of the data: stratum, response class, dataset, category, pair.

A slice is a group of items sharing a value of one (or several) columns of the vote table.
Each metric is a callable taking the slice's rows and returning a result, so any function of
this package fits, e.g. ``lambda v: cohen_kappa(v, "gpt-4o", n_boot=1000)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.metrics.votes import require_columns


def metrics_by_slice(
    votes: pd.DataFrame,
    by: str | Sequence[str],
    metrics: Mapping[str, Callable[[pd.DataFrame], Any]],
    *,
    include_all: bool = True,
) -> dict[Hashable, dict[str, Any]]:
    """Compute every metric on every slice of ``votes`` grouped by column(s) ``by``.

    Returns ``{slice value: {metric name: result}}`` in sorted slice order; with
    ``include_all`` the whole table comes first under the key ``"all"``. Rows whose slice
    value is missing are left out of the slices (but counted in ``"all"``).
    """
    columns = [by] if isinstance(by, str) else list(by)
    frame = require_columns(votes, columns, "votes")
    results: dict[Hashable, dict[str, Any]] = {}
    if include_all:
        results["all"] = {name: metric(frame) for name, metric in metrics.items()}
    key: str | list[str] = columns[0] if len(columns) == 1 else columns
    for value, group in frame.groupby(key, sort=True, dropna=True):
        results[value] = {name: metric(group) for name, metric in metrics.items()}
    return results
