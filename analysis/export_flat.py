"""The flat, analysis-ready layout of the calibration export (the default).

One row per pair, one plain value per cell: no JSON strings, so `pandas.read_parquet` (or a CSV
reader) gives the columns an analyst came for without decoding anything.

- `pair_id` (the pair's source key; `dataset:key` when the audits span datasets), `dataset`,
  `source_key` (join keys for your own data);
- `prompt`, `response_a`, `response_b` (empty when a side has no text), `has_text`, `model_a`,
  `model_b`, `category`, `turn`, as imported;
- the sample design: `audit_id`, `stratum`, `inclusion_probability`, `weight` (1 / probability);
- `final_label`: the adjudication if there is one, else the people's majority (a tie when
  split); `adjudicated` (bool); `consensus` and `label_count` (how many labels it rests on);
- `label_<annotator>`: each annotator's label (pseudonymous id, as in the generic layout);
- per judge version `judge_<name_vN>_ab` (A shown first), `_ba` (sides swapped, mapped back),
  `_combined`, `_margin` (float) and `_consistent` (bool: the two orders agree);
- `class_a`, `class_b`: each response's refusal class from the most recent classifier;
  `people_class_a`, `people_class_b`: the class people gave, final after a lead's decision
  (`analysis.refusal_instrument.people_classes`, read once per export into `FlatPlan.people`).

Labels and classes are the outcome values (`A`, `B`, `tie`, `both_bad`) and class slugs
(`normal`, `ethical_refusal`, ...), so they compare directly with the generic layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FIXED: tuple[tuple[str, str], ...] = (  # (column, arrow type)
    ("pair_id", "string"),
    ("dataset", "string"),
    ("source_key", "string"),
    ("prompt", "string"),
    ("response_a", "string"),
    ("response_b", "string"),
    ("has_text", "bool"),
    ("model_a", "string"),
    ("model_b", "string"),
    ("category", "string"),
    ("turn", "int32"),
    ("audit_id", "int64"),
    ("stratum", "string"),
    ("inclusion_probability", "float64"),
    ("weight", "float64"),
    ("final_label", "string"),
    ("adjudicated", "bool"),
    ("consensus", "string"),
    ("label_count", "int32"),
)
CLASSES: tuple[tuple[str, str], ...] = (
    ("class_a", "string"),
    ("class_b", "string"),
    ("people_class_a", "string"),
    ("people_class_b", "string"),
)
JUDGE_PARTS: tuple[tuple[str, str, str], ...] = (  # (suffix, verdict key, arrow type)
    ("ab", "outcome_ab", "string"),
    ("ba", "outcome_ba", "string"),
    ("combined", "outcome", "string"),
    ("margin", "margin", "float64"),
    ("consistent", "consistent", "bool"),
)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "judge"


@dataclass
class FlatPlan:
    """The columns of one flat export, fixed before the first row (Parquet and CSV need them)."""

    annotators: dict[str, str] = field(default_factory=dict)  # pseudonym -> column
    judges: dict[str, str] = field(default_factory=dict)  # fingerprint -> column prefix
    judge_labels: dict[str, str] = field(default_factory=dict)  # fingerprint -> "name vN"
    classifier: str | None = None
    # response id -> people's final class (annotators' classes, a lead's decision over them)
    people: dict[int, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        pseudonyms: Sequence[str],
        judges: Sequence[tuple[str, str, int]],  # (fingerprint, name, version)
        classifier: str | None,
    ) -> FlatPlan:
        plan = cls(classifier=classifier)
        for voter in sorted(pseudonyms):
            plan.annotators[voter] = "label_" + _slug(voter)
        taken: set[str] = set()
        for fingerprint, name, version in sorted(judges, key=lambda j: (j[1], j[2], j[0])):
            prefix = "judge_" + _slug(f"{name} v{version}")
            if prefix in taken:  # two judges with one display name: tell them apart
                prefix = f"{prefix}_{fingerprint[:8]}"
            taken.add(prefix)
            plan.judges[fingerprint] = prefix
            plan.judge_labels[fingerprint] = f"{name} v{version}"
        return plan

    def schema(self) -> list[tuple[str, str]]:
        columns = list(FIXED)
        columns += [(column, "string") for column in self.annotators.values()]
        for prefix in self.judges.values():
            columns += [(f"{prefix}_{suffix}", kind) for suffix, _, kind in JUDGE_PARTS]
        columns += list(CLASSES)
        return columns

    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.schema())

    def describe(self) -> dict[str, Any]:
        """For the manifest: what the dynamic columns stand for."""
        return {
            "layout": "flat",
            "annotator_columns": dict(self.annotators),
            "judge_columns": {
                self.judge_labels[fp]: {
                    "fingerprint": fp,
                    "columns": [f"{prefix}_{suffix}" for suffix, _, _ in JUDGE_PARTS],
                }
                for fp, prefix in self.judges.items()
            },
            "classifier": self.classifier,
            "people_classes": "people_class_a/b: the classes people gave (empty until provided)",
        }
