"""Report pages for leads, the report model (`analysis.report_model`) as HTML: the latest
snapshot at once, a fragment that refreshes while an audit runs, and a button to recompute.

The page polls its own URL with htmx (``?since=<snapshot id>``); the answer is 204 (nothing
to swap) until a newer snapshot exists or the "computing" state changes, then the
``live`` fragment of the same template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from analysis import gates, selectors, services
from analysis.forms import GateForm
from analysis.metrics.gate import GateRuleError
from analysis.models import MetricSnapshot
from analysis.report_model import report_build
from analysis.report_studies import judges_shown, refusal_csv, studies_model
from analysis.subject_views import subject_views
from annotation.models import Audit
from annotation.selectors import audit_for_lead
from config.roles import require_lead
from corpus.models import Dataset


class HtmxRequest(HttpRequest):
    """What the middleware gives every view here: the user and htmx details."""

    htmx: HtmxDetails


# --- pages -----------------------------------------------------------------------------------


@login_required
def report_index(request: HttpRequest) -> HttpResponse:
    require_lead(request.user)
    latest = MetricSnapshot.objects.order_by("-created_at", "-pk")
    audits = Audit.objects.select_related("dataset").annotate(
        snapshot_at=Subquery(latest.filter(audit=OuterRef("pk")).values("created_at")[:1]),
        snapshot_labels=Subquery(latest.filter(audit=OuterRef("pk")).values("label_count")[:1]),
    )
    datasets = Dataset.objects.annotate(
        snapshot_at=Subquery(latest.filter(dataset=OuterRef("pk")).values("created_at")[:1]),
        snapshot_labels=Subquery(latest.filter(dataset=OuterRef("pk")).values("label_count")[:1]),
    )
    return render(request, "analysis/index.html", {"audits": audits, "datasets": datasets})


@login_required
def audit_precision(request: HtmxRequest, pk: int) -> HttpResponse:
    """The audit page's "How sure are we?" card (htmx loads it there); the page alone without
    JavaScript. Empty for htmx when the audit has no snapshot yet."""
    audit = audit_for_lead(request.user, pk)
    template = "analysis/audit_precision.html"
    if request.htmx:
        template += "#precision"
    return render(request, template, {"audit": audit, "precision": _audit_precision(audit)})


def _audit_precision(audit: Audit) -> dict[str, Any]:
    """How sure the audit already is, from its latest report snapshot: each judge's
    anytime-valid agreement interval with "about N more labels for +/- x", and the gate."""
    snapshot = selectors.snapshot_latest(audit=audit)
    if snapshot is None:
        return {}
    typed = snapshot.typed
    judges = [replace(j, colour="") for j in judges_shown(typed)]
    model = studies_model(typed.studies, judges)
    out: dict[str, Any] = {
        "snapshot": snapshot,
        "sequential": model.get("sequential"),
        "half_width_pts": model.get("half_width_pts"),
    }
    gate = gates.gate_latest(audit)
    if gate is not None:
        try:
            out["gate"] = gates.gate_evaluate(audit=audit, gate=gate, refresh=False).result
        except ValueError as exc:
            out["gate_error"] = str(exc)
    return out


@login_required
@require_POST
def audit_gate(request: HtmxRequest, pk: int) -> HttpResponse:
    """Write a new release gate for the audit (the latest one is in force)."""
    audit = audit_for_lead(request.user, pk)
    form = GateForm(request.POST, judges=selectors.audit_judges(audit))
    if form.is_valid():
        try:
            gates.gate_set(
                audit=audit,
                judge=form.cleaned_data["judge"],
                rules=form.rule_lines(),
                created_by=request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Release gate saved.")
            return redirect(reverse("audit_report", args=[audit.pk]) + "#gate")
    snapshot = selectors.snapshot_latest(audit=audit)
    pending = services.snapshot_pending(audit=audit)
    context = _context(
        audit=audit, dataset=None, snapshot=snapshot, pending=pending, gate_form=form
    )
    return render(request, "analysis/report.html", context, status=400)


def _refusal_csv(
    request: HttpRequest, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> HttpResponse:
    """The refusal-gap and class-rate tables of the latest snapshot, as CSV."""
    if audit is not None:
        stem = f"audit-{audit.pk}"
    else:
        assert dataset is not None
        stem = f"dataset-{dataset.name}"
    snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
    if snapshot is None:
        return HttpResponse("No figures yet: open the report first.", status=404)
    names = {j.id: j.label for j in snapshot.typed.raters.judges}
    names["human"] = "human majority"
    body = refusal_csv(snapshot.typed.studies, names)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}-refusal-gap.csv"'
    return response


audit_refusal_csv, dataset_refusal_csv = subject_views(_refusal_csv)


def _urls(audit: Audit | None, dataset: Dataset | None) -> dict[str, str]:
    arg: int | str
    if audit is not None:
        kind, arg = "audit", audit.pk
    else:
        assert dataset is not None
        kind, arg = "dataset", dataset.name
    names = {
        "page": f"{kind}_report",
        "recompute": f"{kind}_report_recompute",
        "subject": f"{kind}_detail",
        "api": f"api-{kind}-report",
        "refusal_csv": f"{kind}_refusal_csv",
    }
    return {key: reverse(name, args=[arg]) for key, name in names.items()}


def _report(
    request: HtmxRequest, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> HttpResponse:
    snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
    pending = services.snapshot_pending(audit=audit, dataset=dataset)
    if request.htmx and "since" in request.GET:
        since = request.GET.get("since", "")
        was_pending = request.GET.get("pending") == "1"
        same = str(snapshot.pk if snapshot else "") == since
        if same and was_pending == pending:
            return HttpResponse(status=204)
    elif not pending and not services.snapshot_is_current(snapshot, audit=audit, dataset=dataset):
        # Missing or stale figures: ask for fresh ones and show the last ones meanwhile.
        snapshot, pending = _request(audit, dataset, snapshot, force=False)
    context = _context(audit=audit, dataset=dataset, snapshot=snapshot, pending=pending)
    template = "analysis/report.html#live" if request.htmx else "analysis/report.html"
    return render(request, template, context)


def _request(
    audit: Audit | None, dataset: Dataset | None, shown: MetricSnapshot | None, *, force: bool
) -> tuple[MetricSnapshot | None, bool]:
    """Ask for a snapshot; return the latest one and whether a newer one is still to come.

    Outside a transaction the run may already be done (inline tasks), so look again.
    """
    services.snapshot_request(audit=audit, dataset=dataset, force=force)
    latest = selectors.snapshot_latest(audit=audit, dataset=dataset)
    done = latest is not None and (shown is None or latest.pk != shown.pk)
    return latest, not done


def _recompute(
    request: HtmxRequest, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> HttpResponse:
    snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
    snapshot, pending = _request(audit, dataset, snapshot, force=True)
    if request.htmx:
        context = _context(audit=audit, dataset=dataset, snapshot=snapshot, pending=pending)
        return render(request, "analysis/report.html#live", context)
    messages.info(request, "Recomputing the figures; the page updates when they are ready.")
    return redirect(_urls(audit, dataset)["page"])


audit_report, dataset_report = subject_views(_report)
audit_report_recompute, dataset_report_recompute = subject_views(_recompute, post_only=True)


def _context(
    *,
    audit: Audit | None,
    dataset: Dataset | None,
    snapshot: MetricSnapshot | None,
    pending: bool,
    gate_form: GateForm | None = None,
) -> dict[str, Any]:
    history = selectors.snapshot_history(audit=audit, dataset=dataset)
    running = audit is not None and audit.status == Audit.Status.OPEN
    gate = _gate(audit, gate_form) if audit is not None else None
    report = None
    if snapshot is not None:
        report = report_build(snapshot, history, gate=_gate_statuses(gate))
        report["contents"] = _contents(report, gate)
    return {
        "audit": audit,
        "dataset": dataset,
        "subject_name": audit.name if audit is not None else dataset.name if dataset else "",
        "kind": "audit" if audit is not None else "dataset",
        "urls": _urls(audit, dataset),
        "snapshot": snapshot,
        "pending": pending,
        "live": running or pending,
        "report": report,
        "gate": gate,
    }


def _gate_statuses(gate: Mapping[str, Any] | None) -> dict[str, str]:
    """The gate's status keyed by the snapshot's id of the judge version it checked."""
    if not gate or "result" not in gate or gate.get("judge") is None:
        return {}
    return {f"j:{gate['judge'].pk}": gate["result"].status}


def _contents(report: Mapping[str, Any], gate: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The table of contents: one entry per section the page shows, in page order (the
    conditions are the template's)."""
    studies = report.get("studies") or {}
    entries = [("summary", "Summary")]
    if gate:
        entries.append(("gate", "Release gate"))
    entries += [("progress", "Progress"), ("agreement", "Agreement with people")]
    if report.get("trend"):
        entries.append(("trend", "Trend"))
    if report.get("confusion"):
        entries.append(("confusion", "Confusion matrices"))
    entries.append(("position", "Position bias"))
    if studies:
        entries.append(("refusal-gap", "Refusal gap"))
        if studies.get("self_family"):
            entries.append(("self-family", "Self-family preference"))
        entries.append(("style", "Style and length"))
        if not (studies.get("criteria") or {}).get("reason"):
            entries.append(("criteria", "Criteria"))
        if studies.get("ppi"):
            entries.append(("ppi", "Few labels, many verdicts"))
        if studies.get("sequential"):
            entries.append(("sequential", "When to stop"))
    entries += [(f"by-{s['dimension']}", f"By {s['label'].lower()}") for s in report["slices"]]
    entries += [("reliability", "Reliability and consensus"), ("rankings", "Model rankings")]
    return [{"id": anchor, "title": title} for anchor, title in entries]


def _gate(audit: Audit, form: GateForm | None) -> dict[str, Any]:
    """The audit's release gate, checked against the latest figures (never recomputed here:
    the page asks for a fresh snapshot itself), and the form to change it."""
    gate = gates.gate_latest(audit)
    judges = selectors.audit_judges(audit)
    if form is None:
        initial = {"rules": "\n".join(gate.rules), "judge": gate.judge} if gate else {}
        form = GateForm(initial=initial, judges=judges)
    out: dict[str, Any] = {
        "gate": gate,
        "form": form,
        "url": reverse("audit_gate", args=[audit.pk]),
    }
    if gate is not None:
        try:
            outcome = gates.gate_evaluate(audit=audit, gate=gate, refresh=False)
        except (GateRuleError, ValueError) as exc:
            out["error"] = str(exc)
        else:
            out["result"] = outcome.result
            out["judge"] = outcome.judge
    return out


# --- the report, from a snapshot's JSON ------------------------------------------------------
