"""The judge-version comparison page (leads only): pick two of the subject's judges with a
GET form; summary first (flip rate, agreement deltas, McNemar), then shifted slices, the flip
matrix, the agreement table and an SVG plot of flip rate by slice. Computed on request by
:func:`analysis.compare.judges_compare`, as the API and ``manage.py judge_compare`` do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from analysis import compare, gates, plots
from analysis.metrics.gate import GateRuleError
from analysis.models import GateCheck
from analysis.plots import IntervalRow, ReferenceLine
from analysis.snapshot import Comparison, SliceTest
from analysis.subject_views import subject_views
from annotation.models import Audit
from annotation.selectors import audit_for_lead
from corpus.models import Dataset
from judges.models import Judge

KIND_NAMES = {
    "percent_agreement": "Agreement",
    "cohen_kappa": "Cohen's \u03ba",
    "scott_pi": "Scott's \u03c0",
    "gwet_ac": "Gwet's AC1",
}


class CompareForm(forms.Form):
    """Two of the subject's judges: ``a`` the baseline (v1), ``b`` the candidate (v2)."""

    a = forms.ModelChoiceField(queryset=Judge.objects.none(), label="Baseline (v1)")
    b = forms.ModelChoiceField(queryset=Judge.objects.none(), label="Candidate (v2)")

    def __init__(self, *args: Any, judges: Sequence[Judge], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = [j.pk for j in judges]
        for name in ("a", "b"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = Judge.objects.filter(pk__in=ids).order_by("name", "version")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("a") and data.get("b") and data["a"].pk == data["b"].pk:
            raise forms.ValidationError("Pick two different judges.")
        return data


def _initial(judges: Sequence[Judge]) -> dict[str, int]:
    """Two versions of one judge when there are (the newest two), else the first two."""
    by_name: dict[str, list[Judge]] = {}
    for judge in judges:
        by_name.setdefault(judge.name, []).append(judge)
    for versions in by_name.values():
        if len(versions) >= 2:
            versions = sorted(versions, key=lambda j: j.version)
            return {"a": versions[-2].pk, "b": versions[-1].pk}
    return {"a": judges[0].pk, "b": judges[1].pk} if len(judges) >= 2 else {}


def _compare(
    request: HttpRequest, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> HttpResponse:
    judges = compare.compare_judges(dataset=dataset, audit=audit)
    asked = "a" in request.GET or "b" in request.GET
    form = CompareForm(request.GET if asked else _initial(judges), judges=judges)
    context: dict[str, Any] = {
        "audit": audit,
        "dataset": dataset,
        "subject_name": audit.name if audit is not None else dataset.name if dataset else "",
        "form": form,
        "judges": judges,
        "report_url": reverse("audit_report", args=[audit.pk])
        if audit is not None
        else reverse("dataset_report", args=[dataset.name if dataset else ""]),
        "api_url": reverse("api-audit-compare", args=[audit.pk])
        if audit is not None
        else reverse("api-dataset-compare", args=[dataset.name if dataset else ""]),
    }
    status = 200
    if len(judges) < 2:
        context["too_few"] = True
    elif form.is_valid():
        data = compare.judges_compare(
            first=form.cleaned_data["a"],
            second=form.cleaned_data["b"],
            dataset=dataset,
            audit=audit,
        )
        context["data"] = data
        context["view"] = compare_model(data)
        context["api_url"] += f"?a={data.first.id}&b={data.second.id}"
        if audit is not None:
            context["gate_offer"] = _gate_offer(audit, form.cleaned_data["b"])
            context["gate_in_force"] = _gate_in_force(
                audit, form.cleaned_data["b"], form.cleaned_data["a"]
            )
    elif asked:
        status = 400
    return render(request, "analysis/compare.html", context, status=status)


audit_compare, dataset_compare = subject_views(_compare)


def _gate_in_force(audit: Audit, candidate: Judge, first: Judge) -> dict[str, Any] | None:
    """The gate in force when it is pinned to the candidate itself: its answer as the report
    gives it (drift rules against the default baseline, the previous version), from the latest
    figures (not recomputed here)."""
    gate = gates.gate_latest(audit)
    if gate is None or gate.judge_fingerprint != candidate.fingerprint:
        return None
    try:
        outcome = gates.gate_evaluate(audit=audit, gate=gate, refresh=False)
    except (ValueError, GateRuleError) as exc:
        return {"gate": gate, "error": str(exc)}
    baseline = outcome.baseline or gates.drift_baseline(audit, candidate)
    return {
        "gate": gate,
        "result": outcome.result,
        "baseline": baseline,
        "other_baseline": baseline is not None and baseline.pk != first.pk,
    }


def _gate_offer(audit: Audit, candidate: Judge) -> dict[str, Any] | None:
    """The gate in force, when it is pinned to another version than the candidate: its rules
    can be checked for the candidate ("check these rules for v2"), with the checks recorded."""
    gate = gates.gate_latest(audit)
    if gate is None or gate.judge_fingerprint == candidate.fingerprint:
        return None
    checks = GateCheck.objects.filter(gate=gate, judge=candidate).select_related("baseline")
    return {
        "gate": gate,
        "candidate": candidate,
        "same_judge": gate.judge.name == candidate.name,
        "checks": list(checks[:5]),
    }


@login_required
@require_POST
def audit_gate_candidate(request: HttpRequest, pk: int) -> HttpResponse:
    """Check the gate's rules for the compared candidate (``b``), drift rules against ``a``,
    and record the answer pinned to the candidate's fingerprint; back to the comparison."""
    audit = audit_for_lead(request.user, pk)
    judges = compare.compare_judges(audit=audit)
    form = CompareForm(request.POST, judges=judges)
    back = reverse("audit_compare", args=[audit.pk])
    if not form.is_valid():
        messages.error(request, "Pick the two judges compared.")
        return redirect(back)
    a, b = form.cleaned_data["a"], form.cleaned_data["b"]
    back += "?" + urlencode({"a": a.pk, "b": b.pk}) + "#gate-check"
    try:
        check = gates.gate_check_record(
            audit=audit, candidate=b, baseline=a, created_by=request.user
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    messages.success(request, f"The gate's rules for {b}: {check.status}.")
    return redirect(back)


def _pct(value: float | None) -> str:
    return "\u2014" if value is None else f"{100 * value:.1f}%"


def _slice_row(data: Comparison, row: SliceTest) -> dict[str, Any]:
    ci = row.flip_rate_ci
    return {
        "name": data.slice_name(row),
        "n": row.n,
        "flip_rate": _pct(row.flip_rate),
        "ci": f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "",
        "q_flip": plots.number_text(row.q_flip) if row.q_flip is not None else "",
        "agreement": (
            f"{_pct(row.agreement_first)} \u2192 {_pct(row.agreement_second)}"
            if row.agreement_first is not None
            else ""
        ),
        "q_agreement": (plots.number_text(row.q_agreement) if row.q_agreement is not None else ""),
        "shifted": row.shifted,
        "why": ", ".join(row.why),
        "tested": row.tested,
    }


def compare_model(data: Comparison) -> dict[str, Any]:
    """What the template shows, as strings and an SVG (no figure is computed here)."""
    figures = data.figures
    agreement = figures.agreement
    deltas = [
        {
            "name": KIND_NAMES.get(kind, kind),
            "first": plots.result_text(entry.first),
            "second": plots.result_text(entry.second),
            "delta": plots.result_text(entry.delta),
        }
        for kind, entry in (agreement.kinds.items() if agreement else ())
    ]
    rows = [_slice_row(data, row) for row in figures.slices]
    overall = figures.flip_rate
    bars = [
        IntervalRow(
            label=data.slice_name(row),
            value=row.flip_rate,
            ci=row.flip_rate_ci,
            n=row.n,
            colour=plots.PALETTE[1] if row.shifted else plots.PALETTE[0],
        )
        for row in sorted(figures.slices, key=lambda r: (r.slice, r.value))
    ]
    chart = (
        plots.interval_chart(
            bars,
            title="Flip rate by slice",
            references=[ReferenceLine.of("overall flip rate", overall)],
            domain=(0.0, 0.2),
            label_width=220,
        )
        if bars
        else None
    )
    labels = figures.flip_matrix.labels
    matrix = [
        {"label": label, "counts": counts}
        for label, counts in zip(labels, figures.flip_matrix.counts, strict=True)
    ]
    orders = []
    for key in ("first", "second"):
        entry = getattr(figures.orders, key)
        if not entry:
            continue
        agree = entry.agreement
        orders.append(
            {
                "label": data.judge(key).label,
                "both": plots.result_text(agree.both_orders) if agree else "",
                "original": plots.result_text(agree.original_order) if agree else "",
                "swapped": plots.result_text(agree.swapped_order) if agree else "",
                "consistency": plots.result_text(entry.position_consistency.all),
            }
        )
    return {
        "flip_rate": plots.result_text(overall),
        "flips": overall.details.get("flips"),
        "change": compare.change_sentence(data),
        "deltas": deltas,
        "mcnemar": agreement.mcnemar if agreement else None,
        "shifted": [r for r in rows if r["shifted"]],
        "rows": rows,
        "chart": chart,
        "labels": labels,
        "matrix": matrix,
        "orders": orders,
        "level": round(100 * figures.settings.level),
    }
