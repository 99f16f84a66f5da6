"""Judges as pinned instruments, their verdicts, and what we measure of each response.

A Judge row is one *version*: its configuration is frozen and hashed into `fingerprint`.
Changing anything creates a new row; verdicts keep pointing at the version that made them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from config.jobs import Job
from corpus.models import Dataset, Outcome, Pair, Response


class Judge(models.Model):
    class Provider(models.TextChoices):
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible chat endpoint"
        TRANSFORMERS_REWARD = "transformers_reward", "Local reward model (transformers)"
        TRANSFORMERS_CAUSAL = "transformers_causal", "Local causal LM judge (transformers)"
        IMPORTED = "imported", "Imported verdicts"

    class TiePolicy(models.TextChoices):
        ALLOW_TIE = "allow_tie", "Ties allowed"
        FORCE_CHOICE = "force_choice", "Must pick a side"

    class SwapPolicy(models.TextChoices):
        BOTH = "both", "Both orders"
        AB_ONLY = "ab_only", "Original order only"

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    model_id = models.CharField(max_length=300)
    model_revision = models.CharField(max_length=200, blank=True)
    template_name = models.CharField(max_length=100, blank=True)
    prompt_template = models.TextField(blank=True)
    rubric = models.TextField(blank=True)
    tie_policy = models.CharField(
        max_length=16, choices=TiePolicy.choices, default=TiePolicy.ALLOW_TIE
    )
    swap_policy = models.CharField(max_length=16, choices=SwapPolicy.choices, default="both")
    temperature = models.FloatField(default=0.0)
    seed = models.BigIntegerField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(default=512)
    config = models.JSONField(default=dict, blank=True)  # the full pinned configuration
    fingerprint = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="judge_version_unique"),
            models.CheckConstraint(
                condition=Q(temperature__gte=0) & Q(temperature__lte=2),
                name="judge_temperature_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ParseStatus(models.TextChoices):
    OK = "ok", "Parsed"
    FAILED = "failed", "Failed parse"
    ERROR = "error", "Call failed"
    NOT_RUN = "not_run", "Not run"


class Verdict(models.Model):
    """One judge version's outcome on one pair, in both presentation orders.

    `outcome_ab` is the verdict with response A shown first; `outcome_ba` is the verdict with
    the sides swapped, already mapped back to the pair's labelling. `outcome` combines them:
    the common answer when they agree, a tie when they do not (MT-Bench's rule).
    """

    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="verdicts")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="verdicts")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, null=True, blank=True)
    consistent = models.BooleanField(null=True)  # None when only one order ran or parsed
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True)  # >0 favours A; score or logprob gap
    outcome_ab = models.CharField(max_length=16, choices=Outcome.choices, null=True, blank=True)
    outcome_ba = models.CharField(max_length=16, choices=Outcome.choices, null=True, blank=True)
    status_ab = models.CharField(max_length=16, choices=ParseStatus.choices, default="not_run")
    status_ba = models.CharField(max_length=16, choices=ParseStatus.choices, default="not_run")
    margin_ab = models.FloatField(null=True, blank=True)
    margin_ba = models.FloatField(null=True, blank=True)
    raw_ab = models.TextField(blank=True)
    raw_ba = models.TextField(blank=True)
    criteria_ab = models.JSONField(default=dict, blank=True)
    criteria_ba = models.JSONField(default=dict, blank=True)
    # Per order, what the call said beyond the outcome: its own strength and verdict token,
    # why a parse failed or a call errored, the margin's exactness, tokens used, latency.
    # {"ab": {...}, "ba": {...}}; the runner's cache reads it back (judges.services).
    order_details = models.JSONField(default=dict, blank=True)
    row_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["judge", "pair"], name="verdict_once_per_judge"),
            models.CheckConstraint(
                condition=Q(outcome__isnull=True) | Q(outcome__in=Outcome.values),
                name="verdict_outcome_valid",
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__in=[1, 2]),
                name="verdict_strength_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["pair", "judge"], name="verdict_pair_judge"),
            models.Index(fields=["judge", "status_ab"], name="verdict_judge_status"),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.pair_id}: {self.outcome}"


class JudgeRun(Job):
    """A judge run over a dataset's pairs, or over a chosen set of them (`pair_ids`, with a
    `scope` that says which, e.g. "audit 3"), with its progress and failure counts.

    The set is chosen by the caller (the annotation app passes an audit's pairs in serving
    order), so judges know nothing of audits."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        STOPPED = "stopped"

    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="judge_runs")
    # The pairs judged, in run order; None for every pair of the dataset (in import order).
    pair_ids = models.JSONField(null=True, blank=True)
    scope = models.CharField(max_length=200, blank=True)  # which pairs, for people: "audit 3"
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # calls, cache hits, failed parses...
    error = models.TextField(blank=True)
    stop_requested = models.BooleanField(default=False)  # polled by the running task
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.judge_id} on {self.dataset_id}: {self.status}"

    @property
    def target(self) -> str:
        """What the run judges, for people: "pandalm" or "pandalm · audit 3"."""
        name = self.dataset.name
        return f"{name} · {self.scope}" if self.scope else name


class ResponseClass(models.TextChoices):
    NORMAL = "normal", "Normal"
    ETHICAL_REFUSAL = "ethical_refusal", "Ethical refusal"
    ETHICAL_DISCLAIMER = "ethical_disclaimer", "Ethical disclaimer"
    TECHNICAL_REFUSAL = "technical_refusal", "Technical refusal"
    TECHNICAL_DISCLAIMER = "technical_disclaimer", "Technical disclaimer"


class ResponseClassification(models.Model):
    """A refusal class for a response, from one pinned classifier."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="classes")
    classifier = models.CharField(max_length=64)  # the classifier's fingerprint
    label = models.CharField(max_length=32, choices=ResponseClass.choices)
    score = models.FloatField()
    scores = models.JSONField(default=dict, blank=True)
    # P(the response declined), ethical or technical (judges.refusal.classifier), and the
    # head's `uncertain` rule: uncertain responses form their own audit stratum.
    refusal_probability = models.FloatField(null=True, blank=True)
    uncertain = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "classifier"], name="classification_once"),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=1), name="classification_score_range"
            ),
        ]
        indexes = [models.Index(fields=["classifier", "label"], name="classification_label")]

    def __str__(self) -> str:
        return f"{self.response_id}: {self.label} ({self.score:.2f})"


class ResponseFeatures(models.Model):
    """Text features of a response, from one pinned feature extractor."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="features")
    extractor = models.CharField(max_length=64)
    length_chars = models.PositiveIntegerField()
    length_tokens = models.PositiveIntegerField()
    headers = models.PositiveIntegerField(default=0)
    list_items = models.PositiveIntegerField(default=0)
    bold = models.PositiveIntegerField(default=0)
    prompt_similarity = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "extractor"], name="features_once"),
        ]

    def __str__(self) -> str:
        return f"{self.response_id}: {self.length_chars} chars"


class ClassificationRun(Job):
    """One pass of the refusal classifier and the text features over a dataset's responses.

    Only responses without a row for the classifier's (or the extractor's) fingerprint are
    computed, so `total` is the work this run found to do: a rerun over an unchanged dataset
    finishes at once with a total of 0. Written by `judges.classification`.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="classification_runs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)  # responses that needed work at the start
    done = models.PositiveIntegerField(default=0)
    classifier = models.CharField(max_length=64, blank=True)  # fingerprints, once loaded
    extractor = models.CharField(max_length=64, blank=True)
    # {"classes": {class: n over the dataset}, "classified": new rows, "featurised": ...}
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Touched by every progress write.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total")), name="classificationrun_done_le_total"
            ),
        ]
        indexes = [models.Index(fields=["dataset", "status"], name="classificationrun_status")]

    def __str__(self) -> str:
        return f"classification of {self.dataset_id}: {self.status}"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class ModelFamily(models.Model):
    """A lead's family for a model name, overriding the default read from the name
    (`judges.core.families.family_of`). Keyed by the name as responses carry it, so it holds
    for every dataset; a judge's model id is looked up here too when its judge has no
    `JudgeFamily`."""

    model_name = models.CharField(max_length=200, unique=True)
    family = models.CharField(max_length=64)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_name"]

    def __str__(self) -> str:
        return f"{self.model_name} → {self.family}"


class JudgeFamily(models.Model):
    """A lead's family for one judge version. Not part of the judge's configuration: the
    family says whose responses the judge might favour, it does not change a verdict, so
    setting it makes no new version and leaves the fingerprint alone."""

    judge = models.OneToOneField(Judge, on_delete=models.CASCADE, related_name="family_set")
    family = models.CharField(max_length=64)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.judge} → {self.family}"
