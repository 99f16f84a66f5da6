from __future__ import annotations

from django.contrib import admin

from analysis.models import MetricSnapshot
from annotation.admin import HistoryAdmin


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(HistoryAdmin):
    list_display = ["audit", "dataset", "label_count", "compute_ms", "created_at"]
