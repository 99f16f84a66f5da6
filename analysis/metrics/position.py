"""Position (order) effects: does a verdict survive swapping the two responses?

A judge is run twice on a pair: in the original order (response A in the first slot) and in
the swapped order (response B first). Both verdicts are given *about the responses*, so ``A``
names the same response in both runs (map a swapped-slot verdict back with
:func:`~analysis.metrics.outcomes.swap`). METHODS.md section 3, after Shi et al. 2024
("Judging the Judges", arXiv 2406.07791):

- position consistency PC = share of pairs whose verdict is the same in both orders;
- primacy: inconsistent pairs where the first slot won both times (original A, swapped B);
  recency: the second slot won both times (original B, swapped A); other inconsistencies
  involve a tie;
- preference fairness PF = (recency - primacy) / n, in [-1, 1]: 0 is fair, negative favours
  the first slot, positive the second.

People see a randomised side order; :func:`left_preference` gives each annotator's rate of
choosing the left-hand response, with a Wilson interval (Wilson 1927).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.metrics import bootstrap
from analysis.metrics.outcomes import BOTH_BAD, TIE, A, B, Result, normal_z
from analysis.metrics.votes import require_columns, show


@dataclass(frozen=True)
class PositionReport:
    """Position consistency and fairness of one rater over pairs judged in both orders."""

    consistency: Result
    fairness: Result
    n: int
    consistent: int
    primacy: int
    recency: int
    other: int


def _verdicts(values: Any, name: str) -> np.ndarray:
    """The verdicts as a new object array, ``both_bad`` read as a tie; errors name the first
    value that is not a verdict. Checked per distinct value: a snapshot calls this over a
    hundred times on a few hundred verdicts, where a pandas Series per call cost more than
    the bootstrap (bench/analysis_bench.py)."""
    array = np.array(values, dtype=object).ravel()
    distinct = pd.unique(array)
    if any(not _known(value) for value in distinct):
        position = next(i for i, value in enumerate(array) if not _known(value))
        raise ValueError(
            f"{name}[{position}] is {show(array[position])}; expected A, B, tie or both_bad"
        )
    if any(_is_both_bad(value) for value in distinct):
        array[[_is_both_bad(value) for value in array]] = TIE
    return array


def _known(value: Any) -> bool:
    """A verdict (``A``, ``B``, ``tie``, ``both_bad``) or missing (None, NaN, NA)."""
    if isinstance(value, str):
        return value in (A, B, TIE, BOTH_BAD)
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def _is_both_bad(value: Any) -> bool:
    return isinstance(value, str) and value == BOTH_BAD


def position_report(
    original: Any,
    swapped: Any,
    *,
    clusters: Any = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
) -> PositionReport:
    """PC, primacy/recency counts and PF for verdicts given in both presentation orders.

    ``original`` and ``swapped`` are equal-length sequences of verdicts about the same
    responses; pairs missing either verdict (None/NaN) are skipped. ``clusters`` (one label
    per pair) makes the bootstrap resample clusters instead of pairs.
    """
    counts = order_counts(*checked_orders(original, swapped), clusters)
    resampling = bootstrap.Resampling(n_boot, level, seed)
    return PositionReport(
        consistency=counts.consistency(resampling),
        fairness=counts.fairness(resampling),
        n=counts.n,
        consistent=counts.consistent,
        primacy=counts.primacy,
        recency=counts.recency,
        other=counts.n - counts.consistent - counts.primacy - counts.recency,
    )


def checked_orders(original: Any, swapped: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both orders' verdicts as object arrays (``both_bad`` read as a tie), of equal length;
    errors name the first value that is not a verdict."""
    first, second = _verdicts(original, "original"), _verdicts(swapped, "swapped")
    if first.shape != second.shape:
        raise ValueError(f"original has {len(first)} verdicts but swapped has {len(second)}")
    return first, second


@dataclass(frozen=True)
class OrderCounts:
    """Per pair with both verdicts: 1, consistent, primacy, recency (the bootstrap's
    contributions), with the pairs' cluster labels."""

    contributions: np.ndarray
    labels: np.ndarray | None

    @property
    def n(self) -> int:
        return len(self.contributions)

    @property
    def consistent(self) -> int:
        return int(self.contributions[:, 1].sum())

    @property
    def primacy(self) -> int:
        return int(self.contributions[:, 2].sum())

    @property
    def recency(self) -> int:
        return int(self.contributions[:, 3].sum())

    def consistency(self, resampling: bootstrap.Resampling) -> Result:
        """The share of consistent pairs, with its percentile bootstrap interval."""
        return bootstrap.share_estimate(self.contributions, 1, self.labels, resampling)

    def fairness(self, resampling: bootstrap.Resampling) -> Result:
        """(recency - primacy) / pairs, with its percentile bootstrap interval."""
        return bootstrap.share_estimate(self.contributions, 3, self.labels, resampling, minus=2)


def order_counts(first: np.ndarray, second: np.ndarray, clusters: Any = None) -> OrderCounts:
    """The counts of verdicts already checked by :func:`checked_orders` (or a subset of
    them); pairs missing either verdict are skipped."""
    present = pd.notna(first) & pd.notna(second)
    if clusters is not None:
        labels = np.asarray(clusters)
        if labels.shape != first.shape:
            raise ValueError("clusters must have one label per pair")
        labels = labels[present]
    else:
        labels = None
    first, second = first[present], second[present]
    consistent = first == second
    primacy = (first == A) & (second == B)
    recency = (first == B) & (second == A)
    contributions = np.column_stack([np.ones(len(first)), consistent, primacy, recency]).astype(
        float
    )
    return OrderCounts(contributions, labels)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion (Wilson 1927); None when n = 0.

    centre = (p + z^2 / 2n) / (1 + z^2 / n),
    half-width = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if n <= 0:
        return None
    z = normal_z(level)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * np.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def left_preference(votes: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Each annotator's rate of choosing the response shown on the left, with a Wilson CI.

    ``votes`` has columns ``rater``, ``value`` (verdict about the responses: A or B) and
    ``left`` (which response, A or B, was shown on the left). Ties and both_bad are left out
    (they choose no side). Returns one row per rater: ``n`` side choices, ``left`` choices
    of the left response, ``rate``, ``ci_low``, ``ci_high`` and ``p_value`` of a two-sided
    exact binomial test against 0.5 (no side preference).
    """
    frame = require_columns(votes, ["rater", "value", "left"], "votes")
    bad_side = ~frame["left"].isin([A, B])
    if bad_side.any():
        row = frame[bad_side].iloc[0]
        raise ValueError(f"left must be A or B; rater {show(row['rater'])} has {show(row['left'])}")
    chose = frame[frame["value"].isin([A, B])]
    grouped = (
        chose.assign(on_left=chose["value"].eq(chose["left"]))
        .groupby("rater", sort=True)["on_left"]
        .agg(["size", "sum"])
    )
    rows = []
    for rater, (n, left) in grouped.iterrows():
        low, high = wilson_interval(int(left), int(n), level) or (np.nan, np.nan)
        rows.append(
            {
                "rater": rater,
                "n": int(n),
                "left": int(left),
                "rate": left / n,
                "ci_low": low,
                "ci_high": high,
                "p_value": float(stats.binomtest(int(left), int(n), 0.5).pvalue),
            }
        )
    columns = ["rater", "n", "left", "rate", "ci_low", "ci_high", "p_value"]
    return pd.DataFrame(rows, columns=columns).set_index("rater")
