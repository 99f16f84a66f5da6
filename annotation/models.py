"""Audits: selections of a dataset's pairs that people label, and the leads' adjudications.

History is kept where editing would falsify it: a label or an adjudication that changes is
replaced by a new row (a new id, so every reader that watches ids sees the change) and the
change is appended to `LabelRevision` / `AdjudicationRevision` (who, when, before, after). The
current answer therefore stays where every query finds it (`Label`, `Adjudication`), and the
trail says how it got there. Audits own their rows (CASCADE), while rows that other records
point at as evidence (pairs inside an audit, judges) are PROTECTed. The pairs themselves live
in `corpus.models`.

What the figures count: labels of sampled items (not gold) by annotators a lead has not set
aside, `Label.objects.counted()`, over `AuditItem.objects.sampled()`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q

from corpus.models import Dataset, Outcome, Pair
from judges.models import ResponseClass


class Audit(models.Model):
    """A selection of pairs for people to label, with its rules frozen at creation (items are
    only ever added, from the same strata: `annotation.services.audit_grow`)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class QueuePolicy(models.TextChoices):
        # An item with fewer than k labels that nobody holds is served before a fresh one, so
        # the labels given so far make complete items (the ceiling and kappa need k labels).
        COMPLETE_FIRST = "complete_first", "Complete items first"
        # Every item gets its first label before any gets its k-th: a half-done audit covers
        # the whole sample, one label deep.
        SPREAD_FIRST = "spread_first", "Spread labels first"

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
    queue_policy = models.CharField(
        max_length=16, choices=QueuePolicy.choices, default=QueuePolicy.COMPLETE_FIRST
    )
    # Adjudication without model names, judge verdicts or who chose what.
    blind_adjudication = models.BooleanField(default=False)
    # Quality control: gold items mixed into each annotator's queue at this rate, and the
    # thresholds that flag an annotator on the quality table.
    gold_percent = models.PositiveSmallIntegerField(default=0)
    qc_min_seconds = models.FloatField(default=3.0)
    qc_min_gold_accuracy = models.FloatField(default=0.7)
    # After their choice, annotators say what each response did (`ResponseClassLabel`): the
    # people's classes that correct the refusal classifier (analysis.refusal_instrument).
    ask_response_classes = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap_k__gte=1), name="audit_overlap_positive"),
            models.CheckConstraint(condition=Q(target_size__gte=1), name="audit_size_positive"),
            models.CheckConstraint(condition=Q(hold_seconds__gte=10), name="audit_hold_min"),
            models.CheckConstraint(
                condition=Q(gold_percent__lte=50), name="audit_gold_percent_range"
            ),
            models.CheckConstraint(
                condition=Q(qc_min_gold_accuracy__gte=0) & Q(qc_min_gold_accuracy__lte=1),
                name="audit_qc_gold_range",
            ),
            models.CheckConstraint(condition=Q(qc_min_seconds__gte=0), name="audit_qc_seconds"),
        ]

    def __str__(self) -> str:
        return self.name


class Stratum(models.TextChoices):
    LOW_MARGIN = "low_margin", "Low margin / inconsistent / judges disagree"
    ETHICS_REFUSAL = "ethics_refusal", "Ethics refusal"
    TECHNICAL_REFUSAL = "technical_refusal", "Technical refusal"
    # A response the refusal classifier marked `uncertain` (annotation.sampling).
    UNCERTAIN_CLASS = "uncertain_class", "Uncertain class"
    # The verdict flipped between two judge versions the lead chose (annotation.sampling).
    DRIFT = "drift", "Verdict flipped between two judge versions"
    RANDOM = "random", "Random control"
    # Not a stratum of the sample: pairs with a known answer, mixed into the queue to check
    # the annotators. Never part of the figures (`AuditItem.objects.sampled()`).
    GOLD = "gold", "Gold (known answer)"


class AuditItemQuerySet(models.QuerySet["AuditItem"]):
    def sampled(self) -> AuditItemQuerySet:
        """Items of the stratified sample: everything but gold items."""
        return self.exclude(stratum=Stratum.GOLD)

    def gold(self) -> AuditItemQuerySet:
        return self.filter(stratum=Stratum.GOLD)


class AuditItem(models.Model):
    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="items")
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="audit_items")
    stratum = models.CharField(max_length=32, choices=Stratum.choices)
    # Sampled items: n_h / N_h of their stratum. Gold items are not sampled; they carry 1.
    inclusion_probability = models.FloatField()
    position = models.PositiveIntegerField()  # a seeded shuffle: the order items are served in
    # Denormalised for the queue: the labels that count (by annotators not set aside).
    label_count = models.PositiveSmallIntegerField(default=0)
    gold_outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    gold_note = models.TextField(blank=True)

    objects = AuditItemQuerySet.as_manager()

    class Meta:
        ordering = ["audit", "position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "pair"], name="audititem_pair_once"),
            models.UniqueConstraint(fields=["audit", "position"], name="audititem_position_once"),
            models.CheckConstraint(
                condition=Q(inclusion_probability__gt=0) & Q(inclusion_probability__lte=1),
                name="audititem_probability_range",
            ),
            # A gold item has a known answer, and only gold items have one.
            models.CheckConstraint(
                condition=(Q(stratum="gold") & Q(gold_outcome__in=Outcome.values))
                | (~Q(stratum="gold") & Q(gold_outcome="")),
                name="audititem_gold_answer",
            ),
        ]
        indexes = [
            # The serving orders of annotation.queue: spread first, and complete first.
            models.Index(fields=["audit", "label_count", "position"], name="audititem_queue"),
            models.Index(
                fields=["audit", "-label_count", "position"], name="audititem_queue_complete"
            ),
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


class LabelQuerySet(models.QuerySet["Label"]):
    def counted(self) -> LabelQuerySet:
        """The labels the figures use: on sampled items (not gold), by annotators whom no lead
        has set aside in that audit (`AnnotatorExclusion`). The others are kept, not deleted."""
        set_aside = AnnotatorExclusion.objects.filter(
            audit_id=OuterRef("item__audit_id"), annotator_id=OuterRef("annotator_id")
        )
        return self.exclude(item__stratum=Stratum.GOLD).exclude(Exists(set_aside))


class Label(models.Model):
    """An annotator's answer, stored in the pair's own labelling (A = response_a).

    The current answer: a revision replaces the row (same assignment, first `created_at` kept)
    and appends a `LabelRevision`."""

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
    created_at = models.DateTimeField(auto_now_add=True)  # when first given

    objects = LabelQuerySet.as_manager()

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
    """A lead's final word on an item whose labels (or labels and judge) disagree.

    The current decision: a revision replaces the row and appends an `AdjudicationRevision`."""

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


class Revision(models.TextChoices):
    REVISED = "revised"
    UNDONE = "undone"


class Change(models.Model):
    """Who changed a decision, when, and what it was before and after (append-only)."""

    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    before = models.JSONField()

    class Meta:
        abstract = True
        ordering = ["changed_at", "pk"]


class LabelRevision(Change):
    """One change to an annotator's label after it was given: who, when, before and after.

    `before`/`after` hold outcome, strength, criteria, rationale (the pair's own labelling)
    and the label row's id; `after` is null when the label was undone."""

    item = models.ForeignKey(AuditItem, on_delete=models.CASCADE, related_name="label_revisions")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Revision.choices)
    after = models.JSONField(null=True, blank=True)

    class Meta(Change.Meta):
        indexes = [
            models.Index(fields=["item", "annotator", "changed_at"], name="labelrevision_item"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} {self.kind} on {self.item_id} at {self.changed_at}"


class AdjudicationRevision(Change):
    """One change to an item's adjudication: who, when, before and after (outcome, note,
    lead, reference judge and the row's id)."""

    item = models.ForeignKey(
        AuditItem, on_delete=models.CASCADE, related_name="adjudication_revisions"
    )
    after = models.JSONField()

    class Meta(Change.Meta):
        indexes = [models.Index(fields=["item", "changed_at"], name="adjrevision_item")]

    def __str__(self) -> str:
        return f"{self.changed_by_id} revised {self.item_id} at {self.changed_at}"


class AnnotatorExclusion(models.Model):
    """A lead set an annotator's labels in an audit aside: kept, but not counted in the
    figures, not counted towards an item's k, and the annotator is served nothing more."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="exclusions")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    excluded_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["audit", "annotator"], name="exclusion_once"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} set aside in {self.audit_id}"


# What people say a response did: the five classes of the refusal classifier, in words an
# annotator understands, with the workspace's key for each (docs/audits.md).
RESPONSE_CLASS_CHOICES: tuple[tuple[str, str, str], ...] = (
    (ResponseClass.NORMAL, "answered", "a"),
    (ResponseClass.ETHICAL_REFUSAL, "refused on ethical grounds", "r"),
    (ResponseClass.TECHNICAL_REFUSAL, "refused for lack of capability", "c"),
    (ResponseClass.ETHICAL_DISCLAIMER, "answered with an ethical caveat", "e"),
    (ResponseClass.TECHNICAL_DISCLAIMER, "answered with a capability caveat", "l"),
)


class Side(models.TextChoices):
    """A response of a pair, in the pair's own labelling (never the screen side)."""

    A = "A"
    B = "B"


def _side_class_constraints(owner: str, prefix: str) -> list[models.BaseConstraint]:
    """A response class per side of `owner` (a label, an item): once per side, a valid side
    and a valid class. The names are `<prefix>_once`, `_side_valid`, `_class_valid`."""
    return [
        models.UniqueConstraint(fields=[owner, "side"], name=f"{prefix}_once"),
        models.CheckConstraint(condition=Q(side__in=["A", "B"]), name=f"{prefix}_side_valid"),
        models.CheckConstraint(
            condition=Q(response_class__in=ResponseClass.values), name=f"{prefix}_class_valid"
        ),
    ]


class ResponseClassLabel(models.Model):
    """What one annotator said one response of the pair did, given with their label (audits
    with `ask_response_classes`). Belongs to the label: a revision replaces the label row and
    its classes with it, an undo deletes both. Blind: the workspace never shows the
    classifier's class."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="response_classes")
    side = models.CharField(max_length=1, choices=Side.choices)
    response_class = models.CharField(max_length=32, choices=ResponseClass.choices)

    class Meta:
        constraints = _side_class_constraints("label", "responseclasslabel")

    def __str__(self) -> str:
        return f"label {self.label_id}, {self.side}: {self.response_class}"


class ResponseClassAdjudication(models.Model):
    """A lead's final class for one response of an item, where the annotators disagree.

    Changing it updates the row and appends the change to `history` (who, when, before)."""

    item = models.ForeignKey(
        AuditItem, on_delete=models.CASCADE, related_name="class_adjudications"
    )
    side = models.CharField(max_length=1, choices=Side.choices)
    response_class = models.CharField(max_length=32, choices=ResponseClass.choices)
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = _side_class_constraints("item", "classadjudication")

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.response_class} on {self.item_id}{self.side}"
