"""The dataset pages (leads only). What later stages know of a dataset (verdicts, response
classes) is not read here: those cards are fragments the judges app serves, loaded by htmx."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from config.roles import object_for_lead, require_lead
from corpus import selectors
from corpus.models import Dataset


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    require_lead(request.user)
    datasets = selectors.dataset_list_with_counts()
    return render(request, "corpus/dataset_list.html", {"datasets": datasets})


@login_required
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    dataset = object_for_lead(request.user, Dataset, name=name)
    context = {
        "dataset": dataset,
        "summary": selectors.dataset_summary(dataset),
        "imports": dataset.imports.all()[:20],
    }
    return render(request, "corpus/dataset_detail.html", context)
