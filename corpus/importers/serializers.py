"""Input and output of the import API. No logic: the services decide."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from corpus.importers.formats import FORMATS
from corpus.importers.selectors import import_job_status
from corpus.models import ImportJob


class ImportCreateInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS))
    dataset = serializers.SlugField(max_length=100)
    file = serializers.ListField(child=serializers.FileField(), min_length=1)
    answers = serializers.ListField(child=serializers.FileField(), required=False, default=list)
    questions = serializers.ListField(child=serializers.FileField(), required=False, default=list)
    baseline = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        spec = FORMATS[attrs["format"]]
        if not spec.side_files and (attrs.get("answers") or attrs.get("questions")):
            raise serializers.ValidationError(
                {"answers": f"the {spec.name} format takes no answers or questions files"}
            )
        if attrs.get("baseline") and spec.name != "arena-hard":
            raise serializers.ValidationError({"baseline": "a baseline is for arena-hard"})
        return attrs


class ImportJobOutput(serializers.ModelSerializer):
    dataset = serializers.SlugRelatedField(slug_field="name", read_only=True)
    rows_done = serializers.SerializerMethodField()
    rows_total = serializers.SerializerMethodField()
    percent = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "url",
            "dataset",
            "format",
            "filename",
            "file_sha256",
            "status",
            "rows_done",
            "rows_total",
            "percent",
            "counts",
            "errors",
            "created_at",
            "finished_at",
        ]

    def _status(self, job: ImportJob) -> dict[str, Any]:
        cache = self.context.setdefault("_status", {})
        if job.pk not in cache:
            cache[job.pk] = import_job_status(job)
        return cache[job.pk]

    def get_rows_done(self, job: ImportJob) -> int:
        return int(self._status(job)["rows_done"])

    def get_rows_total(self, job: ImportJob) -> int:
        return int(self._status(job)["rows_total"])

    def get_percent(self, job: ImportJob) -> int:
        return int(self._status(job)["percent"])

    def get_url(self, job: ImportJob) -> str:
        return reverse("api_import_detail", args=[job.pk])
