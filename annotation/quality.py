"""Quality control of annotators: gold accuracy, agreement with the others, speed, side
preference. Pure: no Django import; `annotation.selectors.quality_table` feeds it rows.

Each annotator's figures:

* gold accuracy: answers equal to the gold item's known answer, over gold items answered;
* agreement with the others: over the sampled items they labelled, the share of (their
  label, another annotator's label on the same item) pairs that are equal;
* median seconds per item, over everything they labelled;
* left-side preference: among their strict choices (left or right, not tie or both bad), the
  share that picked the response shown on the left. People with no preference sit near 0.5;
  the side order is random per assignment, so a share far from 0.5 is the annotator's habit,
  not the data's.

Proportions carry a Wilson score interval (Wilson 1927; Newcombe 1998, method 3), which
keeps inside [0, 1] and behaves at 0 and n successes, where the Wald interval collapses.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Proportion:
    successes: int
    n: int
    low: float
    high: float

    @property
    def share(self) -> float:
        return self.successes / self.n


def wilson(successes: int, n: int, *, z: float = Z95) -> Proportion | None:
    """The Wilson score interval for successes/n, or None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Proportion(successes, n, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class LabelRow:
    item: int
    annotator: int
    outcome: str
    chose_left: bool | None
    seconds: float
    gold_outcome: str = ""  # the known answer when the item is gold


@dataclass(frozen=True)
class Thresholds:
    min_seconds: float
    min_gold_accuracy: float


@dataclass
class AnnotatorQuality:
    annotator: int
    labels: int = 0
    median_seconds: float | None = None
    gold: Proportion | None = None
    agreement: Proportion | None = None
    left: Proportion | None = None
    flags: list[str] = field(default_factory=list)


def annotator_quality(
    rows: Iterable[LabelRow], *, thresholds: Thresholds, annotators: Iterable[int] = ()
) -> dict[int, AnnotatorQuality]:
    """Each annotator's figures and flags ("too fast", "below gold"), keyed by annotator;
    `annotators` adds rows for people with no label yet."""
    rows = list(rows)
    by_item: dict[int, list[LabelRow]] = defaultdict(list)
    for row in rows:
        if not row.gold_outcome:
            by_item[row.item].append(row)
    mine: dict[int, list[LabelRow]] = defaultdict(list)
    for row in rows:
        mine[row.annotator].append(row)
    result = {person: AnnotatorQuality(person) for person in annotators}
    for person, own in mine.items():
        gold = [row for row in own if row.gold_outcome]
        agree = compared = 0
        for row in own:
            if row.gold_outcome:
                continue
            for other in by_item[row.item]:
                if other.annotator != person:
                    compared += 1
                    agree += other.outcome == row.outcome
        strict = [row.chose_left for row in own if row.chose_left is not None]
        quality = AnnotatorQuality(
            person,
            labels=len(own),
            median_seconds=statistics.median(row.seconds for row in own),
            gold=wilson(sum(row.outcome == row.gold_outcome for row in gold), len(gold)),
            agreement=wilson(agree, compared),
            left=wilson(sum(strict), len(strict)),
        )
        if quality.median_seconds is not None and quality.median_seconds < thresholds.min_seconds:
            quality.flags.append("too fast")
        if quality.gold is not None and quality.gold.share < thresholds.min_gold_accuracy:
            quality.flags.append("below gold")
        result[person] = quality
    return result


def gold_answers(rows: Iterable[LabelRow]) -> Mapping[int, tuple[int, int]]:
    """gold item -> (answers equal to the known answer, answers)."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.gold_outcome:
            counts[row.item][0] += row.outcome == row.gold_outcome
            counts[row.item][1] += 1
    return {item: (right, total) for item, (right, total) in counts.items()}
