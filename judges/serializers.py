"""Small input and output serializers for the judges API. No logic: services decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from corpus.serializers import CategoryCountOutput, ModelCountOutput
from judges.core.config import (
    CONFIG_FIELDS,
    JudgeConfig,
    JudgeConfigError,
    JudgeOptions,
    field_spec,
)
from judges.fields import api_field
from judges.models import ClassificationRun, Judge, JudgeRun
from judges.services import PRESET_ALIASES


class JudgeCreateInput(serializers.Serializer):
    """A judge version from a preset plus options; every field but name and model_id optional.

    ``config`` may instead carry a whole stored configuration (`Judge.config` of another
    version, edited); explicit fields then override it. Every `JudgeConfig` field is taken,
    built from its schema (`judges.fields`): the same bounds, defaults and help as the form's.
    """

    name = serializers.CharField(max_length=200)
    preset = serializers.ChoiceField(
        choices=[*PRESET_ALIASES, *PRESET_ALIASES.values()], required=False
    )
    config = serializers.DictField(required=False)
    system_in_user = api_field("system_in_user", JudgeOptions)
    tie_epsilon = api_field("tie_epsilon", JudgeOptions)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields.update({name: api_field(name) for name in CONFIG_FIELDS})
        return fields

    def validate_config(self, value: dict[str, Any]) -> dict[str, Any]:
        """Each key of ``config`` checked against the schema; an error is keyed by its path
        (``{"config": {"temperature": [...]}}``). None means "not given", as for the fields."""
        errors: dict[str, list[str]] = {}
        for name, item in value.items():
            if name not in CONFIG_FIELDS:
                errors[name] = ["unknown field"]
            elif item is not None:
                try:
                    field_spec(JudgeConfig, name).check(item)
                except JudgeConfigError as exc:
                    errors[name] = [exc.message]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("model_id") and not (attrs.get("config") or {}).get("model_id"):
            raise serializers.ValidationError({"model_id": "This field is required."})
        return attrs


class JudgeOutput(serializers.ModelSerializer):
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Judge
        fields = [
            "id",
            "name",
            "version",
            "fingerprint",
            "provider",
            "model_id",
            "model_revision",
            "template_name",
            "tie_policy",
            "swap_policy",
            "temperature",
            "seed",
            "max_tokens",
            "config",
            "created_at",
            "stats",
        ]

    def get_stats(self, judge: Judge) -> dict[str, Any] | None:
        stats = self.context.get("stats", {}).get(judge.pk)
        if stats is None:
            return None
        return {
            "verdicts": stats.verdicts,
            "orders_parsed": stats.orders_ok,
            "failed_parses": stats.orders_failed,
            "call_errors": stats.orders_error,
            "inconsistent": stats.inconsistent,
            "failed_parse_rate": stats.failed_parse_rate,
        }


# A run over an audit's items is asked for by the audit (annotation.api), which knows its pairs.
AUDIT_RUNS_MOVED = (
    "runs over an audit's items start from the audit: POST /api/audits/{audit}/judge-runs/ "
    'with {{"judge": <id>}}'
)


class JudgeRunInput(serializers.Serializer):
    dataset = serializers.SlugField(required=False, help_text="the dataset's name")
    limit = serializers.IntegerField(min_value=1, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "audit" in self.initial_data:
            raise serializers.ValidationError(
                {"audit": AUDIT_RUNS_MOVED.format(audit=self.initial_data["audit"])}
            )
        if "dataset" not in attrs:
            raise serializers.ValidationError({"dataset": "give a dataset name"})
        return attrs


class JudgeRunOutput(serializers.ModelSerializer):
    judge = serializers.CharField(source="judge.__str__", read_only=True)
    dataset = serializers.CharField(source="dataset.name", read_only=True)

    class Meta:
        model = JudgeRun
        fields = [
            "id",
            "judge_id",
            "judge",
            "dataset",
            "scope",
            "status",
            "total",
            "done",
            "counts",
            "error",
            "stop_requested",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ClassificationRunOutput(serializers.ModelSerializer):
    """A classification run; ``counts.classes`` is responses per class over the dataset for
    the run's classifier, once the run has loaded it."""

    dataset = serializers.CharField(source="dataset.name", read_only=True)

    class Meta:
        model = ClassificationRun
        fields = [
            "id",
            "dataset",
            "status",
            "total",
            "done",
            "classifier",
            "extractor",
            "counts",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


# --- datasets with their verdicts (the /api/datasets/ list and detail) -------------------------


class DatasetOutput(serializers.Serializer):
    name = serializers.SlugField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    pairs = serializers.IntegerField(source="pair_count")
    human_votes = serializers.IntegerField(source="vote_count", help_text="imported human votes")
    verdicts = serializers.IntegerField(source="verdict_count", help_text="judge verdicts")


class DatasetJudgeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    fingerprint = serializers.CharField()
    verdicts = serializers.IntegerField()


class DatasetDetailOutput(DatasetOutput):
    """A dataset with what an audit is built from: its categories, models and judges."""

    categories = CategoryCountOutput(many=True)
    models = ModelCountOutput(many=True)
    judges = DatasetJudgeOutput(many=True)
