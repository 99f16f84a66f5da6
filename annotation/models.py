"""Audits: selections of a dataset's pairs that people label, and the leads' adjudications.

History is append-only where editing would falsify it: a label or an adjudication is never
edited in place; audits own their rows (CASCADE), while rows that other records point at as
evidence (pairs inside an audit, judges) are PROTECTed. The pairs themselves live in
`corpus.models`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from corpus.models import Dataset, Outcome, Pair


class Audit(models.Model):
    """A selection of pairs for people to label, with its rules frozen at creation."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="audits")
    judges = models.ManyToManyField("judges.Judge", blank=True, related_name="audits")
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="audits_assigned"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audits_created"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    target_size = models.PositiveIntegerField()
    overlap_k = models.PositiveSmallIntegerField(default=2)
    allow_both_bad = models.BooleanField(default=False)
    allow_strength = models.BooleanField(default=False)
    criteria = models.JSONField(default=list, blank=True)  # criterion names, optional choices
    guidelines = models.TextField(blank=True)
    seed = models.BigIntegerField(default=0)
    selection = models.JSONField(default=dict, blank=True)  # strata quotas and thresholds
    hold_seconds = models.PositiveIntegerField(default=600)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="audit_overlap_positive"),
            models.CheckConstraint(condition=Q(target_size__gte=1), name="audit_size_positive"),
            models.CheckConstraint(condition=Q(hold_seconds__gte=10), name="audit_hold_min"),
        ]

    def __str__(self) -> str:
        return self.name


class Stratum(models.TextChoices):
    LOW_MARGIN = "low_margin", "Low margin / inconsistent / judges disagree"
    ETHICS_REFUSAL = "ethics_refusal", "Ethics refusal"
    TECHNICAL_REFUSAL = "technical_refusal", "Technical refusal"
    RANDOM = "random", "Random control"


class AuditItem(models.Model):
    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="audit_items")
    stratum = models.CharField(max_length=32, choices=Stratum.choices)
    inclusion_probability = models.FloatField()
    position = models.PositiveIntegerField()  # a seeded shuffle: the order items are served in
    label_count = models.PositiveSmallIntegerField(default=0)  # denormalised for the queue

    class Meta:
        ordering = ["audit", "position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "pair"], name="audititem_pair_once"),
            models.UniqueConstraint(fields=["audit", "position"], name="audititem_position_once"),
            models.CheckConstraint(
                condition=Q(inclusion_probability__gt=0) & Q(inclusion_probability__lte=1),
                name="audititem_probability_range",
            ),
        ]
        indexes = [
            models.Index(fields=["audit", "label_count", "position"], name="audititem_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.audit_id}#{self.position}"


class Assignment(models.Model):
    """An item served to one annotator: the side order they saw and how long they hold it."""

    class Status(models.TextChoices):
        HELD = "held"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"

    item = models.ForeignKey(AuditItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    a_on_left = models.BooleanField()  # randomised per assignment and stored
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.HELD)
    served_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once"),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("served_at")), name="assignment_expiry_after_serve"
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="assignment_annotator_status"),
            models.Index(fields=["item", "status", "expires_at"], name="assignment_item_hold"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} holds {self.item_id} ({self.status})"


class Label(models.Model):
    """An annotator's answer, stored in the pair's own labelling (A = response_a)."""

    item = models.ForeignKey(AuditItem, on_delete=models.CASCADE, related_name="labels")
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="label")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    chose_left = models.BooleanField(null=True)  # None for tie/both bad
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    criteria = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    submission_key = models.UUIDField(unique=True)  # idempotency: a retried submit is one label
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="label_once_per_annotator"),
            models.CheckConstraint(condition=Q(outcome__in=Outcome.values), name="label_valid"),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__in=[1, 2]),
                name="label_strength_valid",
            ),
        ]
        indexes = [models.Index(fields=["annotator", "created_at"], name="label_annotator_time")]

    def __str__(self) -> str:
        return f"{self.annotator_id} → {self.outcome} on {self.item_id}"


class Adjudication(models.Model):
    """A lead's final word on an item whose labels (or labels and judge) disagree."""

    item = models.OneToOneField(AuditItem, on_delete=models.CASCADE, related_name="adjudication")
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    note = models.TextField(blank=True)
    reference_judge = models.ForeignKey(
        "judges.Judge", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="adjudication_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.outcome} on {self.item_id}"
