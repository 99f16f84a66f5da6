from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from annotation import models


class HistoryAdmin(admin.ModelAdmin):
    """Read-only: these rows are evidence; editing them would falsify history."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at", "created_by"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "created_by"]


@admin.register(models.ImportJob)
class ImportJobAdmin(HistoryAdmin):
    list_display = ["filename", "format", "dataset", "status", "rows_done", "rows_total"]
    list_filter = ["status", "format"]


@admin.register(models.Prompt)
class PromptAdmin(HistoryAdmin):
    list_display = ["id", "dataset", "category", "source_key", "__str__"]
    list_filter = ["dataset"]
    search_fields = ["text", "source_key"]


@admin.register(models.Response)
class ResponseAdmin(HistoryAdmin):
    list_display = ["id", "model_name", "__str__"]
    search_fields = ["text", "model_name"]
    list_select_related = ["prompt"]
    raw_id_fields = ["prompt"]


class HumanVoteInline(admin.TabularInline):
    model = models.HumanVote
    extra = 0
    can_delete = False
    readonly_fields = ("source", "voter_id", "outcome", "strength", "import_job")
    fields = ("source", "voter_id", "outcome", "strength", "import_job")


@admin.register(models.Pair)
class PairAdmin(HistoryAdmin):
    list_display = ["source_key", "dataset", "category", "turn"]
    list_filter = ["dataset", "category"]
    search_fields = ["source_key"]
    raw_id_fields = ["prompt", "response_a", "response_b"]
    inlines = [HumanVoteInline]


@admin.register(models.HumanVote)
class HumanVoteAdmin(HistoryAdmin):
    list_display = ["pair", "source", "voter_id", "outcome", "strength"]
    list_filter = ["source", "outcome"]
    raw_id_fields = ["pair", "import_job"]


@admin.register(models.Audit)
class AuditAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "status", "target_size", "overlap_k", "created_at"]
    list_filter = ["status"]
    # The selection is frozen at creation; only the name, status and guidelines may change.
    readonly_fields = [
        "dataset",
        "created_by",
        "target_size",
        "overlap_k",
        "seed",
        "selection",
        "criteria",
        "allow_both_bad",
        "allow_strength",
    ]
    filter_horizontal = ["annotators"]


@admin.register(models.AuditItem)
class AuditItemAdmin(HistoryAdmin):
    list_display = ["audit", "position", "pair", "stratum", "inclusion_probability", "label_count"]
    list_filter = ["audit", "stratum"]
    raw_id_fields = ["pair"]


@admin.register(models.Assignment)
class AssignmentAdmin(HistoryAdmin):
    list_display = ["item", "annotator", "status", "a_on_left", "served_at", "expires_at"]
    list_filter = ["status"]


@admin.register(models.Label)
class LabelAdmin(HistoryAdmin):
    list_display = ["item", "annotator", "outcome", "strength", "time_spent_ms", "created_at"]
    list_filter = ["outcome"]


@admin.register(models.Adjudication)
class AdjudicationAdmin(HistoryAdmin):
    list_display = ["item", "lead", "outcome", "created_at"]
