"""REST API for audits, the labelling queue and adjudication (mounted under /api/).

The same services as the HTML views; each action declares its own small serializers.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import queue, selectors, services
from annotation.models import Assignment, Audit, AuditItem, Dataset
from annotation.roles import is_lead
from annotation.serializers import (
    AdjudicationInput,
    AdjudicationOutput,
    AssignmentOutput,
    AuditCreateInput,
    AuditOutput,
    AvailabilityInput,
    LabelInput,
    LabelOutput,
    ReviewItemOutput,
    SkipInput,
    UndoInput,
)
from judges.models import Judge


def _require_lead(request: Request) -> None:
    if not is_lead(request.user):
        raise PermissionDenied("Leads only.")


def _audit_for_annotator(request: Request, pk: int) -> Audit:
    audit = get_object_or_404(Audit, pk=pk)
    if not audit.annotators.filter(pk=request.user.pk).exists():
        raise PermissionDenied("You are not an annotator of this audit.")
    return audit


def _assignment_for(request: Request, pk: int) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item__audit"), pk=pk, annotator=request.user
    )


def _error(message: str, field: str | None = None, code: int = 400) -> Response:
    body: dict[str, Any] = {"detail": message}
    if field:
        body["field"] = field
    return Response(body, status=code)


def _django_errors(exc: DjangoValidationError) -> Response:
    if hasattr(exc, "error_dict"):
        return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)


def _audit_output(audit: Audit, user: Any) -> dict[str, Any]:
    context = {"progress": lambda a: selectors.audit_progress(a, user)}
    return dict(AuditOutput(audit, context=context).data)


@extend_schema(methods=["GET"], responses=AuditOutput(many=True), summary="Audits visible to you")
@extend_schema(
    methods=["POST"],
    request=AuditCreateInput,
    responses={201: AuditOutput},
    summary="Build an audit (leads)",
)
@api_view(["GET", "POST"])
def audits(request: Request) -> Response:
    if request.method == "GET":
        visible = selectors.audits_visible_to(request.user)
        return Response([_audit_output(audit, request.user) for audit in visible])
    _require_lead(request)
    data_in = AuditCreateInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    data = data_in.validated_data
    dataset = Dataset.objects.filter(name=data["dataset"]).first()
    if dataset is None:
        return _error(f"no dataset named {data['dataset']!r}", "dataset")
    judges = list(Judge.objects.filter(pk__in=data["judges"]))
    missing = sorted(set(data["judges"]) - {judge.pk for judge in judges})
    if missing:
        return _error(f"no judge with id {missing[0]}", "judges")
    User = get_user_model()
    annotators = list(User.objects.filter(username__in=data["annotators"]))
    unknown = sorted(set(data["annotators"]) - {user.get_username() for user in annotators})
    if unknown:
        return _error(f"no user named {unknown[0]!r}", "annotators")
    try:
        audit = services.audit_build(
            name=data["name"],
            dataset=dataset,
            judges=judges,
            size=data["size"],
            overlap_k=data["overlap_k"],
            quotas=data["quotas"],
            thresholds=data["thresholds"],
            seed=data.get("seed", secrets.randbelow(1_000_000)),
            created_by=request.user,
            annotators=annotators,
            guidelines=data["guidelines"],
            allow_both_bad=data["allow_both_bad"],
            allow_strength=data["allow_strength"],
            criteria=data["criteria"],
            hold_seconds=data.get("hold_seconds"),
            classifier=data.get("classifier") or None,
        )
    except DjangoValidationError as exc:
        return _django_errors(exc)
    return Response(_audit_output(audit, request.user), status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[AvailabilityInput],
    responses={200: OpenApiResponse(description="pairs available per stratum")},
    summary="Pairs available per stratum before building (leads)",
)
@api_view(["GET"])
def availability(request: Request) -> Response:
    _require_lead(request)
    query = {
        "dataset": request.query_params.get("dataset", ""),
        "judges": request.query_params.getlist("judges"),
        "classifier": request.query_params.get("classifier", ""),
    }
    if request.query_params.get("margin") not in (None, ""):
        query["margin"] = request.query_params["margin"]
    data_in = AvailabilityInput(data=query)
    data_in.is_valid(raise_exception=True)
    data = data_in.validated_data
    dataset = Dataset.objects.filter(name=data["dataset"]).first()
    if dataset is None:
        return _error(f"no dataset named {data['dataset']!r}", "dataset")
    counts = selectors.stratum_availability(
        dataset=dataset,
        judges=list(Judge.objects.filter(pk__in=data["judges"])),
        margin_threshold=data.get("margin"),
        classifier=data.get("classifier") or None,
    )
    return Response(counts)


@extend_schema(responses=AuditOutput, summary="One audit with its progress")
@api_view(["GET"])
def audit_detail(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit, pk=pk)
    if not is_lead(request.user) and not audit.annotators.filter(pk=request.user.pk).exists():
        raise PermissionDenied("You are not an annotator of this audit.")
    return Response(_audit_output(audit, request.user))


@extend_schema(
    request=None,
    responses={
        200: AssignmentOutput,
        204: OpenApiResponse(description="nothing free for you right now"),
    },
    summary="Hold and return your next item (blind)",
)
@api_view(["POST"])
def audit_next(request: Request, pk: int) -> Response:
    audit = _audit_for_annotator(request, pk)
    assignment = queue.queue_next(audit=audit, annotator=request.user)
    if assignment is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(AssignmentOutput(assignment).data)


@extend_schema(
    request=LabelInput,
    responses={201: LabelOutput, 200: LabelOutput},
    summary="Label a held item (idempotent on submission_key)",
    description="With ?next=1 the answer is {label, next}: the label and the next held item "
    "(or null), committed together in one transaction.",
)
@api_view(["POST"])
def assignment_label(request: Request, pk: int) -> Response:
    assignment = _assignment_for(request, pk)
    _audit_for_annotator(request, assignment.item.audit_id)
    data_in = LabelInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    data = data_in.validated_data
    with_next = request.query_params.get("next") in ("1", "true")
    answer = {
        "assignment": assignment,
        "choice": data["choice"],
        "submission_key": data["submission_key"],
        "strength": data.get("strength"),
        "criteria": data["criteria"],
        "rationale": data["rationale"],
        "time_spent_ms": data.get("time_spent_ms"),
    }
    following = None
    try:
        if with_next:
            assignment.annotator = request.user
            result, following = queue.label_submit_and_next(**answer)
        else:
            result = queue.label_submit(**answer)
    except queue.InvalidLabel as exc:
        return _error(exc.message, exc.field)
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    result.label.assignment = assignment
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    body = LabelOutput(result.label).data
    if with_next:
        body = {
            "label": body,
            "next": AssignmentOutput(following).data if following is not None else None,
        }
    return Response(body, status=code)


@extend_schema(request=SkipInput, responses={200: None}, summary="Skip a held item, saying why")
@api_view(["POST"])
def assignment_skip(request: Request, pk: int) -> Response:
    assignment = _assignment_for(request, pk)
    _audit_for_annotator(request, assignment.item.audit_id)
    data_in = SkipInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    try:
        queue.item_skip(assignment=assignment, reason=data_in.validated_data["reason"])
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    return Response({"detail": "skipped"})


@extend_schema(
    request=UndoInput, responses={200: AssignmentOutput}, summary="Undo your latest label"
)
@api_view(["POST"])
def audit_undo(request: Request, pk: int) -> Response:
    _audit_for_annotator(request, pk)
    data_in = UndoInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    try:
        assignment = queue.label_undo(
            label_id=data_in.validated_data["label_id"], annotator=request.user
        )
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    return Response(AssignmentOutput(assignment).data)


def _judge_param(request: Request, audit: Audit) -> Judge | None:
    raw = request.query_params.get("judge") or request.data.get("judge")
    if raw in (None, "", "none"):
        return None
    try:
        return audit.judges.get(pk=int(raw))
    except (TypeError, ValueError, Judge.DoesNotExist):
        raise ValidationError({"judge": f"{raw!r} is not one of this audit's judges"}) from None


@extend_schema(
    responses=ReviewItemOutput(many=True),
    summary="Items to adjudicate, with all labels (leads)",
)
@api_view(["GET"])
def adjudication_queue(request: Request, pk: int) -> Response:
    _require_lead(request)
    audit = get_object_or_404(Audit, pk=pk)
    judge = _judge_param(request, audit)
    rows = selectors.adjudication_queue(audit, reference_judge=judge)
    return Response(ReviewItemOutput(rows, many=True).data)


@extend_schema(
    request=AdjudicationInput,
    responses={201: AdjudicationOutput},
    summary="Decide an item's final label (leads)",
)
@api_view(["POST"])
def item_adjudicate(request: Request, pk: int) -> Response:
    _require_lead(request)
    item = get_object_or_404(AuditItem.objects.select_related("audit"), pk=pk)
    data_in = AdjudicationInput(data=request.data)
    data_in.is_valid(raise_exception=True)
    data = data_in.validated_data
    judge = None
    if data.get("judge") is not None:
        judge = item.audit.judges.filter(pk=data["judge"]).first()
        if judge is None:
            return _error(f"judge {data['judge']} is not one of this audit's judges", "judge")
    try:
        adjudication = services.adjudication_decide(
            item=item,
            lead=request.user,
            outcome=data["outcome"],
            note=data["note"],
            reference_judge=judge,
        )
    except DjangoValidationError as exc:
        return _django_errors(exc)
    except services.AlreadyAdjudicated as exc:
        return _error(exc.message, code=status.HTTP_409_CONFLICT)
    return Response(AdjudicationOutput(adjudication).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("audits/", audits, name="api-audits"),
    path("audits/availability/", availability, name="api-audit-availability"),
    path("audits/<int:pk>/", audit_detail, name="api-audit-detail"),
    path("audits/<int:pk>/next/", audit_next, name="api-audit-next"),
    path("audits/<int:pk>/undo/", audit_undo, name="api-audit-undo"),
    path("audits/<int:pk>/adjudications/", adjudication_queue, name="api-adjudication-queue"),
    path("assignments/<int:pk>/label/", assignment_label, name="api-assignment-label"),
    path("assignments/<int:pk>/skip/", assignment_skip, name="api-assignment-skip"),
    path("items/<int:pk>/adjudication/", item_adjudicate, name="api-item-adjudicate"),
]
