"""Small input and output serializers for the judges API. No logic: services decide."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from corpus.serializers import CategoryCountOutput, ModelCountOutput
from judges.core.config import (
    MAX_TOP_LOGPROBS,
    PARSE_MODES,
    PROVIDERS,
    SWAP_POLICIES,
    TIE_POLICIES,
)
from judges.models import ClassificationRun, Judge, JudgeRun
from judges.services import PRESET_ALIASES


class JudgeCreateInput(serializers.Serializer):
    """A judge version from a preset plus options; every field but name and model_id optional.

    ``config`` may instead carry a whole stored configuration (`Judge.config` of another
    version, edited); explicit fields then override it.
    """

    name = serializers.CharField(max_length=200)
    preset = serializers.ChoiceField(
        choices=[*PRESET_ALIASES, *PRESET_ALIASES.values()], required=False
    )
    config = serializers.DictField(required=False)
    provider = serializers.ChoiceField(choices=list(PROVIDERS), required=False)
    model_id = serializers.CharField(max_length=300, required=False)
    model_revision = serializers.CharField(max_length=200, required=False, allow_blank=True)
    base_url = serializers.CharField(max_length=500, required=False)
    api_key_env = serializers.CharField(max_length=128, required=False)
    template_system = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    template_user = serializers.CharField(required=False, trim_whitespace=False)
    rubric = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    tie_policy = serializers.ChoiceField(choices=list(TIE_POLICIES), required=False)
    swap_policy = serializers.ChoiceField(choices=list(SWAP_POLICIES), required=False)
    parse_mode = serializers.ChoiceField(choices=list(PARSE_MODES), required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
    seed = serializers.IntegerField(required=False, allow_null=True)
    max_tokens = serializers.IntegerField(min_value=1, required=False)
    top_logprobs = serializers.IntegerField(min_value=0, max_value=MAX_TOP_LOGPROBS, required=False)
    timeout_s = serializers.FloatField(min_value=0.001, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=20, required=False)
    requests_per_minute = serializers.FloatField(min_value=0.001, required=False)
    max_concurrency = serializers.IntegerField(min_value=1, max_value=256, required=False)
    system_in_user = serializers.BooleanField(required=False, default=False)
    tie_epsilon = serializers.FloatField(min_value=0, required=False)
    reference_field = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="key of the pair's meta (else the prompt's) holding a reference answer the "
        "judge is shown ({reference} in the template, or appended); hashed into the fingerprint",
    )

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
