"""Classifying from the dataset page and the API: leads only, progress, the chart, the counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from corpus.models import Dataset
from judges.models import ClassificationRun, ResponseClassification, ResponseFeatures
from tests.factories import ClassificationRunFactory, DatasetFactory
from tests.judges.test_classification_runs import make_xstest_dataset


@pytest.fixture
def xstest(db: None) -> Dataset:
    return make_xstest_dataset()


def start_url(dataset: Dataset) -> str:
    return reverse("classification_run_start", args=[dataset.name])


def judging_card(client: Client, dataset: Dataset) -> str:
    """The judges' card of the dataset page, as htmx loads it there."""
    url = reverse("dataset_judging", args=[dataset.name])
    return client.get(url, headers={"HX-Request": "true"}).content.decode()


@pytest.fixture
def classified(
    lead_client: Client, xstest: Dataset, django_capture_on_commit_callbacks: Callable[..., Any]
) -> ClassificationRun:
    """The lead pressed "Classify responses" and the queued task ran after the commit."""
    with django_capture_on_commit_callbacks(execute=True):
        lead_client.post(start_url(xstest))
    return ClassificationRun.objects.get(dataset=xstest)


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tasks_inline")
def test_a_lead_classifies_from_the_dataset_page_and_lands_on_the_run(
    lead_client: Client, xstest: Dataset, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    page = lead_client.get(reverse("dataset_detail", args=[xstest.name])).content.decode()
    card = judging_card(lead_client, xstest)
    assert f'hx-get="{reverse("dataset_judging", args=[xstest.name])}"' in page
    assert start_url(xstest) in card and "Classify responses" in card
    assert "No response of this dataset has a refusal class yet." in card

    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = lead_client.post(start_url(xstest))

    run = ClassificationRun.objects.get(dataset=xstest)
    assert len(queued) == 1
    assert response.status_code == 302
    assert response["Location"] == reverse("classification_run_detail", args=[run.pk])
    assert run.created_by is not None and run.created_by.username == "lena-lead"
    assert run.status == ClassificationRun.Status.DONE  # the task ran after the commit
    assert ResponseClassification.objects.filter(classifier=run.classifier).count() == 5
    assert ResponseFeatures.objects.filter(extractor=run.extractor).count() == 5


@pytest.mark.usefixtures("tasks_inline")
def test_the_run_page_shows_the_counts_per_class_as_a_chart_when_done(
    lead_client: Client, classified: ClassificationRun
) -> None:
    run = classified

    response = lead_client.get(reverse("classification_run_detail", args=[run.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert '<svg class="class-chart"' in page
    assert 'class="class-bar class-bar-normal"' in page
    assert "<title>Normal: 3 (60.0 %)</title>" in page
    assert ">Ethical refusal</text>" in page
    assert "hx-get" not in page  # a finished run is not polled
    assert run.classifier[:12] in page
    assert "style=" not in page  # the CSP forbids inline styles


@pytest.mark.usefixtures("tasks_inline")
def test_the_dataset_page_shows_the_current_classes(
    lead_client: Client, xstest: Dataset, classified: ClassificationRun
) -> None:
    page = judging_card(lead_client, xstest)

    assert "5 of 6 responses classified" in page
    assert '<svg class="class-chart"' in page and "<title>Normal: 3 (60.0 %)</title>" in page
    assert classified.classifier[:12] in page
    assert reverse("classification_run_detail", args=[classified.pk]) in page


def test_an_active_run_is_polled_and_htmx_gets_only_the_fragment(
    lead_client: Client, xstest: Dataset
) -> None:
    run = ClassificationRunFactory(dataset=xstest, status="running", total=40, done=12)
    url = reverse("classification_run_detail", args=[run.pk])

    full = lead_client.get(url).content.decode()
    fragment = lead_client.get(url, headers={"HX-Request": "true"}).content.decode()

    assert f'hx-get="{url}"' in full and f'href="{url}"' in full  # works without JavaScript
    assert "<html" in full and "<html" not in fragment
    assert fragment.lstrip().startswith('<div id="run-progress"')
    assert '<progress value="12" max="40">' in fragment and "12 of 40" in fragment
    assert "class-chart" not in fragment


def test_a_second_click_goes_to_the_run_already_at_work(
    lead_client: Client, xstest: Dataset
) -> None:
    busy = ClassificationRunFactory(dataset=xstest, status="running")

    response = lead_client.post(start_url(xstest))

    assert response["Location"] == reverse("classification_run_detail", args=[busy.pk])
    assert ClassificationRun.objects.count() == 1
    assert ResponseClassification.objects.count() == 0


def test_a_bad_setting_comes_back_as_a_message_on_the_dataset_page(
    lead_client: Client, xstest: Dataset, settings: Any
) -> None:
    settings.REFUSAL_LABEL_MAP = '{"LABEL_0": "normal"}'

    response = lead_client.post(start_url(xstest), follow=True)

    assert response.redirect_chain[-1][0] == reverse("dataset_detail", args=[xstest.name])
    assert "REFUSAL_MODEL_DIR is empty" in response.content.decode()
    assert ClassificationRun.objects.count() == 0


def test_it_escapes_what_a_run_reports(lead_client: Client, xstest: Dataset) -> None:
    run = ClassificationRunFactory(
        dataset=xstest, status="failed", error="OSError: <script>alert(1)</script>"
    )

    page = lead_client.get(reverse("classification_run_detail", args=[run.pk])).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_keeps_everyone_but_leads_out(
    request: pytest.FixtureRequest, persona: str, xstest: Dataset
) -> None:
    client: Client = request.getfixturevalue(persona)
    run = ClassificationRunFactory(dataset=xstest)

    started = client.post(start_url(xstest))
    shown = client.get(reverse("classification_run_detail", args=[run.pk]))

    assert started.status_code == 403 and shown.status_code == 403
    assert ClassificationRun.objects.count() == 1
    assert ResponseClassification.objects.count() == 0


def test_it_sends_anonymous_visitors_to_log_in(client: Client, xstest: Dataset) -> None:
    run = ClassificationRunFactory(dataset=xstest)

    started = client.post(start_url(xstest))
    shown = client.get(reverse("classification_run_detail", args=[run.pk]))

    for response in (started, shown):
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert ClassificationRun.objects.count() == 1


def test_starting_needs_a_post(lead_client: Client, xstest: Dataset) -> None:
    assert lead_client.get(start_url(xstest)).status_code == 405
    assert ClassificationRun.objects.count() == 0


# --- API ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("tasks_inline")
def test_a_lead_starts_a_run_through_the_api_and_reads_it_back(
    lead_client: Client, xstest: Dataset, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = lead_client.post(reverse("api-dataset-classify", args=[xstest.name]))

    assert response.status_code == 202 and len(queued) == 1
    body = response.json()
    assert body["dataset"] == "xstest-sample" and body["status"] == "pending"
    run = ClassificationRun.objects.get(pk=body["id"])
    assert run.status == ClassificationRun.Status.DONE  # the task ran after the commit
    assert ResponseClassification.objects.filter(classifier=run.classifier).count() == 5

    shown = lead_client.get(reverse("api-classification-run-detail", args=[run.pk]))

    assert shown.status_code == 200
    body = shown.json()
    assert body["status"] == "done" and (body["done"], body["total"]) == (5, 5)
    assert body["classifier"] == run.classifier and body["extractor"] == run.extractor
    counts = body["counts"]
    assert counts["classes"]["normal"] == 3 and sum(counts["classes"].values()) == 5
    assert counts["classified"] == 5 and counts["without_text"] == 1


def test_the_api_says_what_is_wrong(lead_client: Client, db: None, settings: Any) -> None:
    empty = DatasetFactory(name="empty")

    no_texts = lead_client.post(reverse("api-dataset-classify", args=[empty.name]))
    unknown = lead_client.post(reverse("api-dataset-classify", args=["nope"]))
    settings.REFUSAL_LABEL_MAP = '{"LABEL_0": "normal"}'
    misconfigured = lead_client.post(reverse("api-dataset-classify", args=[empty.name]))

    assert no_texts.status_code == 400
    assert no_texts.json() == {"dataset": ["dataset empty has no response texts to classify"]}
    assert unknown.status_code == 404
    assert misconfigured.status_code == 503
    assert "REFUSAL_MODEL_DIR is empty" in misconfigured.json()["detail"]
    assert ClassificationRun.objects.count() == 0


def test_the_api_is_for_leads_only(
    annotator_client: Client, client: Client, xstest: Dataset
) -> None:
    run = ClassificationRunFactory(dataset=xstest)
    start = reverse("api-dataset-classify", args=[xstest.name])
    detail = reverse("api-classification-run-detail", args=[run.pk])

    assert annotator_client.post(start).status_code == 403
    assert annotator_client.get(detail).status_code == 403
    assert client.post(start).status_code == 401
    assert client.get(detail).status_code == 401
    assert ClassificationRun.objects.count() == 1
    assert ResponseClassification.objects.count() == 0
