"""Downloading an audit's calibration set: a page link for leads and an API endpoint.

Both stream the file as it is written (`analysis.export`), so a large audit never sits in
memory; the manifest's figures are in the command's `.manifest.json`, not in a download.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.request import Request
from rest_framework.views import APIView

from analysis.export import CONTENT_TYPES, FORMATS, export_chunks
from annotation.models import Audit
from annotation.roles import is_lead


def _download(audit: Audit, fmt: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        export_chunks(audit_ids=[audit.pk], fmt=fmt), content_type=CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{audit.pk}-calibration.{fmt}"'
    return response


@login_required
def audit_export(request: HttpRequest, pk: str, fmt: str) -> StreamingHttpResponse:
    if not is_lead(request.user):
        raise PermissionDenied("Exports are for leads.")
    audit = get_object_or_404(Audit, pk=pk)
    return _download(audit, fmt)


class FileFormatInput(serializers.Serializer):
    file_format = serializers.ChoiceField(choices=FORMATS, default="jsonl")


_Detail = inline_serializer("ExportError", fields={"detail": serializers.CharField()})


class AuditExportApi(APIView):
    """`GET /api/audits/<id>/export/?file_format=jsonl|csv|parquet` (leads)."""

    @extend_schema(
        operation_id="audit_export",
        summary="Download an audit's calibration set (generic import schema), streamed",
        parameters=[
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=list(FORMATS), default="jsonl")
        ],
        responses={
            (200, CONTENT_TYPES["jsonl"].split(";")[0]): OpenApiTypes.BINARY,
            (200, CONTENT_TYPES["csv"].split(";")[0]): OpenApiTypes.BINARY,
            (200, CONTENT_TYPES["parquet"]): OpenApiTypes.BINARY,
            400: OpenApiResponse(_Detail, description="unknown file_format"),
            403: OpenApiResponse(_Detail, description="not a lead"),
            404: OpenApiResponse(_Detail, description="no such audit"),
        },
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        if not is_lead(request.user):
            raise ApiPermissionDenied("Exports are for leads.")
        params = FileFormatInput(data=request.query_params)
        if not params.is_valid():
            raise ParseError(
                f"file_format: expected one of {', '.join(FORMATS)}, "
                f"got {request.query_params.get('file_format')!r}"
            )
        audit = get_object_or_404(Audit, pk=pk)
        return _download(audit, params.validated_data["file_format"])
