"""Computed figures, kept with the counts they came from so a trend can be drawn."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from analysis.snapshot import SnapshotCounts, SnapshotMetrics
    from annotation.models import Audit
    from corpus.models import Dataset

log = logging.getLogger(__name__)
_logged_unreadable: set[int] = set()  # snapshot ids already logged by this process


def _subject(model: str) -> Any:
    """What a snapshot is of: an audit or a dataset, never both (``snapshot_one_subject``)."""
    return models.ForeignKey(
        model, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots"
    )


class MetricSnapshot(models.Model):
    audit: models.ForeignKey[Audit | None, Audit | None] = _subject("annotation.Audit")
    dataset: models.ForeignKey[Dataset | None, Dataset | None] = _subject("corpus.Dataset")
    created_at = models.DateTimeField(auto_now_add=True)
    label_count = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict)  # items, labels, votes, verdicts it was computed from
    metrics = models.JSONField(default=dict)
    compute_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(audit__isnull=False) & Q(dataset__isnull=True))
                | (Q(audit__isnull=True) & Q(dataset__isnull=False)),
                name="snapshot_one_subject",
            ),
        ]
        indexes = [
            models.Index(fields=["audit", "-created_at"], name="snapshot_audit_latest"),
            models.Index(fields=["dataset", "-created_at"], name="snapshot_dataset_latest"),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.label_count} labels)"

    @cached_property
    def typed(self) -> SnapshotMetrics:
        """``metrics`` read as :class:`analysis.snapshot.SnapshotMetrics`; read once and kept
        (a snapshot is never edited: a change is a new snapshot). Figures older versions did
        not store are filled in where that is safe (``analysis.snapshot.metrics_read``);
        raises ``SnapshotUnreadable`` otherwise: check :attr:`stale_reason` first."""
        from analysis.snapshot import metrics_read  # pydantic only where snapshots are read

        return metrics_read(self.metrics)

    @cached_property
    def typed_counts(self) -> SnapshotCounts:
        """``counts`` read as :class:`analysis.snapshot.SnapshotCounts` (raises as ``typed``)."""
        from analysis.snapshot import counts_read

        return counts_read(self.counts)

    @cached_property
    def stale_reason(self) -> str | None:
        """Why this version cannot read the stored figures (stored by older code), or None.

        Such a snapshot is stale whatever its watermark: readers ask for a fresh one and show
        what they show while one is computed (``analysis.services.snapshot_readable``). Logged
        once per snapshot and process.
        """
        from analysis.snapshot import SnapshotUnreadable

        try:
            self.typed  # noqa: B018
            self.typed_counts  # noqa: B018
        except SnapshotUnreadable as exc:
            if self.pk not in _logged_unreadable:
                _logged_unreadable.add(self.pk)
                log.warning("snapshot %s is stale: %s; asking for a fresh one", self.pk, exc)
            return str(exc)
        return None


class Decision(models.Model):
    """A row a lead writes and nobody edits (a gate, a check of one): when, newest first.
    Each model names its own ``created_by`` (the reverse accessors differ)."""

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]


class ReleaseGate(Decision):
    """A lead's release rules for one judge on an audit, pinned to the judge's fingerprint.

    ``rules`` are kept as written (one-line strings in the syntax of
    :mod:`analysis.metrics.gate`). Gates are never edited: a change is a new row, so the
    latest row is the gate in force and the older ones record what was decided before.
    """

    audit = models.ForeignKey(
        "annotation.Audit", on_delete=models.CASCADE, related_name="release_gates"
    )
    judge = models.ForeignKey("judges.Judge", on_delete=models.PROTECT, related_name="gates")
    judge_fingerprint = models.CharField(max_length=64)
    rules = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="release_gates"
    )

    class Meta(Decision.Meta):
        indexes = [models.Index(fields=["audit", "-created_at"], name="gate_audit_latest")]

    def __str__(self) -> str:
        return f"gate {self.pk} on audit {self.audit_id} ({len(self.rules)} rules)"


class GateCheck(Decision):
    """A gate's rules checked for another version of its judge, recorded pinned to that
    version's fingerprint ("check these rules for v2" on the comparison page).

    A check does not move the gate: the gate in force stays pinned to the version the lead
    chose, and adopting v2 is writing a new gate for it. A check records what the rules said
    of v2 when it was asked (``result`` as ``gate --format json`` gives it), so a lead can
    show that v2 met v1's rules on the labels people had already given.
    """

    gate = models.ForeignKey(ReleaseGate, on_delete=models.CASCADE, related_name="checks")
    judge = models.ForeignKey("judges.Judge", on_delete=models.PROTECT, related_name="+")
    judge_fingerprint = models.CharField(max_length=64)
    baseline = models.ForeignKey(
        "judges.Judge", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=16)  # PASS, FAIL or INCONCLUSIVE
    result = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self) -> str:
        return f"check {self.pk} of gate {self.gate_id} for judge {self.judge_id}: {self.status}"
