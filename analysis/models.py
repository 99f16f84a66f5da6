"""Computed figures, kept with the counts they came from so a trend can be drawn."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class MetricSnapshot(models.Model):
    audit = models.ForeignKey(
        "annotation.Audit",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="snapshots",
    )
    dataset = models.ForeignKey(
        "annotation.Dataset",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="snapshots",
    )
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
