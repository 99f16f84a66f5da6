from __future__ import annotations

from django.contrib import admin

from config.admin import HistoryAdmin
from judges import models


@admin.register(models.Judge)
class JudgeAdmin(HistoryAdmin):
    """A judge version is frozen; a change makes a new version through the judge services."""

    list_display = ["name", "version", "provider", "model_id", "fingerprint", "created_at"]
    list_filter = ["provider"]
    search_fields = ["name", "model_id", "fingerprint"]


@admin.register(models.Verdict)
class VerdictAdmin(HistoryAdmin):
    list_display = ["pair", "judge", "outcome", "consistent", "status_ab", "status_ba", "margin"]
    list_filter = ["judge", "status_ab", "status_ba", "outcome"]
    raw_id_fields = ["pair"]
    list_select_related = ["judge", "pair"]


@admin.register(models.JudgeRun)
class JudgeRunAdmin(HistoryAdmin):
    list_display = ["judge", "dataset", "scope", "status", "done", "total", "created_at"]


@admin.register(models.ResponseClassification)
class ResponseClassificationAdmin(HistoryAdmin):
    list_display = ["response", "label", "score", "classifier"]
    list_filter = ["label"]
    raw_id_fields = ["response"]


@admin.register(models.ResponseFeatures)
class ResponseFeaturesAdmin(HistoryAdmin):
    list_display = ["response", "length_chars", "length_tokens", "prompt_similarity"]
    raw_id_fields = ["response"]


@admin.register(models.ClassificationRun)
class ClassificationRunAdmin(HistoryAdmin):
    """Read-only: runs are started from the dataset page, the API or classify_responses."""

    list_display = ["dataset", "status", "done", "total", "classifier", "created_at"]
    list_filter = ["status"]
    list_select_related = ["dataset"]
