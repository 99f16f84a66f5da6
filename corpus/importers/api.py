"""Import API (mounted at /api/imports/): POST files to import, GET a job's status.

POST answers 202 with the job (a list of jobs when several `file` parts were sent); the import
runs after the request, so poll the job's `url` until `status` is `done` or `failed`. GET lists
the imports, newest first, paginated and filtered by `?dataset=` and `?status=` (see
config.api for the paging headers).

    curl -H "Authorization: Token $TOKEN" -F format=pandalm -F dataset=pandalm \
         -F file=@testset-v1.json https://tribunal.example/api/imports/
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import IsLead, list_schema, paginated, query_params
from corpus.importers.serializers import ImportCreateInput, ImportJobOutput
from corpus.importers.services import ImportRequestError, import_jobs_create
from corpus.models import ImportJob


class ImportFilterInput(serializers.Serializer):
    dataset = serializers.SlugField(required=False, allow_blank=True, help_text="dataset name")
    status = serializers.ChoiceField(
        choices=ImportJob.Status.choices,
        required=False,
        allow_blank=True,
        error_messages={
            "invalid_choice": '"{input}" is not a status; use '
            + " or ".join(ImportJob.Status.values)
        },
    )


@list_schema(
    ImportJobOutput, "Imports, newest first (leads)", filters=ImportFilterInput, methods=["GET"]
)
@extend_schema(
    methods=["POST"],
    request={"multipart/form-data": ImportCreateInput},
    responses={202: ImportJobOutput},
    summary="Upload files to import (leads)",
    description="One `file` part returns its job; several `file` parts (imported in one go, "
    "files that create pairs first) return the list of their jobs.",
)
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser])
@permission_classes([IsLead])
def import_collection(request: Request) -> Response:
    if request.method == "GET":
        filters = query_params(ImportFilterInput, request)
        listed = ImportJob.objects.select_related("dataset").order_by("-created_at", "-pk")
        if filters.get("dataset"):
            listed = listed.filter(dataset__name=filters["dataset"])
        if filters.get("status"):
            listed = listed.filter(status=filters["status"])
        return paginated(request, listed, lambda page: ImportJobOutput(page, many=True).data)
    source = {
        "format": request.data.get("format"),
        "dataset": request.data.get("dataset"),
        "file": request.FILES.getlist("file"),
        "answers": request.FILES.getlist("answers"),
        "questions": request.FILES.getlist("questions"),
        "baseline": request.data.get("baseline", ""),
    }
    serializer = ImportCreateInput(data=source)
    serializer.is_valid(raise_exception=True)
    values = serializer.validated_data
    try:
        jobs = import_jobs_create(
            dataset_name=values["dataset"],
            fmt=values["format"],
            files=values["file"],
            answers=values["answers"],
            questions=values["questions"],
            baseline=values["baseline"],
            user=request.user,
        )
    except ImportRequestError as exc:
        raise ValidationError({"detail": str(exc)}) from exc
    fresh = list(
        ImportJob.objects.filter(pk__in=[job.pk for job in jobs]).select_related("dataset")
    )
    if len(fresh) == 1:  # one file, one job
        return Response(ImportJobOutput(fresh[0]).data, status=status.HTTP_202_ACCEPTED)
    return Response(ImportJobOutput(fresh, many=True).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=ImportJobOutput, summary="One import's status, progress and errors")
@api_view(["GET"])
@permission_classes([IsLead])
def import_detail(request: Request, pk: int) -> Response:
    job = get_object_or_404(ImportJob.objects.select_related("dataset"), pk=pk)
    return Response(ImportJobOutput(job).data)


urlpatterns = [
    path("", import_collection, name="api_import_collection"),
    path("<int:pk>/", import_detail, name="api_import_detail"),
]
