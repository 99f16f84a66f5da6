from __future__ import annotations

from django.contrib import admin

from analysis.models import MetricSnapshot, ReleaseGate
from config.admin import HistoryAdmin


@admin.register(MetricSnapshot)
class MetricSnapshotAdmin(HistoryAdmin):
    list_display = ["audit", "dataset", "label_count", "compute_ms", "created_at"]


@admin.register(ReleaseGate)
class ReleaseGateAdmin(HistoryAdmin):
    list_display = ["audit", "judge", "judge_fingerprint", "created_by", "created_at"]
