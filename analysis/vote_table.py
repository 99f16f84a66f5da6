"""What a snapshot is computed from: the vote table, as plain DataFrames (no Django).

:mod:`analysis.selectors` reads it from the database; :mod:`analysis.figures` computes
every figure from it. Rater ids: ``h:<voter id>`` (imported votes), ``u:<user id>``
(annotators' labels), ``j:<judge id>`` (one judge version) and :data:`MAJORITY`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

MAJORITY = "human_majority"
MAJORITY_NAME = "human majority"
SLICE_LABELS = {
    "stratum": "Stratum",
    "turn": "Turn",
    "category": "Category",
    "model_pair": "Model pair",
    "response_class": "Response classes",
    "dataset": "Dataset",
}


@dataclass(frozen=True)
class JudgeInfo:
    id: str  # rater id, j:<pk>
    judge_id: int
    name: str
    version: int
    model_id: str
    verdicts: int = 0  # verdicts with an outcome on these items
    unparsed: int = 0  # verdicts without one (failed parse, call error, not run)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class VoteTable:
    """Everything a snapshot is computed from, as DataFrames.

    ``votes``: item, rater, value, kind (human / judge / majority) and the item's slice
    columns. ``items``: one row per item with its slice columns. ``orders``: judges' verdicts
    in each presentation order (item, rater, outcome_ab, outcome_ba, consistent, prompt).
    ``sides``: the annotators' side choices (rater, value, left = the response shown left).
    ``adjudicated``: item -> the lead's outcome. ``watermark``: aggregates that change
    whenever the inputs do (see :func:`audit_watermark`).
    """

    subject: dict[str, Any]
    votes: pd.DataFrame
    items: pd.DataFrame
    humans: dict[str, str]  # rater id -> display name
    judges: dict[str, JudgeInfo]
    orders: pd.DataFrame
    sides: pd.DataFrame
    adjudicated: pd.Series
    counts: dict[str, int] = field(default_factory=dict)
    slices: tuple[str, ...] = ()
    progress: dict[str, Any] = field(default_factory=dict)
