"""Report API (mounted under /api/): the same snapshots as the report pages, as JSON.

``GET .../report/`` returns the latest snapshot with every figure (``metrics``, see
analysis.services) and whether a newer one is on its way; ``GET .../report/model/`` its report
model (analysis.report_model: the sections the pages and the Markdown report show, without the
charts); ``GET .../report/history/`` the
headline figures of every snapshot, oldest first; ``POST .../report/recompute/`` asks for a
fresh snapshot (202). ``GET``/``PUT .../gate/`` check or write an audit's release gate;
``POST .../gate/check/`` checks rules for a judge named as ``manage.py gate --judge`` names it,
storing nothing (what ``tribunal gate`` calls from a CI job). ``GET .../compare/?a=V1&b=V2``
compares two judges on the same pairs (the JSON of ``manage.py judge_compare --format json``).
Leads only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from analysis import compare, gates, selectors, services
from analysis.metrics.gate import GateRuleError
from analysis.models import MetricSnapshot
from analysis.report_model import report_build, report_json
from analysis.serializers import (
    GateCheckInput,
    GateInput,
    GateOutput,
    HistoryOutput,
    ReportModelOutput,
    ReportOutput,
    SnapshotOutput,
    TrendPointOutput,
)
from annotation.models import Audit
from annotation.selectors import audit_for_lead
from config.roles import object_for_lead
from corpus.models import Dataset
from judges.models import Judge


def _subject(audit: Audit | None, dataset: Dataset | None) -> dict[str, Any]:
    if audit is not None:
        return {"kind": "audit", "id": audit.pk, "name": audit.name}
    assert dataset is not None
    return {"kind": "dataset", "id": dataset.pk, "name": dataset.name}


STALE_DETAIL = (
    "The latest stored snapshot was written by an older version of Tribunal in a shape this "
    "version cannot read ({reason}); a fresh one is being computed: ask again in a moment."
)


def _latest(
    audit: Audit | None, dataset: Dataset | None
) -> tuple[MetricSnapshot | None, bool, dict[str, str]]:
    """The latest snapshot, after asking for a fresh one when it is stale, whether a newer
    one is on its way, and (as ``{"detail": ...}``) why none is shown when the latest was
    stored by older code in a shape this version cannot read."""
    snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
    pending = services.snapshot_pending(audit=audit, dataset=dataset)
    stale = snapshot.stale_reason if snapshot is not None else None
    if stale is not None:
        snapshot, stale_pending = services.snapshot_readable(snapshot, audit=audit, dataset=dataset)
        pending = pending or stale_pending
        if snapshot is None:
            return None, True, {"detail": STALE_DETAIL.format(reason=stale)}
    if not pending and not services.snapshot_is_current(snapshot, audit=audit, dataset=dataset):
        shown = snapshot
        services.snapshot_request(audit=audit, dataset=dataset)
        snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
        # Outside a transaction an inline run is already done; otherwise it is on its way.
        pending = snapshot is None or (shown is not None and snapshot.pk == shown.pk)
    return snapshot, pending, {}


def _report(audit: Audit | None = None, dataset: Dataset | None = None) -> Response:
    snapshot, pending, detail = _latest(audit, dataset)
    body = {
        "subject": _subject(audit, dataset),
        "pending": pending,
        "snapshot": SnapshotOutput(snapshot).data if snapshot is not None else None,
        **detail,
    }
    code = status.HTTP_200_OK if snapshot is not None else status.HTTP_202_ACCEPTED
    return Response(body, status=code)


def _report_model(audit: Audit | None = None, dataset: Dataset | None = None) -> Response:
    """The report model of the latest snapshot; like ``_report``, asks for a fresh snapshot
    when the latest is stale and says whether one is on its way."""
    snapshot, pending, detail = _latest(audit, dataset)
    report = None
    if snapshot is not None:
        history = selectors.snapshot_history(audit=audit, dataset=dataset)
        gate = gates.gate_statuses(audit) if audit is not None else None
        report = report_json(report_build(snapshot, history, gate=gate))
    body = {
        "subject": _subject(audit, dataset),
        "pending": pending,
        "snapshot": snapshot.pk if snapshot is not None else None,
        "report": report,
        **detail,
    }
    code = status.HTTP_200_OK if snapshot is not None else status.HTTP_202_ACCEPTED
    return Response(body, status=code)


def _history(audit: Audit | None = None, dataset: Dataset | None = None) -> Response:
    points = selectors.snapshot_history(audit=audit, dataset=dataset)
    return Response(
        {
            "subject": _subject(audit, dataset),
            "snapshots": TrendPointOutput(points, many=True).data,
        }
    )


def _recompute(audit: Audit | None = None, dataset: Dataset | None = None) -> Response:
    services.snapshot_request(audit=audit, dataset=dataset, force=True)
    return Response(
        {"subject": _subject(audit, dataset), "pending": True}, status=status.HTTP_202_ACCEPTED
    )


@extend_schema(responses={200: ReportOutput, 202: ReportOutput}, summary="An audit's figures")
@api_view(["GET"])
def audit_report(request: Request, pk: int) -> Response:
    return _report(audit=audit_for_lead(request.user, pk))


@extend_schema(
    responses={200: ReportModelOutput, 202: ReportModelOutput},
    summary="An audit's report, section by section, as the pages and the Markdown show it",
)
@api_view(["GET"])
def audit_report_model(request: Request, pk: int) -> Response:
    return _report_model(audit=audit_for_lead(request.user, pk))


@extend_schema(responses=HistoryOutput, summary="An audit's figures over time")
@api_view(["GET"])
def audit_report_history(request: Request, pk: int) -> Response:
    return _history(audit=audit_for_lead(request.user, pk))


@extend_schema(request=None, responses={202: None}, summary="Recompute an audit's figures")
@api_view(["POST"])
def audit_report_recompute(request: Request, pk: int) -> Response:
    return _recompute(audit=audit_for_lead(request.user, pk))


@extend_schema(responses={200: ReportOutput, 202: ReportOutput}, summary="A dataset's figures")
@api_view(["GET"])
def dataset_report(request: Request, name: str) -> Response:
    return _report(dataset=object_for_lead(request.user, Dataset, name=name))


@extend_schema(
    responses={200: ReportModelOutput, 202: ReportModelOutput},
    summary="A dataset's report, section by section, as the pages and the Markdown show it",
)
@api_view(["GET"])
def dataset_report_model(request: Request, name: str) -> Response:
    return _report_model(dataset=object_for_lead(request.user, Dataset, name=name))


@extend_schema(responses=HistoryOutput, summary="A dataset's figures over time")
@api_view(["GET"])
def dataset_report_history(request: Request, name: str) -> Response:
    return _history(dataset=object_for_lead(request.user, Dataset, name=name))


@extend_schema(request=None, responses={202: None}, summary="Recompute a dataset's figures")
@api_view(["POST"])
def dataset_report_recompute(request: Request, name: str) -> Response:
    return _recompute(dataset=object_for_lead(request.user, Dataset, name=name))


@extend_schema(
    methods=["GET"],
    responses=GateOutput,
    summary="Check the audit's release gate: PASS, FAIL or INCONCLUSIVE",
)
@extend_schema(
    methods=["PUT"],
    request=GateInput,
    responses=GateOutput,
    summary="Write the audit's release gate (a new version) and check it",
)
@api_view(["GET", "PUT"])
def audit_gate(request: Request, pk: int) -> Response:
    audit = audit_for_lead(request.user, pk)
    if request.method == "PUT":
        data = GateInput(data=request.data)
        data.is_valid(raise_exception=True)
        judge = Judge.objects.filter(pk=data.validated_data["judge"]).first()
        if judge is None:
            raise ApiValidationError({"judge": f"no judge {data.validated_data['judge']}"})
        try:
            gate = gates.gate_set(
                audit=audit,
                judge=judge,
                rules=data.validated_data["rules"],
                created_by=request.user,
            )
        except ValidationError as exc:
            raise ApiValidationError(exc.message_dict) from None
    else:
        latest = gates.gate_latest(audit)
        if latest is None:
            raise NotFound(f"audit {audit.pk} has no release gate yet: PUT one")
        gate = latest
    try:
        outcome = gates.gate_evaluate(audit=audit, gate=gate)
    except GateRuleError as exc:
        raise ApiValidationError({"rules": str(exc)}) from None
    return Response(GateOutput(gates.gate_json(audit, outcome, gate)).data)


def _judge_named(audit: Audit, name: str) -> Judge:
    """The audit's judge by id, display name, bare name (newest version) or a unique
    beginning of its name; 400 listing the audit's judges."""
    try:
        return selectors.audit_judge_named(audit, name)
    except selectors.JudgeNotOnAudit as exc:
        raise ApiValidationError({"judge": [str(exc)]}) from None


@extend_schema(
    request=GateCheckInput,
    responses=GateOutput,
    summary="Check rules for one of the audit's judges, storing nothing",
    description="As `manage.py gate AUDIT --judge NAME --rule ...`: the rules are checked "
    "against the audit's latest figures (recomputed first when labels came in since) for the "
    "newest version of the named judge. Without `rules`, the stored gate is checked, and it "
    "must be about that judge. A judge the audit does not have is a 400 listing its judges.",
)
@api_view(["POST"])
def audit_gate_check(request: Request, pk: int) -> Response:
    audit = audit_for_lead(request.user, pk)
    data = GateCheckInput(data=request.data)
    data.is_valid(raise_exception=True)
    judge = _judge_named(audit, data.validated_data["judge"])
    baseline = None
    if data.validated_data.get("baseline"):
        try:
            baseline = selectors.audit_judge_named(audit, data.validated_data["baseline"])
        except selectors.JudgeNotOnAudit as exc:
            raise ApiValidationError({"baseline": [str(exc)]}) from None
    rules = data.validated_data.get("rules")
    gate = None
    if rules is None:
        gate = gates.gate_latest(audit)
        if gate is None:
            raise NotFound(f"audit {audit.pk} has no release gate yet: PUT one, or send rules")
        if gate.judge.name != judge.name:
            raise ApiValidationError(
                {
                    "judge": [
                        f"the stored gate of audit {audit.pk} is about {gate.judge}, not "
                        f"{judge.name!r}; send rules to check {judge.name!r}"
                    ]
                }
            )
    try:
        outcome = gates.gate_evaluate(
            audit=audit, gate=gate, rules=rules, judge=judge, baseline=baseline
        )
    except GateRuleError as exc:
        raise ApiValidationError({"rules": [str(exc)]}) from None
    return Response(GateOutput(gates.gate_json(audit, outcome, gate)).data)


def _compare(request: Request, audit: Audit | None, dataset: Dataset | None) -> Response:
    judges = compare.compare_judges(dataset=dataset, audit=audit)
    where = compare.subject_name(dataset=dataset, audit=audit)
    errors: dict[str, list[str]] = {}
    chosen: dict[str, Judge] = {}
    for key in ("a", "b"):
        text = request.query_params.get(key, "").strip()
        if not text:
            errors[key] = [f"name the {'baseline' if key == 'a' else 'candidate'} judge: ?{key}="]
            continue
        try:
            chosen[key] = compare.judge_named(judges, text, where)
        except compare.JudgeNotFound as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ApiValidationError(errors)
    try:
        data = compare.judges_compare(
            first=chosen["a"], second=chosen["b"], dataset=dataset, audit=audit
        )
    except ValueError as exc:
        raise ApiValidationError({"b": [str(exc)]}) from None
    return Response(data.as_json())


_COMPARE_DOC = (
    "`a` is the baseline (v1), `b` the candidate (v2): a judge id, its name as pages show it "
    "(`name vN`), its bare name (newest version) or a unique beginning of it. The answer is "
    "the JSON of `manage.py judge_compare --format json`: flip rate and matrix, agreement "
    "with people for both and the paired deltas with McNemar's test, slices (shifted first), "
    "agreement in both orders and position consistency per slice."
)


@extend_schema(summary="Compare two judges on the audit's items", description=_COMPARE_DOC)
@api_view(["GET"])
def audit_compare(request: Request, pk: int) -> Response:
    audit = audit_for_lead(request.user, pk)
    return _compare(request, audit, None)


@extend_schema(summary="Compare two judges on the dataset's pairs", description=_COMPARE_DOC)
@api_view(["GET"])
def dataset_compare(request: Request, name: str) -> Response:
    dataset = object_for_lead(request.user, Dataset, name=name)
    return _compare(request, None, dataset)
