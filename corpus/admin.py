from __future__ import annotations

from django.contrib import admin

from config.admin import HistoryAdmin
from corpus import models


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
