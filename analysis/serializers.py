"""Output shapes of the report API (and of ``manage.py report --format json``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analysis.models import MetricSnapshot


class SnapshotOutput(serializers.ModelSerializer[MetricSnapshot]):
    """A snapshot with every figure: ``metrics`` as stored (see analysis.services)."""

    class Meta:
        model = MetricSnapshot
        fields = ["id", "created_at", "label_count", "compute_ms", "counts", "metrics"]
        read_only_fields = fields


class TrendPointOutput(serializers.Serializer[dict[str, Any]]):
    """One snapshot's headline figures: what a trend line is drawn from."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    label_count = serializers.IntegerField()
    names = serializers.DictField(child=serializers.CharField(), required=False)
    judges = serializers.DictField(required=False)
    ceiling = serializers.DictField(required=False)


class ReportOutput(serializers.Serializer[dict[str, Any]]):
    subject = serializers.DictField()
    pending = serializers.BooleanField(help_text="a newer snapshot is scheduled or computing")
    snapshot = SnapshotOutput(allow_null=True)


class HistoryOutput(serializers.Serializer[dict[str, Any]]):
    subject = serializers.DictField()
    snapshots = TrendPointOutput(many=True)
