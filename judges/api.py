"""REST API for judges (mounted under /api/, leads only): versions, runs, run status,
classifying a dataset's responses (refusal class and text features), and the datasets with
their verdicts (/api/datasets/ and /api/datasets/<name>/: they show judges' data, so judges
serves them; a dataset's pairs are the corpus app's, `corpus.api`).

The same services as the pages and the commands.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import (
    BAD_QUERY,
    IsLead,
    django_errors,
    list_schema,
    paginated,
    query_params,
)
from corpus import selectors as corpus_selectors
from corpus.models import Dataset
from judges import classification, selectors, services
from judges.models import ClassificationRun, Judge, JudgeRun
from judges.serializers import (
    ClassificationRunOutput,
    DatasetDetailOutput,
    DatasetOutput,
    JudgeCreateInput,
    JudgeOutput,
    JudgeRunInput,
    JudgeRunOutput,
)

_BUILD_OPTIONS = ("preset", "config", "system_in_user", "tie_epsilon", "name")


class JudgeFilterInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class JudgeRunFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=JudgeRun.Status.choices,
        required=False,
        allow_blank=True,
        error_messages={
            "invalid_choice": '"{input}" is not a status; use ' + ", ".join(JudgeRun.Status.values)
        },
    )


def _judge_output(judge: Judge) -> dict[str, Any]:
    stats = {judge.pk: selectors.judge_stats(judge)}
    return dict(JudgeOutput(judge, context={"stats": stats}).data)


# --- Datasets with their verdicts --------------------------------------------------------------


@list_schema(
    DatasetOutput, "Datasets with their numbers of pairs, human votes and verdicts (leads)"
)
@api_view(["GET"])
@permission_classes([IsLead])
def datasets(request: Request) -> Response:
    rows = selectors.datasets_with_verdict_counts()
    return paginated(request, rows, lambda page: DatasetOutput(page, many=True).data)


@extend_schema(
    responses=DatasetDetailOutput,
    summary="One dataset: counts, categories, models and the judges with verdicts (leads)",
)
@api_view(["GET"])
@permission_classes([IsLead])
def dataset_detail(request: Request, name: str) -> Response:
    dataset = get_object_or_404(selectors.datasets_with_verdict_counts(), name=name)
    body = {
        "name": dataset.name,
        "description": dataset.description,
        "created_at": dataset.created_at,
        "pair_count": dataset.pair_count,  # type: ignore[attr-defined]
        "vote_count": dataset.vote_count,  # type: ignore[attr-defined]
        "verdict_count": dataset.verdict_count,  # type: ignore[attr-defined]
        "categories": corpus_selectors.dataset_categories(dataset),
        "models": corpus_selectors.dataset_models(dataset),
        "judges": selectors.dataset_judges(dataset),
    }
    return Response(DatasetDetailOutput(body).data)


# --- Judges -------------------------------------------------------------------------------------


@list_schema(
    JudgeOutput,
    "Judge versions, by name and newest version first",
    filters=JudgeFilterInput,
    methods=["GET"],
)
@extend_schema(
    methods=["POST"],
    request=JudgeCreateInput,
    responses={201: JudgeOutput, 200: JudgeOutput},
    summary="Create a judge version (200 with the existing one for a known configuration)",
)
@api_view(["GET", "POST"])
@permission_classes([IsLead])
def judges(request: Request) -> Response:
    if request.method == "GET":
        name = query_params(JudgeFilterInput, request).get("name")
        rows = [r for r in selectors.judge_list_with_stats() if not name or r.judge.name == name]
        stats = {row.judge.pk: row for row in rows}
        return paginated(
            request,
            [row.judge for row in rows],
            lambda page: JudgeOutput(page, many=True, context={"stats": stats}).data,
        )
    data_in = JudgeCreateInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    data = dict(data_in.validated_data)
    fields = {**data.get("config", {})}
    fields.update({k: v for k, v in data.items() if k not in _BUILD_OPTIONS})
    try:
        config = services.judge_config_build(
            preset_id=data.get("preset"),
            system_in_user=data.get("system_in_user", False),
            tie_epsilon=data.get("tie_epsilon"),
            **fields,
        )
        result = services.judge_version_get_or_create(config=config, name=data["name"])
    except DjangoValidationError as exc:
        return django_errors(exc)
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response(_judge_output(result.judge), status=code)


@extend_schema(responses=JudgeOutput, summary="One judge version with its verdict counts")
@api_view(["GET"])
@permission_classes([IsLead])
def judge_detail(request: Request, pk: int) -> Response:
    return Response(_judge_output(get_object_or_404(Judge, pk=pk)))


@list_schema(
    JudgeRunOutput, "This judge's runs, newest first", filters=JudgeRunFilterInput, methods=["GET"]
)
@extend_schema(
    methods=["POST"],
    request=JudgeRunInput,
    responses={202: JudgeRunOutput},
    summary="Start a run of this judge over a dataset",
    description="A run over an audit's items starts from the audit: "
    "POST /api/audits/{id}/judge-runs/.",
)
@api_view(["GET", "POST"])
@permission_classes([IsLead])
def judge_runs(request: Request, pk: int) -> Response:
    judge = get_object_or_404(Judge, pk=pk)
    if request.method == "GET":
        wanted = query_params(JudgeRunFilterInput, request).get("status")
        runs = JudgeRun.objects.filter(judge=judge).select_related("judge", "dataset")
        if wanted:
            runs = runs.filter(status=wanted)
        runs = runs.order_by("-created_at", "-pk")
        return paginated(request, runs, lambda page: JudgeRunOutput(page, many=True).data)
    data_in = JudgeRunInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    data = data_in.validated_data
    dataset = Dataset.objects.filter(name=data["dataset"]).first()
    if dataset is None:
        return Response(
            {"dataset": [f"no dataset named {data['dataset']!r}"]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    try:
        run = services.judge_run_start(
            judge=judge, dataset=dataset, limit=data.get("limit"), created_by=request.user
        )
    except DjangoValidationError as exc:
        return django_errors(exc)
    run.refresh_from_db()
    return Response(JudgeRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=JudgeRunOutput, summary="A run's status, progress and counts")
@api_view(["GET"])
@permission_classes([IsLead])
def judge_run_detail(request: Request, pk: int) -> Response:
    run = get_object_or_404(JudgeRun.objects.select_related("judge", "dataset"), pk=pk)
    return Response(JudgeRunOutput(run).data)


@extend_schema(request=None, responses=JudgeRunOutput, summary="Ask a run to stop")
@api_view(["POST"])
@permission_classes([IsLead])
def judge_run_stop(request: Request, pk: int) -> Response:
    run = services.judge_run_stop(run=get_object_or_404(JudgeRun, pk=pk))
    run = JudgeRun.objects.select_related("judge", "dataset").get(pk=run.pk)
    return Response(JudgeRunOutput(run).data)


@extend_schema(
    request=None,
    responses={202: ClassificationRunOutput},
    summary="Classify a dataset's responses (refusal class and text features)",
    description="Queues a run over the responses not yet done with the configured classifier "
    "and returns it; when a run is already classifying this dataset, returns that run. "
    "400 when the dataset has no response texts; 503 when the installation's refusal "
    "classifier settings are unusable.",
)
@api_view(["POST"])
@permission_classes([IsLead])
def dataset_classify(request: Request, name: str) -> Response:
    dataset = get_object_or_404(Dataset, name=name)
    try:
        run, _ = classification.classification_run_start(dataset=dataset, created_by=request.user)
    except DjangoValidationError as exc:
        return django_errors(exc)
    except classification.RefusalClassifierConfigError as exc:
        return Response(
            {"detail": f"the refusal classifier is not usable: {exc}"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    run = ClassificationRun.objects.select_related("dataset").get(pk=run.pk)
    return Response(ClassificationRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    responses=ClassificationRunOutput, summary="A classification run's status, progress, counts"
)
@api_view(["GET"])
@permission_classes([IsLead])
def classification_run_detail(request: Request, pk: int) -> Response:
    run = get_object_or_404(ClassificationRun.objects.select_related("dataset"), pk=pk)
    return Response(ClassificationRunOutput(run).data)


# --- model families -----------------------------------------------------------------------------


class FamilyInput(serializers.Serializer):
    """Families to set: model name -> family, judge id -> family; a blank family clears the
    lead's choice (the default read from the name applies again)."""

    models = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=64), required=False
    )
    judges = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=64), required=False
    )

    def validate_judges(self, value: dict[str, str]) -> dict[int, str]:
        out = {}
        for key, family in value.items():
            if not str(key).isdigit():
                raise serializers.ValidationError(f"{key!r} is not a judge id (a number)")
            out[int(key)] = family
        return out


class FamilyRowOutput(serializers.Serializer):
    family = serializers.CharField(allow_null=True)
    default = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True, help_text='"lead", "default" or null')


class ModelFamilyOutput(FamilyRowOutput):
    model = serializers.CharField()
    responses = serializers.IntegerField()


class JudgeFamilyOutput(FamilyRowOutput):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    model_id = serializers.CharField()


class FamiliesOutput(serializers.Serializer):
    models = ModelFamilyOutput(many=True)
    judges = JudgeFamilyOutput(many=True)


@extend_schema(
    methods=["GET"],
    responses=FamiliesOutput,
    summary="The families of a dataset's models and of the judges with verdicts on it (leads)",
)
@extend_schema(
    methods=["PATCH"],
    request=FamilyInput,
    responses={200: FamiliesOutput, 400: BAD_QUERY},
    summary="Set or clear families (blank = the default from the name); all or nothing",
)
@api_view(["GET", "PATCH"])
@permission_classes([IsLead])
def dataset_families(request: Request, name: str) -> Response:
    dataset = get_object_or_404(Dataset, name=name)
    if request.method == "PATCH":
        body = FamilyInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            services.families_update(
                models=body.validated_data.get("models", {}),
                judges=body.validated_data.get("judges", {}),
                user=request.user,
            )
        except DjangoValidationError as exc:
            return django_errors(exc)
    return Response(FamiliesOutput(selectors.dataset_families(dataset)).data)


urlpatterns: list[URLPattern | URLResolver] = [
    path("datasets/", datasets, name="api-datasets"),
    path("datasets/<slug:name>/", dataset_detail, name="api-dataset-detail"),
    path("judges/", judges, name="api-judges"),
    path("judges/<int:pk>/", judge_detail, name="api-judge-detail"),
    path("judges/<int:pk>/runs/", judge_runs, name="api-judge-runs"),
    path("judge-runs/<int:pk>/", judge_run_detail, name="api-judge-run-detail"),
    path("judge-runs/<int:pk>/stop/", judge_run_stop, name="api-judge-run-stop"),
    path("datasets/<slug:name>/families/", dataset_families, name="api-dataset-families"),
    path("datasets/<slug:name>/classify/", dataset_classify, name="api-dataset-classify"),
    path(
        "classification-runs/<int:pk>/",
        classification_run_detail,
        name="api-classification-run-detail",
    ),
]
