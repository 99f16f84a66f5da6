"""Import pages for leads: upload files, watch a job's progress, read why a file was refused."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from config.roles import object_for_lead, require_lead
from corpus.importers import selectors
from corpus.importers.formats import FORMATS
from corpus.importers.forms import ImportUploadForm
from corpus.importers.services import ImportRequestError, import_jobs_create
from corpus.models import Dataset, ImportJob


@login_required
def import_new(request: HttpRequest) -> HttpResponse:
    require_lead(request.user)
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                jobs = import_jobs_create(
                    dataset_name=form.cleaned_data["dataset"],
                    fmt=form.cleaned_data["format"],
                    files=form.cleaned_data["data_files"],
                    answers=form.cleaned_data["answers"],
                    questions=form.cleaned_data["questions"],
                    baseline=form.cleaned_data["baseline"],
                    user=request.user,
                )
            except ImportRequestError as exc:
                form.add_error(None, str(exc))
            else:
                if len(jobs) == 1:
                    return redirect("import_job", pk=jobs[0].pk)
                messages.info(request, f"{len(jobs)} files queued for import.")
                return redirect("import_list")
    else:
        form = ImportUploadForm(initial={"dataset": request.GET.get("dataset", "")})
    context = {
        "form": form,
        "formats": FORMATS.values(),
        "datasets": Dataset.objects.order_by("name").values_list("name", flat=True),
    }
    return render(request, "corpus/importers/upload.html", context)


@login_required
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = object_for_lead(request.user, ImportJob.objects.select_related("dataset"), pk=pk)
    context = selectors.import_job_status(job)
    template = "corpus/importers/job_detail.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#status"
    return render(request, template, context)


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    require_lead(request.user)
    rows = [selectors.import_job_status(job) for job in selectors.import_jobs_recent()]
    context = {"rows": rows, "active": any(row["active"] for row in rows)}
    template = "corpus/importers/job_list.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#jobs"
    return render(request, template, context)
