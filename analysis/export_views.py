"""Downloading calibration sets: a page link for leads and API endpoints.

Every download takes `layout=flat` (the default: one row per pair, one plain value per cell)
or `layout=generic` (the nested import schema, which imports back unchanged).

- `GET /reports/audit/<id>/export.<fmt>?layout=` the page link (the export button);
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
from collections.abc import Mapping
from typing import IO, Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
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
    LAYOUT_HELP,
    LAYOUTS,
    ExportError,
    audits_get,
    export_chunks,
    export_to_stream,
)
from analysis.flags import CONTENT_TYPES as FLAG_CONTENT_TYPES
from analysis.flags import FORMATS as FLAG_FORMATS
from analysis.flags import flag_rules, flags_to_stream
from analysis.model_card import judge_named, model_card, model_card_markdown
from annotation.models import Audit
from config.api import IsLead
from config.roles import object_for_lead, require_lead
from corpus.models import Dataset

R = TypeVar("R", bound=HttpResponseBase)


def _named(response: R, name: str, disposition: str = "attachment") -> R:
    response["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


def _download(audit_ids: list[int], fmt: str, layout: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        export_chunks(audit_ids=audit_ids, fmt=fmt, layout=layout),
        content_type=CONTENT_TYPES[fmt],
    )
    return _named(response, _filename(audit_ids, fmt, layout))


def _manifest(audit_ids: list[int], fmt: str, layout: str) -> dict[str, Any]:
    """The manifest of the download of ``audit_ids``: the file is written through a hash
    and thrown away."""
    return export_to_stream(
        audit_ids=audit_ids,
        fmt=fmt,
        layout=layout,
        out=cast(IO[bytes], _Discard()),
        name=_filename(audit_ids, fmt, layout),
    )


@login_required
def audit_export(request: HttpRequest, pk: str, fmt: str) -> HttpResponse | StreamingHttpResponse:
    audit = object_for_lead(request.user, Audit, pk=pk)
    layout = request.GET.get("layout", LAYOUTS[0])
    if layout not in LAYOUTS:
        return HttpResponseBadRequest(
            f"layout: expected one of {', '.join(LAYOUTS)}", content_type="text/plain"
        )
    return _download([audit.pk], fmt, layout)


@login_required
def audit_export_download(request: HttpRequest, pk: str) -> HttpResponse | StreamingHttpResponse:
    """The export button's target: `?fmt=parquet|csv|jsonl&layout=flat|generic`."""
    audit = object_for_lead(request.user, Audit, pk=pk)
    fmt = request.GET.get("fmt", "parquet")
    layout = request.GET.get("layout", LAYOUTS[0])
    if fmt not in FORMATS or layout not in LAYOUTS:
        return HttpResponseBadRequest(
            f"fmt: one of {', '.join(FORMATS)}; layout: one of {', '.join(LAYOUTS)}",
            content_type="text/plain",
        )
    return _download([audit.pk], fmt, layout)


@login_required
def audit_export_manifest(request: HttpRequest, pk: str) -> HttpResponse:
    """The manifest of the button's download, as JSON (same `fmt` and `layout` parameters)."""
    audit = object_for_lead(request.user, Audit, pk=pk)
    fmt = request.GET.get("fmt", "parquet")
    layout = request.GET.get("layout", LAYOUTS[0])
    try:
        result = _manifest([audit.pk], fmt, layout)
    except ExportError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    return JsonResponse(result, json_dumps_params={"indent": 2, "ensure_ascii": False})


_LAYOUT_FIELD = {"choices": LAYOUTS, "default": LAYOUTS[0], "help_text": LAYOUT_HELP}


class FileFormatInput(serializers.Serializer):
    file_format = serializers.ChoiceField(choices=FORMATS, default="jsonl")
    layout = serializers.ChoiceField(**_LAYOUT_FIELD)


_Detail = inline_serializer("ExportError", fields={"detail": serializers.CharField()})


def _files(content_types: Mapping[str, str]) -> dict[Any, Any]:
    """A binary 200 answer per file format, under its media type (no parameters)."""
    return {(200, kind.split(";")[0]): OpenApiTypes.BINARY for kind in content_types.values()}


def _refusals(bad: OpenApiResponse, subject: str | None = None) -> dict[int, OpenApiResponse]:
    """400 (``bad``), 403 for anyone but a lead and, with a ``subject`` in the path, 404."""
    out = {400: bad, 403: OpenApiResponse(_Detail, description="not a lead")}
    if subject is not None:
        out[404] = OpenApiResponse(_Detail, description=f"no such {subject}")
    return out


class AuditExportApi(APIView):
    """`GET /api/audits/<id>/export/?file_format=jsonl|csv|parquet` (leads)."""

    permission_classes = [IsLead]

    @extend_schema(
        operation_id="audit_export",
        summary="Download an audit's calibration set (flat or generic layout), streamed",
        parameters=[
            OpenApiParameter("file_format", OpenApiTypes.STR, enum=list(FORMATS), default="jsonl"),
            OpenApiParameter(
                "layout",
                OpenApiTypes.STR,
                enum=list(LAYOUTS),
                default=LAYOUTS[0],
                description=LAYOUT_HELP,
            ),
        ],
        responses=_files(CONTENT_TYPES)
        | _refusals(OpenApiResponse(_Detail, description="unknown file_format"), "audit"),
    )
    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        params = FileFormatInput(data=request.query_params)
        if not params.is_valid():
            name = next(iter(params.errors))
            expected = FORMATS if name == "file_format" else LAYOUTS
            raise ParseError(
                f"{name}: expected one of {', '.join(expected)}, "
                f"got {request.query_params.get(name)!r}"
            )
        audit = get_object_or_404(Audit, pk=pk)
        data = params.validated_data
        return _download([audit.pk], data["file_format"], data["layout"])


class ExportInput(serializers.Serializer):
    audit = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),  # a BigAutoField id
        min_length=1,
        max_length=100,
        help_text="an audit id; repeat for several audits (`?audit=1&audit=2`)",
    )
    file_format = serializers.ChoiceField(choices=FORMATS, default="jsonl")
    layout = serializers.ChoiceField(**_LAYOUT_FIELD)


def _export_request(request: Request) -> tuple[list[int], str, str]:
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
    return audit_ids, params.validated_data["file_format"], params.validated_data["layout"]


def _filename(audit_ids: list[int], fmt: str, layout: str = LAYOUTS[0]) -> str:
    kind = "calibration" if layout == LAYOUTS[0] else f"calibration-{layout}"
    if len(audit_ids) == 1:
        return f"audit-{audit_ids[0]}-{kind}.{fmt}"
    if len(audit_ids) <= 5:
        return f"audits-{'-'.join(str(pk) for pk in audit_ids)}-{kind}.{fmt}"
    return f"audits-{len(audit_ids)}-{kind}.{fmt}"


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
        summary="Download several audits' calibration set (flat or generic layout), streamed",
        description="One row per pair across the audits; with `layout=generic` the file "
        "imports back with the `generic` format. Its manifest: `/api/exports/manifest/` "
        "with the same parameters.",
        parameters=_EXPORT_PARAMETERS,
        responses=_files(CONTENT_TYPES) | _refusals(_BAD_EXPORT),
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        return _download(*_export_request(request))


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
            **_refusals(_BAD_EXPORT),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(_manifest(*_export_request(request)))


# --- flags for training pipelines (analysis.flags) -----------------------------------------


def _flags_file(
    dataset: Dataset, fmt: str, margin: float | None, judge_ids: list[int]
) -> HttpResponse:
    rules = flag_rules(dataset, judge_ids=judge_ids, margin=margin)
    buffer = io.BytesIO()
    name = f"{dataset.name}-flags.{fmt}"
    flags_to_stream(rules, fmt=fmt, out=buffer, name=name)
    return _named(HttpResponse(buffer.getvalue(), content_type=FLAG_CONTENT_TYPES[fmt]), name)


@login_required
def dataset_flags(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    """The dataset and audit pages' link: `?margin=` optional."""
    require_lead(request.user)
    dataset = get_object_or_404(Dataset, name=name)
    try:
        margin = float(request.GET["margin"]) if request.GET.get("margin") else None
        return _flags_file(dataset, fmt, margin, [])
    except (ValueError, ExportError) as exc:
        return HttpResponseBadRequest(f"margin: {exc}", content_type="text/plain")


class FlagsInput(serializers.Serializer):
    file_format = serializers.ChoiceField(choices=FLAG_FORMATS, default="jsonl")
    margin = serializers.FloatField(
        required=False, min_value=0, help_text="low margin: |margin| below this"
    )
    judge = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text="a judge id; repeat for several (default: every judge with verdicts)",
    )


class DatasetFlagsApi(APIView):
    """`GET /api/datasets/<name>/flags/?file_format=jsonl|parquet&margin=&judge=` (leads)."""

    permission_classes = [IsLead]

    @extend_schema(
        operation_id="dataset_flags",
        summary="Pairs whose judge verdict should not be used without a person",
        description="Ethics refusal on either side, swap-inconsistent, low margin, judges "
        "disagree; with the reasons and the human label where one exists, keyed by the "
        "pair's source key. A shifted slice is not checked yet.",
        parameters=[FlagsInput],
        responses=_files(FLAG_CONTENT_TYPES) | _refusals(_BAD_EXPORT, "dataset"),
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        params = FlagsInput(data=request.query_params)
        if not params.is_valid():
            raise ValidationError(params.errors)
        dataset = get_object_or_404(Dataset, name=name)
        data = params.validated_data
        try:
            return _flags_file(
                dataset, data["file_format"], data.get("margin"), data.get("judge") or []
            )
        except ExportError as exc:
            raise ValidationError({"judge": [str(exc)]}) from None


# --- model-card sections (analysis.model_card) -------------------------------------------


def _model_card_response(audit: Audit, fmt: str, judge_text: str | None) -> HttpResponse:
    judge = judge_named(audit, judge_text) if judge_text else None
    cards = model_card(audit, judge=judge)
    if fmt == "json":
        response: HttpResponse = JsonResponse(
            cards, safe=False, json_dumps_params={"indent": 2, "ensure_ascii": False}
        )
    else:
        response = HttpResponse(
            model_card_markdown(cards), content_type="text/markdown; charset=utf-8"
        )
    return _named(response, f"audit-{audit.pk}-model-card.{fmt}", "inline")


@login_required
def audit_model_card(request: HttpRequest, pk: str, fmt: str) -> HttpResponse:
    """The report page's link: `reports/audit/<id>/model-card.md|json?judge=`."""
    audit = object_for_lead(request.user, Audit, pk=pk)
    try:
        return _model_card_response(audit, fmt, request.GET.get("judge"))
    except ExportError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


class ModelCardInput(serializers.Serializer):
    file_format = serializers.ChoiceField(choices=("md", "json"), default="json")
    judge = serializers.CharField(
        required=False, help_text="a judge id, `name vN` or bare name (default: every judge)"
    )


class AuditModelCardApi(APIView):
    """`GET /api/audits/<id>/model-card/?file_format=json|md&judge=` (leads)."""

    permission_classes = [IsLead]

    @extend_schema(
        operation_id="audit_model_card",
        summary="Model-card section per judge version (Markdown or JSON)",
        description="What was audited, agreement with intervals against the human ceiling, "
        "response classes per model, the refusal gap, position and length bias, and the gate, "
        "from the audit's latest snapshot.",
        parameters=[ModelCardInput],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="a list of cards (file_format=json)"
            ),
            (200, "text/markdown"): OpenApiResponse(
                OpenApiTypes.STR, description="Markdown (file_format=md)"
            ),
            **_refusals(
                OpenApiResponse(_Detail, description="no figures yet, or an unknown judge"), "audit"
            ),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        params = ModelCardInput(data=request.query_params)
        if not params.is_valid():
            name, problems = next(iter(params.errors.items()))
            raise ParseError(f"{name}: {' '.join(str(p) for p in problems)}")
        audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
        data = params.validated_data
        try:
            return _model_card_response(audit, data["file_format"], data.get("judge"))
        except ExportError as exc:
            raise ParseError(str(exc)) from None
