from __future__ import annotations

from django.contrib import admin

from annotation import models
from config.admin import HistoryAdmin


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
    list_display = [
        "audit",
        "position",
        "pair",
        "stratum",
        "inclusion_probability",
        "label_count",
        "gold_outcome",
    ]
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


@admin.register(models.LabelRevision)
class LabelRevisionAdmin(HistoryAdmin):
    list_display = ["item", "annotator", "kind", "changed_by", "changed_at"]
    list_filter = ["kind"]


@admin.register(models.AdjudicationRevision)
class AdjudicationRevisionAdmin(HistoryAdmin):
    list_display = ["item", "changed_by", "changed_at"]


@admin.register(models.AnnotatorExclusion)
class AnnotatorExclusionAdmin(HistoryAdmin):
    list_display = ["audit", "annotator", "excluded_by", "excluded_at", "reason"]
