"""A dataset with pairs but no votes or verdicts still gets a report (issue 15, item 1).

Repro: a generic file with only pair_id, prompt, response_a, response_b; its report used to
fail with "cannot reshape array of size 0" (500 inline, "pending" forever with Celery).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from analysis import services
from analysis.models import MetricSnapshot
from corpus.importers.services import import_jobs_create
from corpus.models import Dataset, ImportJob

CSV = b"pair_id,prompt,response_a,response_b\nc-1,Hello?,Hi.,Hey.\nc-2,Why?,Because.,No.\n"


@pytest.fixture
def bare(lead: User, django_capture_on_commit_callbacks: Callable[..., Any]) -> Dataset:
    upload = SimpleUploadedFile("bare.csv", CSV)
    with django_capture_on_commit_callbacks(execute=True):
        [job] = import_jobs_create(dataset_name="bare", fmt="generic", files=[upload], user=lead)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE, job.errors
    return Dataset.objects.get(name="bare")


@pytest.mark.usefixtures("tasks_inline")
def test_a_dataset_without_votes_or_verdicts_gets_a_report(
    bare: Dataset, lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    snapshot = services.snapshot_compute(dataset=bare, n_boot=50)
    assert snapshot.label_count == 0

    with django_capture_on_commit_callbacks(execute=True):
        page = lead_client.get("/reports/dataset/bare/")
        api = lead_client.get("/api/datasets/bare/report/")
        recompute = lead_client.post("/api/datasets/bare/report/recompute/")
    assert page.status_code == 200 and "Agreement report" in page.content.decode()
    assert api.status_code == 200 and api.json()["snapshot"]["id"] is not None
    assert recompute.status_code == 202
    assert MetricSnapshot.objects.filter(dataset=bare).count() == 2  # the forced recompute
