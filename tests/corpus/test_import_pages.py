"""The upload page, the job page and the import API: leads only, same code path as the command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from corpus.importers.progress import ImportProgress
from corpus.models import Dataset, HumanVote, ImportJob, Pair
from judges.models import Verdict

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NATURAL = DATA / "llmbar" / "Natural.json"
PANDALM = DATA / "pandalm"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(path: Path, name: str | None = None, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(
        name or path.name, content if content is not None else path.read_bytes()
    )


def test_it_shows_the_upload_page_to_leads_only(
    client: Client, lead_client: Client, annotator_client: Client, outsider_client: Client
) -> None:
    url = reverse("import_new")
    page = lead_client.get(url)
    assert page.status_code == 200
    assert b'name="data_files"' in page.content and b"mt-bench" in page.content
    assert annotator_client.get(url).status_code == 403
    assert outsider_client.get(url).status_code == 403
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and reverse("login") in anonymous["Location"]
    assert annotator_client.post(url, {"dataset": "x", "format": "llmbar"}).status_code == 403
    assert not Dataset.objects.exists()


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_an_uploaded_file_and_shows_the_result(
    lead: User, lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("import_new"),
            {"dataset": "llmbar-natural", "format": "llmbar", "data_files": [upload(NATURAL)]},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "import_job", args=[job.pk]
    )
    assert (job.status, job.created_by, job.dataset.name) == (
        ImportJob.Status.DONE,
        lead,
        "llmbar-natural",
    )
    size = len(json.loads(NATURAL.read_text()))
    assert Pair.objects.filter(dataset__name="llmbar-natural").count() == size
    assert HumanVote.objects.filter(import_job=job).count() == size

    page = lead_client.get(response["Location"])
    assert page.status_code == 200
    assert b"done" in page.content and b"New pairs" in page.content
    assert f">{size}<".encode() in page.content
    assert b"hx-trigger" not in page.content  # finished: no more polling
    assert b"<script>" not in page.content and b"style=" not in page.content


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_judge_files_after_the_test_set_uploaded_with_them(
    lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    files = [
        upload(PANDALM / name)
        for name in (
            "gpt-3.5-turbo-testset-v1.json",
            "testset-v1.json",
            "pandalm-7b-testset-v1.json",
        )
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("import_new"), {"dataset": "pandalm", "format": "pandalm", "data_files": files}
        )
    assert response.status_code == 302 and response["Location"] == reverse("import_list")
    assert set(ImportJob.objects.values_list("status", flat=True)) == {ImportJob.Status.DONE}
    assert Verdict.objects.filter(pair__dataset__name="pandalm").count() == 2 * 999
    listing = lead_client.get(reverse("import_list"))
    assert listing.status_code == 200 and listing.content.count(b"badge ok") == 3


@pytest.mark.usefixtures("tasks_inline")
def test_it_lists_a_refused_upload_with_its_errors(
    lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    items = json.loads(NATURAL.read_text())
    items[2]["label"] = 3
    content = json.dumps(items, indent=2).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("import_new"),
            {
                "dataset": "broken",
                "format": "llmbar",
                "data_files": [upload(NATURAL, content=content)],
            },
        )
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert not Pair.objects.exists()
    page = lead_client.get(response["Location"])
    assert b"refused" in page.content
    assert (
        b"Natural.json:" in page.content and b"label: expected one of 1, 2, got 3" in page.content
    )


def test_it_serves_the_progress_fragment_to_htmx_while_running(lead_client: Client) -> None:
    dataset = Dataset.objects.create(name="running")
    job = ImportJob.objects.create(
        dataset=dataset, format="arena", filename="big.csv", status=ImportJob.Status.RUNNING
    )
    ImportProgress(job).publish(2500, 10000)

    fragment = lead_client.get(reverse("import_job", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert b'hx-trigger="every 1s"' in fragment.content
    assert b'<progress value="25" max="100">' in fragment.content
    assert b"2,500 of ~10,000 rows" in fragment.content
    full = lead_client.get(reverse("import_job", args=[job.pk]))
    assert b"<html" in full.content and b"big.csv" in full.content


def test_it_refuses_a_bad_upload_form(lead_client: Client) -> None:
    response = lead_client.post(
        reverse("import_new"), {"dataset": "not a slug", "format": "nope", "data_files": []}
    )
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not ImportJob.objects.exists()


def test_it_runs_the_import_task_once_however_often_it_is_delivered(lead: User) -> None:
    from corpus.tasks import import_run

    dataset = Dataset.objects.create(name="task")
    job = ImportJob(dataset=dataset, format="llmbar", filename="Natural.json")
    job.upload.save("Natural.json", upload(NATURAL), save=True)
    import_run([job.pk])
    import_run([job.pk])
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert Pair.objects.filter(dataset=dataset).count() == len(json.loads(NATURAL.read_text()))
    assert HumanVote.objects.filter(import_job=job).count() == job.counts["votes_created"]


def test_it_enqueues_the_import_only_after_the_jobs_are_committed(
    lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead_client.post(
            reverse("import_new"),
            {"dataset": "later", "format": "llmbar", "data_files": [upload(NATURAL)]},
        )
    assert len(callbacks) == 1
    assert ImportJob.objects.get().status == ImportJob.Status.PENDING
    assert not Pair.objects.exists()


# API ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_through_the_api_with_a_token(
    lead_token_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    api = lead_token_client
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            reverse("api_import_collection"),
            {"format": "llmbar", "dataset": "via-api", "file": upload(NATURAL)},
        )
    assert response.status_code == 202
    created = response.json()
    assert created["filename"] == "Natural.json" and created["status"] == "pending"
    status = api.get(created["url"]).json()
    assert status["status"] == "done" and status["dataset"] == "via-api"
    assert status["counts"]["pairs_created"] == Pair.objects.filter(dataset__name="via-api").count()
    assert status["percent"] == 100 and status["errors"] == []


@pytest.mark.usefixtures("tasks_inline")
def test_it_imports_several_files_posted_together_through_the_api(
    lead_client: Client, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    files = [upload(PANDALM / "pandalm-7b-testset-v1.json"), upload(PANDALM / "testset-v1.json")]
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("api_import_collection"),
            {"format": "pandalm", "dataset": "pandalm", "file": files},
        )
    assert response.status_code == 202
    assert sorted(j["filename"] for j in response.json()) == [
        "pandalm-7b-testset-v1.json",
        "testset-v1.json",
    ]
    listing = lead_client.get(reverse("api_import_collection")).json()
    assert {j["status"] for j in listing} == {"done"}
    assert Verdict.objects.filter(pair__dataset__name="pandalm").count() == 999


def test_it_refuses_the_api_to_non_leads_and_bad_requests(
    client: Client, lead_client: Client, annotator_client: Client
) -> None:
    url = reverse("api_import_collection")
    body = {"format": "llmbar", "dataset": "x", "file": upload(NATURAL)}
    assert annotator_client.post(url, body).status_code == 403
    assert client.post(url, {"format": "llmbar"}).status_code in (401, 403)
    bad = lead_client.post(url, {"format": "csv-please", "dataset": "x", "file": upload(NATURAL)})
    assert bad.status_code == 400 and "format" in bad.json()
    assert not ImportJob.objects.exists()
