from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from annotation import selectors
from annotation.models import Dataset
from annotation.roles import is_lead


def _require_lead(request: HttpRequest) -> None:
    if not is_lead(request.user):
        raise PermissionDenied("Leads only.")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if is_lead(request.user):
        return redirect("dataset_list")
    return render(request, "annotation/home.html", {})


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    _require_lead(request)
    datasets = selectors.dataset_list_with_counts()
    return render(request, "annotation/dataset_list.html", {"datasets": datasets})


@login_required
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    _require_lead(request)
    dataset = get_object_or_404(Dataset, name=name)
    summary = selectors.dataset_summary(dataset)
    imports = dataset.imports.all()[:20]
    return render(
        request,
        "annotation/dataset_detail.html",
        {"dataset": dataset, "summary": summary, "imports": imports},
    )
