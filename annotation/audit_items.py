"""An audit's items as a list for its leads: each item's state, labels and adjudication.

An item's state is one word, the first that holds of:

1. `adjudicated`: a lead decided it;
2. `disagreement`: the labels that count give more than one answer;
3. `complete`: it has its k labels, all the same;
4. `held`: someone is labelling it now (an unexpired hold);
5. `partial`: some labels, fewer than k;
6. `unlabelled`.

"Labels that count" are those of annotators nobody set aside in this audit (what
`AuditItem.label_count` counts), gold items included: their labels are real answers even
though the figures leave them out. Audits hold hundreds to a few thousand items, so the
whole audit is read in four flat queries and filtered and paged here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from annotation.models import (
    Adjudication,
    AnnotatorExclusion,
    Assignment,
    Audit,
    AuditItem,
    Label,
)
from annotation.selectors import consensus

STATES = ("unlabelled", "held", "partial", "complete", "disagreement", "adjudicated")
STATE_NAMES = {
    "unlabelled": "Unlabelled",
    "held": "Held",
    "partial": "Partial",
    "complete": "Complete",
    "disagreement": "Disagreement",
    "adjudicated": "Adjudicated",
}
PAGE_SIZE = 50


def item_state(*, overlap_k: int, outcomes: Sequence[str], adjudicated: bool, held: bool) -> str:
    """The item's state (see the module docstring) from its counted labels' outcomes."""
    if adjudicated:
        return "adjudicated"
    if len(set(outcomes)) > 1:
        return "disagreement"
    if len(outcomes) >= overlap_k:
        return "complete"
    if held:
        return "held"
    return "partial" if outcomes else "unlabelled"


@dataclass
class ItemRow:
    id: int
    position: int
    stratum: str
    stratum_name: str
    pair_id: int
    source_key: str
    state: str = "unlabelled"
    outcomes: list[str] = field(default_factory=list)
    adjudication: dict[str, Any] | None = None

    @property
    def outcome_counts(self) -> list[tuple[str, int]]:
        return sorted(Counter(self.outcomes).items())

    @property
    def final(self) -> tuple[str | None, str]:
        """(final outcome, where from): the adjudication, else the strict majority."""
        if self.adjudication is not None:
            return self.adjudication["outcome"], "adjudication"
        majority = consensus(self.outcomes)
        return majority, "labels" if majority else "unresolved"


def audit_item_rows(audit: Audit) -> list[ItemRow]:
    """Every item of the audit in serving order, with its state, labels and adjudication."""
    items = AuditItem.objects.filter(audit=audit).order_by("position")
    stratum_names = dict(AuditItem._meta.get_field("stratum").choices or [])
    rows = {
        pk: ItemRow(
            id=pk,
            position=position,
            stratum=stratum,
            stratum_name=str(stratum_names.get(stratum, stratum)),
            pair_id=pair_id,
            source_key=source_key,
        )
        for pk, position, stratum, pair_id, source_key in items.values_list(
            "pk", "position", "stratum", "pair_id", "pair__source_key"
        )
    }
    set_aside = AnnotatorExclusion.objects.filter(audit=audit).values_list(
        "annotator_id", flat=True
    )
    outcomes: dict[int, list[str]] = defaultdict(list)
    for item_id, outcome in (
        Label.objects.filter(item__audit=audit)
        .exclude(annotator_id__in=set_aside)
        .order_by("created_at", "pk")
        .values_list("item_id", "outcome")
    ):
        outcomes[item_id].append(outcome)
    decided = {
        item_id: {"outcome": outcome, "lead": lead, "at": at}
        for item_id, outcome, lead, at in Adjudication.objects.filter(
            item__audit=audit
        ).values_list("item_id", "outcome", "lead__username", "created_at")
    }
    held = set(
        Assignment.objects.filter(
            item__audit=audit, status=Assignment.Status.HELD, expires_at__gt=timezone.now()
        ).values_list("item_id", flat=True)
    )
    for row in rows.values():
        row.outcomes = outcomes.get(row.id, [])
        row.adjudication = decided.get(row.id)
        row.state = item_state(
            overlap_k=audit.overlap_k,
            outcomes=row.outcomes,
            adjudicated=row.adjudication is not None,
            held=row.id in held,
        )
    return list(rows.values())


def state_counts(rows: Sequence[ItemRow]) -> list[tuple[str, str, int]]:
    """(state, its name, items in it) for every state, in STATES order."""
    counts = Counter(row.state for row in rows)
    return [(state, STATE_NAMES[state], counts.get(state, 0)) for state in STATES]
