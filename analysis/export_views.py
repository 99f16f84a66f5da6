"""Downloading calibration sets: a page link for leads and API endpoints.

- `GET /api/audits/<id>/export/?file_format=` one audit;
- `GET /api/exports/?audit=1&audit=2&file_format=` several audits (a pair in two audits is one
  row, keys qualified by dataset when the audits' datasets differ), as the command does;
- `GET /api/exports/manifest/?audit=...&file_format=` the manifest of that same download
  (counts, judge fingerprints, tie policy, the data file's sha256, Tribunal version), computed
  by writing the file through a hash without keeping it: compare its sha256 with the bytes you
  downloaded (the same data gives the same bytes).

Downloads stream the file as it is written (`analysis.export`), so a large audit never sits in
memory. Leads only.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

from django.contrib.auth.decorators import login_required
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
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.export import (
    CONTENT_TYPES,
    FORMATS,
    ExportError,
    audits_get,
    export_chunks,
    export_to_stream,
)
from annotation.models import Audit
from config.api import IsLead
from config.roles import object_for_lead


def _download(audit: Audit, fmt: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        export_chunks(audit_ids=[audit.pk], fmt=fmt), content_type=CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="audit-{audit.pk}-calibration.{fmt}"'
    return response


@login_required
def audit_export(request: HttpRequest, pk: str, fmt: str) -> StreamingHttpResponse:
    return _download(object_for_lead(request.user, Audit, pk=pk), fmt)


class FileFormatInput(serializers.Serializer):
    file_format = serializers.ChoiceField(choices=FORMATS, default="jsonl")


_Detail = inline_serializer("ExportError", fields={"detail": serializers.CharField()})


class AuditExportApi(APIView):
    """`GET /api/audits/<id>/export/?file_format=jsonl|csv|parquet` (leads)."""

    permission_classes = [IsLead]

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
        params = FileFormatInput(data=request.query_params)
        if not params.is_valid():
            raise ParseError(
                f"file_format: expected one of {', '.join(FORMATS)}, "
                f"got {request.query_params.get('file_format')!r}"
            )
        audit = get_object_or_404(Audit, pk=pk)
        return _download(audit, params.validated_data["file_format"])


class ExportInput(serializers.Serializer):
    audit = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),  # a BigAutoField id
        min_length=1,
        max_length=100,
        help_text="an audit id; repeat for several audits (`?audit=1&audit=2`)",
    )
    file_format = serializers.ChoiceField(choices=FORMATS, default="jsonl")


def _export_request(request: Request) -> tuple[list[int], str]:
    """The audits and format asked for; 400 naming the parameter otherwise."""
    params = ExportInput(data=request.query_params)
    if not params.is_valid():
        errors = dict(params.errors)
        if isinstance(errors.get("audit"), dict):  # a ListField's errors, by position
            given = request.query_params.getlist("audit")
            errors["audit"] = [
                f"{given[int(i)]!r}: {' '.join(problems)}"
                for i, problems in errors["audit"].items()
            ]
        raise ValidationError(errors)
    audit_ids = list(dict.fromkeys(params.validated_data["audit"]))
    try:
        audits_get(audit_ids)
    except ExportError as exc:
        raise ValidationError({"audit": [str(exc)]}) from None
    return audit_ids, params.validated_data["file_format"]


def _filename(audit_ids: list[int], fmt: str) -> str:
    if len(audit_ids) == 1:
        return f"audit-{audit_ids[0]}-calibration.{fmt}"
    if len(audit_ids) <= 5:
        return f"audits-{'-'.join(str(pk) for pk in audit_ids)}-calibration.{fmt}"
    return f"audits-{len(audit_ids)}-calibration.{fmt}"


_EXPORT_PARAMETERS = [ExportInput]
_BAD_EXPORT = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="a bad `audit` or `file_format`, as `{parameter: [problem]}`",
)


class ExportsApi(APIView):
    """`GET /api/exports/?audit=1&audit=2&file_format=jsonl|csv|parquet` (leads)."""

    permission_classes = [IsLead]

    @extend_schema(
        operation_id="exports_download",
        summary="Download several audits' calibration set (generic import schema), streamed",
        description="One row per pair across the audits; the file imports back with the "
        "`generic` format. Its manifest: `/api/exports/manifest/` with the same parameters.",
        parameters=_EXPORT_PARAMETERS,
        responses={
            (200, CONTENT_TYPES["jsonl"].split(";")[0]): OpenApiTypes.BINARY,
            (200, CONTENT_TYPES["csv"].split(";")[0]): OpenApiTypes.BINARY,
            (200, CONTENT_TYPES["parquet"]): OpenApiTypes.BINARY,
            400: _BAD_EXPORT,
            403: OpenApiResponse(_Detail, description="not a lead"),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        audit_ids, fmt = _export_request(request)
        response = StreamingHttpResponse(
            export_chunks(audit_ids=audit_ids, fmt=fmt), content_type=CONTENT_TYPES[fmt]
        )
        response["Content-Disposition"] = f'attachment; filename="{_filename(audit_ids, fmt)}"'
        return response


class _Discard(io.RawIOBase):
    """A binary sink that keeps nothing: the manifest needs the file's hash, not the file."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes


class ExportManifestApi(APIView):
    """`GET /api/exports/manifest/?audit=1&audit=2&file_format=...` (leads)."""

    permission_classes = [IsLead]

    @extend_schema(
        operation_id="exports_manifest",
        summary="The manifest of a calibration-set download",
        description="Counts, judge fingerprints, tie policy, the data file's sha256 and size, "
        "and the Tribunal version, for the file `/api/exports/` serves with the same "
        "parameters. Writes the file through a hash without storing it, so it costs as much "
        "as the download.",
        parameters=_EXPORT_PARAMETERS,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the manifest"),
            400: _BAD_EXPORT,
            403: OpenApiResponse(_Detail, description="not a lead"),
        },
    )
    def get(self, request: Request) -> Response:
        audit_ids, fmt = _export_request(request)
        result = export_to_stream(
            audit_ids=audit_ids,
            fmt=fmt,
            out=cast(IO[bytes], _Discard()),
            name=_filename(audit_ids, fmt),
        )
        return Response(result)
