"""Datasets of prompt/response pairs, the human votes imported with them, and the imports.

Every later stage reads these rows: judges give verdicts on pairs, audits select pairs for
people to label, reports compare them. Nothing here knows about those stages.

History is append-only where editing would falsify it: a vote is never edited in place;
datasets own their rows (CASCADE), while responses that pairs point at are PROTECTed.

The tables keep the names they had when these models lived in the annotation app
(`annotation_dataset`, ...): the move changed no table (see migrations/0001_initial.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from config.jobs import Job


class Outcome(models.TextChoices):
    """A pairwise preference in the pair's own labelling (A = response_a)."""

    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Dataset(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "annotation_dataset"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJob(Job):
    """One file imported into a dataset: its progress, outcome and counts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="imports")
    format = models.CharField(max_length=32)
    filename = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64, blank=True)
    upload = models.FileField(upload_to="imports/", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # rows created per table, failed parses
    errors = models.JSONField(default=list, blank=True)  # ["file:line: field: problem", ...]

    class Meta:
        db_table = "annotation_importjob"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rows_done__lte=F("rows_total")) | Q(rows_total=0),
                name="importjob_done_le_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.format}:{self.filename} → {self.dataset}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else 0


class Prompt(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField(blank=True)  # blank for verdict-only imports (no texts known)
    content_hash = models.CharField(max_length=64)
    source_key = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=100, blank=True)
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "annotation_prompt"
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "content_hash"], name="prompt_unique_per_dataset"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80] or f"prompt {self.source_key}"


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    model_name = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    has_text = models.BooleanField(default=True)
    content_hash = models.CharField(max_length=64)

    class Meta:
        db_table = "annotation_response"
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "model_name", "content_hash"], name="response_unique"
            ),
        ]
        # The pair browser's model filter (analysis.browse) finds a model's responses by it;
        # with the id in the index the look-up never reads the (wide) rows.
        indexes = [models.Index(fields=["model_name", "id"], name="response_model")]

    def __str__(self) -> str:
        return f"{self.model_name or '?'}: {self.text[:60]}"


class Pair(models.Model):
    """Two responses to one prompt, keyed by the source's own key within a dataset."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pairs")
    source_key = models.CharField(max_length=255)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    response_a = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="pairs_as_a")
    response_b = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="pairs_as_b")
    turn = models.PositiveSmallIntegerField(default=1)
    category = models.CharField(max_length=100, blank=True)
    content_hash = models.CharField(max_length=64)
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "annotation_pair"
        constraints = [
            models.UniqueConstraint(fields=["dataset", "source_key"], name="pair_key_unique"),
            models.CheckConstraint(condition=Q(turn__gte=1), name="pair_turn_positive"),
        ]
        indexes = [models.Index(fields=["dataset", "category"], name="pair_dataset_category")]

    def __str__(self) -> str:
        return f"{self.dataset}:{self.source_key}"


class HumanVote(models.Model):
    """A human preference that arrived with the data (not labelled in Tribunal)."""

    class Source(models.TextChoices):
        ARENA_USER = "arena_user", "Chatbot Arena user"
        PANDALM_ANNOTATOR = "pandalm_annotator", "PandaLM annotator"
        MTBENCH_EXPERT = "mtbench_expert", "MT-Bench expert"
        HH_RLHF = "hh_rlhf", "hh-rlhf crowdworker"
        LLMBAR = "llmbar", "LLMBar gold label"
        GENERIC = "generic", "Imported vote"
        CALIBRATION = "calibration", "Calibration-set label"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="human_votes")
    source = models.CharField(max_length=32, choices=Source.choices)
    voter_id = models.CharField(max_length=200)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    row_hash = models.CharField(max_length=64)
    import_job = models.ForeignKey(
        ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="votes"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "annotation_humanvote"
        constraints = [
            models.UniqueConstraint(fields=["pair", "row_hash"], name="humanvote_row_unique"),
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="humanvote_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__in=[1, 2]),
                name="humanvote_strength_valid",
            ),
        ]
        indexes = [models.Index(fields=["pair", "voter_id"], name="humanvote_pair_voter")]

    def __str__(self) -> str:
        return f"{self.voter_id} → {self.outcome} on {self.pair_id}"
