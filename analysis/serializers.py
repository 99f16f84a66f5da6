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


class ReportModelOutput(serializers.Serializer[dict[str, Any]]):
    """The report model (analysis.report_model) of the latest snapshot: what the pages and
    ``manage.py report --format md`` show, section by section, without the charts."""

    subject = serializers.DictField()
    pending = serializers.BooleanField(help_text="a newer snapshot is scheduled or computing")
    snapshot = serializers.IntegerField(allow_null=True, help_text="the snapshot's id")
    report = serializers.DictField(allow_null=True)


class HistoryOutput(serializers.Serializer[dict[str, Any]]):
    subject = serializers.DictField()
    snapshots = TrendPointOutput(many=True)


class GateInput(serializers.Serializer[dict[str, Any]]):
    """A gate to store: the judge version it is about and its rules, one per string."""

    judge = serializers.IntegerField(
        help_text="judge id (a version); the gate pins its fingerprint"
    )
    rules = serializers.ListField(
        child=serializers.CharField(max_length=500),
        min_length=1,
        max_length=50,
        help_text="e.g. 'lower(cohen_kappa) >= 0.6 on each slice with n >= 30'",
    )


class GateCheckInput(serializers.Serializer[dict[str, Any]]):
    """A gate to check and not store, as ``manage.py gate AUDIT --judge NAME --rule ...``."""

    judge = serializers.CharField(
        max_length=200,
        help_text="judge name: the newest version of that name among the audit's judges",
    )
    rules = serializers.ListField(
        child=serializers.CharField(max_length=500),
        min_length=1,
        max_length=50,
        required=False,
        help_text="rules to check; without them the stored gate, which must be about this judge",
    )
    baseline = serializers.CharField(
        max_length=200,
        required=False,
        help_text="the judge drift rules compare against (named as judge is); default: the "
        "newest earlier version of the judge's name on the audit",
    )


class GateRuleOutput(serializers.Serializer[dict[str, Any]]):
    rule = serializers.CharField()
    status = serializers.ChoiceField(choices=["PASS", "FAIL", "INCONCLUSIVE"])
    reason = serializers.CharField()
    labels_needed = serializers.IntegerField(allow_null=True)
    slices = serializers.ListField(child=serializers.DictField())


class GateOutput(serializers.Serializer[dict[str, Any]]):
    """A gate's verdict: PASS / FAIL / INCONCLUSIVE with the reason, per rule and slice."""

    audit = serializers.IntegerField()
    gate = serializers.IntegerField(allow_null=True, help_text="the stored gate's id")
    status = serializers.ChoiceField(choices=["PASS", "FAIL", "INCONCLUSIVE"])
    exit_code = serializers.IntegerField(help_text="0 PASS, 1 FAIL, 2 INCONCLUSIVE")
    reason = serializers.CharField()
    labels_needed = serializers.IntegerField(allow_null=True)
    judge = serializers.DictField(allow_null=True, help_text="the judge version whose figures")
    pinned_fingerprint = serializers.CharField(allow_null=True)
    fingerprint = serializers.CharField(allow_null=True)
    snapshot = serializers.IntegerField(allow_null=True)
    rules = GateRuleOutput(many=True)
    baseline = serializers.DictField(
        required=False, help_text="the baseline judge of drift rules, when any was checked"
    )
