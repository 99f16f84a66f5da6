"""REST API for audits, the labelling queue and adjudication (mounted under /api/).

The same services and selectors as the HTML views; each action declares its own small
serializers. Roles as on the pages: building and managing audits, items and adjudication are
for leads (`config.api.IsLead`); the queue (`next`, `label`, `skip`, `undo`, your labels) is for
the audit's annotators (`selectors.audit_for_annotator`) and serves only texts by screen side,
never model names, verdicts or other people's labels. Lists are paginated as every list of the
API is (`config.api`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import queue, selectors, services
from annotation.models import Adjudication, Audit, AuditItem, Label
from annotation.serializers import (
    AdjudicationInput,
    AdjudicationOutput,
    AssignmentOutput,
    AuditAnnotatorsInput,
    AuditCreateInput,
    AuditFilterInput,
    AuditJudgeRunInput,
    AuditOptionsInput,
    AuditOutput,
    AuditRejudgeInput,
    AuditRejudgeOutput,
    AuditStatusInput,
    AvailabilityInput,
    CapacityInput,
    CapacityOutput,
    ClassAdjudicationInput,
    GoldInput,
    GrowInput,
    GrowOutput,
    ItemReviewOutput,
    LabelInput,
    LabelOutput,
    LabelReviseInput,
    OverlapInput,
    QualityOutput,
    ReachOutput,
    ResponseClassesOutput,
    ReviewItemOutput,
    SetAsideInput,
    SkipInput,
    UndoInput,
    assignment_output,
    label_output,
)
from config.api import (
    IsLead,
    django_errors,
    list_schema,
    paginated,
    query_params,
    validated_body,
)
from config.roles import is_lead, require_lead
from corpus.models import Dataset
from judges import services as judges_services
from judges.models import Judge, JudgeRun
from judges.serializers import JudgeRunOutput


def _error(message: str, field: str | None = None, code: int = 400) -> Response:
    body: dict[str, Any] = {"detail": message}
    if field:
        body["field"] = field
    return Response(body, status=code)


class _NotFound(APIException):
    """What the body names does not exist: a 400 with the body `_error` answers,
    `{"detail": message, "field": field}`."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, field: str) -> None:
        super().__init__({"detail": message, "field": field})


def _dataset_named(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise _NotFound(f"no dataset named {name!r}", "dataset")
    return dataset


def _judge_with_id(pk: int) -> Judge:
    judge = Judge.objects.filter(pk=pk).first()
    if judge is None:
        raise _NotFound(f"no judge with id {pk}", "judge")
    return judge


def _audit_output(audit: Audit, user: Any) -> dict[str, Any]:
    context = {"progress": lambda a: selectors.audit_progress(a, user), "lead": is_lead(user)}
    return dict(AuditOutput(audit, context=context).data)


def _users_named(names: list[str], field: str) -> list[Any]:
    User = get_user_model()
    users = list(User.objects.filter(username__in=names))
    unknown = sorted(set(names) - {user.get_username() for user in users})
    if unknown:
        raise ValidationError({field: [f"no user named {unknown[0]!r}"]})
    return users


# --- Audits -----------------------------------------------------------------------------------


@list_schema(
    AuditOutput,
    "Audits visible to you (leads: all; annotators: theirs)",
    AuditFilterInput,
    methods=["GET"],
)
@extend_schema(
    methods=["POST"],
    request=AuditCreateInput,
    responses={201: AuditOutput},
    summary="Build an audit (leads)",
)
@api_view(["GET", "POST"])
def audits(request: Request) -> Response:
    if request.method == "GET":
        filters = query_params(AuditFilterInput, request)
        visible = (
            selectors.audits_visible_to(request.user)
            .prefetch_related("judges")
            .order_by("-created_at", "-pk")  # a total order, so pages neither skip nor repeat
        )
        if filters.get("status"):
            visible = visible.filter(status=filters["status"])
        if filters.get("dataset"):
            visible = visible.filter(dataset__name=filters["dataset"])
        return paginated(
            request, visible, lambda page: [_audit_output(a, request.user) for a in page]
        )
    require_lead(request.user)
    data = validated_body(AuditCreateInput, request)
    dataset = _dataset_named(data["dataset"])
    judges = list(Judge.objects.filter(pk__in=data["judges"]))
    missing = sorted(set(data["judges"]) - {judge.pk for judge in judges})
    if missing:
        return _error(f"no judge with id {missing[0]}", "judges")
    drift_found = {j.pk: j for j in Judge.objects.filter(pk__in=data["drift_judges"])}
    absent = [pk for pk in data["drift_judges"] if pk not in drift_found]
    if absent:
        return _error(f"no judge with id {absent[0]}", "drift_judges")
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
            queue_policy=data["queue_policy"],
            blind_adjudication=data["blind_adjudication"],
            ask_response_classes=data["ask_response_classes"],
            drift_judges=[drift_found[pk] for pk in data["drift_judges"]],
        )
    except DjangoValidationError as exc:
        return django_errors(exc)
    return Response(_audit_output(audit, request.user), status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[AvailabilityInput],
    responses={200: OpenApiResponse(description="pairs available per stratum")},
    summary="Pairs available per stratum before building (leads)",
)
@api_view(["GET"])
@permission_classes([IsLead])
def availability(request: Request) -> Response:
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
    dataset = _dataset_named(data["dataset"])
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
    audit = selectors.audit_for_member(request.user, pk)
    return Response(_audit_output(audit, request.user))


def _audit_change(
    name: str,
    serializer: type[serializers.Serializer],
    change: Callable[[Audit, dict[str, Any]], Any],
    summary: str,
) -> Any:
    """A lead's change to one audit, as the API view `name`: validate the body, call the
    service, answer with the audit (or the service's errors, keyed by field, as a 400)."""

    def view(request: Request, pk: int) -> Response:
        audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
        data = validated_body(serializer, request)
        try:
            change(audit, dict(data))
        except DjangoValidationError as exc:
            return django_errors(exc)
        return Response(_audit_output(audit, request.user))

    view.__name__ = view.__qualname__ = name  # DRF names the view (OPTIONS) after it
    lead_view = api_view(["POST"])(permission_classes([IsLead])(view))
    return extend_schema(request=serializer, responses=AuditOutput, summary=summary)(lead_view)


audit_status = _audit_change(
    "audit_status",
    AuditStatusInput,
    lambda audit, data: services.audit_status_set(audit=audit, status=data["status"]),
    "Open or close an audit (leads); a closed audit serves no items, takes no labels",
)
audit_annotators = _audit_change(
    "audit_annotators",
    AuditAnnotatorsInput,
    lambda audit, data: services.audit_annotators_set(
        audit=audit, annotators=_users_named(data["annotators"], "annotators")
    ),
    "Replace who labels an audit (leads); labels already given stay",
)
audit_overlap = _audit_change(
    "audit_overlap",
    OverlapInput,
    lambda audit, data: services.audit_overlap_set(audit=audit, overlap_k=data["overlap_k"]),
    "Raise k, the labels each item gets (leads)",
)
audit_options = _audit_change(
    "audit_options",
    AuditOptionsInput,
    lambda audit, data: services.audit_options_set(audit=audit, **data),
    "Serving order, blind adjudication, gold rate, quality thresholds (leads)",
)


@extend_schema(
    request=AuditJudgeRunInput,
    responses={202: JudgeRunOutput},
    summary="Run a judge over this audit's items, in serving order (leads)",
    description="The run is a judges run scoped to the audit's pairs (`scope` is "
    '"audit <id>"); follow it at /api/judge-runs/{id}/.',
)
@api_view(["POST"])
@permission_classes([IsLead])
def audit_judge_runs(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
    data = validated_body(AuditJudgeRunInput, request)
    judge = _judge_with_id(data["judge"])
    try:
        run = judges_services.judge_run_start(
            judge=judge,
            limit=data.get("limit"),
            created_by=request.user,
            **selectors.audit_run_scope(audit),
        )
    except DjangoValidationError as exc:
        return django_errors(exc)
    run = JudgeRun.objects.select_related("judge", "dataset").get(pk=run.pk)
    return Response(JudgeRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    request=AuditRejudgeInput,
    responses={202: AuditRejudgeOutput},
    summary="Re-judge the calibration set: run a judge version on the pairs people labelled",
    description="The run covers exactly the audit's pairs with a submitted label or an "
    'adjudication (`scope` "audit <id> · labelled pairs"); the judge joins the audit\'s '
    "judges. Follow the run at /api/judge-runs/{id}/; when it is done, `compare_url` (the "
    "API's comparison with the earlier version of the same judge name) gives both versions' "
    "agreement with the people's labels.",
)
@api_view(["POST"])
@permission_classes([IsLead])
def audit_rejudge(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
    data = validated_body(AuditRejudgeInput, request)
    judge = _judge_with_id(data["judge"])
    try:
        rejudge = services.audit_rejudge(audit=audit, judge=judge, created_by=request.user)
    except DjangoValidationError as exc:
        return django_errors(exc)
    run = JudgeRun.objects.select_related("judge", "dataset").get(pk=rejudge.run.pk)
    baseline = rejudge.baseline
    compare_url = None
    if baseline is not None:
        query = urlencode({"a": baseline.pk, "b": judge.pk})
        compare_url = f"{reverse('api-audit-compare', args=[audit.pk])}?{query}"
    out = {
        "run": JudgeRunOutput(run).data,
        "pairs": len(run.pair_ids or []),
        "baseline": {"id": baseline.pk, "name": baseline.name, "version": baseline.version}
        if baseline is not None
        else None,
        "compare_url": compare_url,
    }
    return Response(AuditRejudgeOutput(out).data, status=status.HTTP_202_ACCEPTED)


@list_schema(LabelOutput, "Your own labels in this audit, newest first, in the sides you saw")
@api_view(["GET"])
def audit_my_labels(request: Request, pk: int) -> Response:
    audit = selectors.audit_for_annotator(request.user, pk)
    rows = selectors.my_labels(audit, request.user)
    return paginated(request, rows, lambda page: LabelOutput(page, many=True).data)


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
    audit = selectors.audit_for_annotator(request.user, pk)
    assignment = queue.queue_next(audit=audit, annotator=request.user)
    if assignment is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(assignment_output(assignment))


@extend_schema(
    request=LabelInput,
    responses={201: LabelOutput, 200: LabelOutput},
    summary="Label a held item (idempotent on submission_key)",
    description="With ?next=1 the answer is {label, next}: the label and the next held item "
    "(or null), committed together in one transaction.",
)
@api_view(["POST"])
def assignment_label(request: Request, pk: int) -> Response:
    assignment = selectors.assignment_for_annotator(request.user, pk)
    data = validated_body(LabelInput, request)
    with_next = request.query_params.get("next") in ("1", "true")
    answer = {
        "assignment": assignment,
        "choice": data["choice"],
        "submission_key": data["submission_key"],
        "strength": data.get("strength"),
        "criteria": data["criteria"],
        "rationale": data["rationale"],
        "time_spent_ms": data.get("time_spent_ms"),
        "classes": data["classes"],
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
    body = label_output(result.label)
    if with_next:
        body = {
            "label": body,
            "next": assignment_output(following) if following is not None else None,
        }
    return Response(body, status=code)


@extend_schema(request=SkipInput, responses={200: None}, summary="Skip a held item, saying why")
@api_view(["POST"])
def assignment_skip(request: Request, pk: int) -> Response:
    assignment = selectors.assignment_for_annotator(request.user, pk)
    data = validated_body(SkipInput, request)
    try:
        queue.item_skip(assignment=assignment, reason=data["reason"])
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    return Response({"detail": "skipped"})


@extend_schema(
    request=UndoInput, responses={200: AssignmentOutput}, summary="Undo your latest label"
)
@api_view(["POST"])
def audit_undo(request: Request, pk: int) -> Response:
    selectors.audit_for_annotator(request.user, pk)
    data = validated_body(UndoInput, request)
    try:
        assignment = queue.label_undo(label_id=data["label_id"], annotator=request.user)
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    return Response(assignment_output(assignment))


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
@permission_classes([IsLead])
def adjudication_queue(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit, pk=pk)
    judge = None if audit.blind_adjudication else _judge_param(request, audit)
    rows = selectors.adjudication_queue(audit, reference_judge=judge)
    data = ReviewItemOutput(rows, many=True).data
    if audit.blind_adjudication:
        for row in data:
            for label in row["labels"]:
                label["annotator"] = None
    return Response(data)


@extend_schema(
    responses=ItemReviewOutput,
    summary="An item as a lead decides it: texts, model names, labels, verdicts (leads)",
)
@api_view(["GET"])
@permission_classes([IsLead])
def item_detail(request: Request, pk: int) -> Response:
    item = get_object_or_404(
        AuditItem.objects.sampled().select_related(
            "audit", "pair__prompt", "pair__response_a", "pair__response_b"
        ),
        pk=pk,
    )
    blind = item.audit.blind_adjudication
    adjudication = Adjudication.objects.filter(item=item).select_related("lead").first()
    body = {"item": item, **selectors.item_review(item, blind=blind), "adjudication": adjudication}
    data = dict(ItemReviewOutput(body).data)
    if blind:  # the audit's blind adjudication: no model names, verdicts or annotators
        for side in ("response_a", "response_b"):
            data["pair"][side]["model"] = None
        for label in data["labels"]:
            label["annotator"] = None
    return Response(data)


@extend_schema(
    request=AdjudicationInput,
    responses={201: AdjudicationOutput, 200: AdjudicationOutput},
    summary="Decide an item's final label, or revise it with `expected` (leads)",
    description="Without `expected`, a second decision is a 409. With `expected` (the id of "
    "the adjudication being changed) the decision is revised and the change kept in its "
    "history; a 409 if another lead changed it since.",
)
@api_view(["POST"])
@permission_classes([IsLead])
def item_adjudicate(request: Request, pk: int) -> Response:
    item = get_object_or_404(AuditItem.objects.sampled().select_related("audit"), pk=pk)
    data = validated_body(AdjudicationInput, request)
    judge = None
    if data.get("judge") is not None:
        judge = item.audit.judges.filter(pk=data["judge"]).first()
        if judge is None:
            return _error(f"judge {data['judge']} is not one of this audit's judges", "judge")
    decision = {
        "item": item,
        "lead": request.user,
        "outcome": data["outcome"],
        "note": data["note"],
        "reference_judge": judge,
    }
    try:
        if data.get("expected") is None:
            adjudication = services.adjudication_decide(**decision)
            code = status.HTTP_201_CREATED
        else:
            adjudication = services.adjudication_revise(**decision, expected=data["expected"])
            code = status.HTTP_200_OK
    except DjangoValidationError as exc:
        return django_errors(exc)
    except (services.AlreadyAdjudicated, services.AdjudicationChanged) as exc:
        return _error(exc.message, code=status.HTTP_409_CONFLICT)
    return Response(AdjudicationOutput(adjudication).data, status=code)


def _classes_json(item: AuditItem) -> list[dict[str, Any]]:
    rows = selectors.item_response_classes(item, blind=item.audit.blind_adjudication)
    return [
        {
            "side": row["side"],
            "given": dict(row["given"]),
            "disagree": row["disagree"],
            "final": row["adjudication"].response_class if row["adjudication"] else None,
            "classifier": row["classifier"],
        }
        for row in rows
    ]


@extend_schema(
    methods=["GET"],
    responses={200: ResponseClassesOutput(many=True)},
    summary="What people said each response of an item did, and the final class (leads)",
)
@extend_schema(
    methods=["POST"],
    request=ClassAdjudicationInput,
    responses={200: ResponseClassesOutput(many=True)},
    summary='Decide the final class of an item\'s responses, {"A": ..., "B": ...} (leads)',
    description="Where annotators disagree on what a response did. Deciding again changes "
    "the class and keeps the previous one in its history.",
)
@api_view(["GET", "POST"])
@permission_classes([IsLead])
def item_classes(request: Request, pk: int) -> Response:
    item = get_object_or_404(AuditItem.objects.sampled().select_related("audit", "pair"), pk=pk)
    if request.method == "POST":
        data = validated_body(ClassAdjudicationInput, request)
        try:
            for side, value in sorted(data.items()):
                services.class_adjudicate(
                    item=item, side=side, response_class=value, lead=request.user
                )
        except DjangoValidationError as exc:
            return django_errors(exc)
    return Response(ResponseClassesOutput(_classes_json(item), many=True).data)


@extend_schema(
    request=GrowInput,
    responses={200: GrowOutput},
    summary="Add items to an audit from its strata; inclusion probabilities updated (leads)",
)
@api_view(["POST"])
@permission_classes([IsLead])
def audit_grow(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
    data = validated_body(GrowInput, request)
    try:
        added = services.audit_grow(audit=audit, n=data["n"], by=request.user)
    except DjangoValidationError as exc:
        return django_errors(exc)
    return Response({"added": added, "audit": _audit_output(audit, request.user)})


@extend_schema(
    parameters=[CapacityInput],
    responses={200: OpenApiResponse(description="capacity, and `reach` when labels= is given")},
    summary="How many more labels the audit can hold, and what would get more (leads)",
)
@api_view(["GET"])
@permission_classes([IsLead])
def audit_capacity(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit, pk=pk)
    query = query_params(CapacityInput, request)
    capacity = selectors.audit_capacity(audit)
    body: dict[str, Any] = dict(CapacityOutput(capacity).data)
    if query.get("labels") is not None:
        body["reach"] = ReachOutput(capacity.reach(query["labels"])).data
    return Response(body)


@extend_schema(
    responses=QualityOutput(many=True),
    summary="Per annotator: gold accuracy, agreement, median time, left preference, flags",
)
@api_view(["GET"])
@permission_classes([IsLead])
def audit_quality(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit, pk=pk)
    return Response(QualityOutput(selectors.quality_table(audit), many=True).data)


@extend_schema(
    request=GoldInput,
    responses={201: OpenApiResponse(description="the gold items added")},
    summary="Add gold pairs (a known answer) to an audit's queue (leads)",
)
@api_view(["POST"])
@permission_classes([IsLead])
def audit_gold(request: Request, pk: int) -> Response:
    audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)
    data = validated_body(GoldInput, request)
    try:
        items = services.gold_add(audit=audit, lines=services.parse_gold_lines(data["lines"]))
    except DjangoValidationError as exc:
        return django_errors(exc)
    return Response(
        [
            {"item": item.pk, "key": item.pair.source_key, "answer": item.gold_outcome}
            for item in items
        ],
        status=status.HTTP_201_CREATED,
    )


@extend_schema(
    request=SetAsideInput,
    responses={200: QualityOutput(many=True)},
    summary="Set an annotator's labels aside (kept, not counted), or count them again (leads)",
)
@api_view(["POST"])
@permission_classes([IsLead])
def audit_set_aside(request: Request, pk: int, username: str) -> Response:
    audit = get_object_or_404(Audit, pk=pk)
    person = _users_named([username], "annotator")[0]
    data = validated_body(SetAsideInput, request)
    if data["set_aside"]:
        services.annotator_set_aside(
            audit=audit,
            annotator=person,
            by=request.user,
            reason=data["reason"],
        )
    else:
        services.annotator_count_again(audit=audit, annotator=person)
    return Response(QualityOutput(selectors.quality_table(audit), many=True).data)


@extend_schema(
    request=LabelReviseInput,
    responses={200: LabelOutput, 201: LabelOutput},
    summary="Change one of your labels while the audit is open (kept in its history)",
)
@api_view(["POST"])
def label_revise(request: Request, pk: int) -> Response:
    label = get_object_or_404(
        Label.objects.select_related("item__audit"), pk=pk, annotator=request.user
    )
    selectors.audit_for_annotator(request.user, label.item.audit_id)
    data = validated_body(LabelReviseInput, request)
    try:
        result = queue.label_revise(label_id=label.pk, annotator=request.user, **data)
    except queue.InvalidLabel as exc:
        return _error(exc.message, exc.field)
    except queue.QueueError as exc:
        return _error(exc.message, exc.field, code=status.HTTP_409_CONFLICT)
    revised = Label.objects.select_related("assignment").get(pk=result.label.pk)
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response(label_output(revised), status=code)


urlpatterns = [
    path("audits/", audits, name="api-audits"),
    path("audits/availability/", availability, name="api-audit-availability"),
    path("audits/<int:pk>/", audit_detail, name="api-audit-detail"),
    path("audits/<int:pk>/status/", audit_status, name="api-audit-status"),
    path("audits/<int:pk>/annotators/", audit_annotators, name="api-audit-annotators"),
    path("audits/<int:pk>/judge-runs/", audit_judge_runs, name="api-audit-judge-runs"),
    path("audits/<int:pk>/rejudge/", audit_rejudge, name="api-audit-rejudge"),
    path("audits/<int:pk>/labels/", audit_my_labels, name="api-audit-my-labels"),
    path("audits/<int:pk>/next/", audit_next, name="api-audit-next"),
    path("audits/<int:pk>/undo/", audit_undo, name="api-audit-undo"),
    path("audits/<int:pk>/adjudications/", adjudication_queue, name="api-adjudication-queue"),
    path("assignments/<int:pk>/label/", assignment_label, name="api-assignment-label"),
    path("assignments/<int:pk>/skip/", assignment_skip, name="api-assignment-skip"),
    path("items/<int:pk>/", item_detail, name="api-item-detail"),
    path("items/<int:pk>/adjudication/", item_adjudicate, name="api-item-adjudicate"),
    path("items/<int:pk>/classes/", item_classes, name="api-item-classes"),
    path("audits/<int:pk>/grow/", audit_grow, name="api-audit-grow"),
    path("audits/<int:pk>/overlap/", audit_overlap, name="api-audit-overlap"),
    path("audits/<int:pk>/options/", audit_options, name="api-audit-options"),
    path("audits/<int:pk>/capacity/", audit_capacity, name="api-audit-capacity"),
    path("audits/<int:pk>/quality/", audit_quality, name="api-audit-quality"),
    path("audits/<int:pk>/gold/", audit_gold, name="api-audit-gold"),
    path(
        "audits/<int:pk>/annotators/<str:username>/set-aside/",
        audit_set_aside,
        name="api-audit-set-aside",
    ),
    path("labels/<int:pk>/revise/", label_revise, name="api-label-revise"),
]
