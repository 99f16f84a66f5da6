"""The report's refusal-instrument fragment (analysis.refusal_instrument): loaded by the audit
and dataset report pages (htmx, one include line in analysis/report.html), or on its own."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from analysis.refusal_instrument import instrument_compute, instrument_inputs, instrument_model
from annotation.selectors import audit_for_lead
from config.roles import object_for_lead
from corpus.models import Dataset


def _render(request: HttpRequest, context: dict) -> HttpResponse:
    template = "analysis/refusal_instrument.html"
    if request.headers.get("HX-Request") == "true":
        template += "#instrument"
    return render(request, template, context)


@login_required
def audit_refusal_instrument(request: HttpRequest, pk: int) -> HttpResponse:
    audit = audit_for_lead(request.user, pk)
    out = instrument_compute(instrument_inputs(audit=audit))
    return _render(request, {"audit": audit, "subject": audit.name, "m": instrument_model(out)})


@login_required
def dataset_refusal_instrument(request: HttpRequest, name: str) -> HttpResponse:
    dataset = object_for_lead(request.user, Dataset, name=name)
    out = instrument_compute(instrument_inputs(dataset=dataset))
    return _render(
        request, {"dataset": dataset, "subject": dataset.name, "m": instrument_model(out)}
    )
