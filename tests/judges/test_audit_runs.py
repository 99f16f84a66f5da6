"""A judge run over an audit's items: asked for by the audit (page, API, command), run by judges
over the audit's pairs in serving order, labelled "audit <id>"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotation.models import Audit, AuditItem
from corpus.models import Dataset, Pair
from judges.models import Judge, JudgeRun, Verdict
from tests.factories import UserFactory
from tests.judges.chat_server import ChatServer
from tests.judges.conftest import picky_judge

MakeJudge = Callable[..., Judge]


@pytest.fixture
def audit(dataset: Dataset) -> Audit:
    """Two of the dataset's four pairs, served Peru first, then 2+2."""
    audit = Audit.objects.create(
        name="two", dataset=dataset, created_by=UserFactory(username="boss"), target_size=2
    )
    for position, text in enumerate(["Capital of Peru?", "What is 2+2?"]):
        AuditItem.objects.create(
            audit=audit,
            pair=Pair.objects.get(dataset=dataset, prompt__text=text),
            stratum="random",
            inclusion_probability=0.5,
            position=position,
        )
    return audit


def serving_order(audit: Audit) -> list[int]:
    return list(audit.items.order_by("position").values_list("pair_id", flat=True))


@pytest.mark.usefixtures("tasks_inline")
def test_a_lead_runs_a_judge_over_the_audit_from_its_page(
    lead_client: Client,
    chat_server: ChatServer,
    make_judge: MakeJudge,
    audit: Audit,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    chat_server.responder = picky_judge
    judge = make_judge(chat_server)

    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("audit_judge_run", args=[audit.pk]), {"judge": judge.pk}
        )

    run = JudgeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("judge_run_detail", args=[run.pk])
    assert (run.scope, run.pair_ids, run.total) == (f"audit {audit.pk}", serving_order(audit), 2)
    assert run.status == JudgeRun.Status.DONE
    judged = set(Verdict.objects.filter(judge=judge).values_list("pair_id", flat=True))
    assert judged == set(serving_order(audit))
    page = lead_client.get(response["Location"]).content.decode()
    assert f"judge-test · audit {audit.pk}" in page


def test_only_a_lead_runs_a_judge_over_an_audit(
    client: Client,
    annotator_client: Client,
    outsider_client: Client,
    chat_server: ChatServer,
    make_judge: MakeJudge,
    audit: Audit,
) -> None:
    judge = make_judge(chat_server)
    page = reverse("audit_judge_run", args=[audit.pk])
    api = reverse("api-audit-judge-runs", args=[audit.pk])

    for browser in (annotator_client, outsider_client):
        assert browser.post(page, {"judge": judge.pk}).status_code == 403
        assert browser.post(api, {"judge": judge.pk}).status_code == 403
    anonymous = client.post(page, {"judge": judge.pk})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client.post(api, {"judge": judge.pk}).status_code == 401
    assert JudgeRun.objects.count() == 0


def test_the_api_runs_a_judge_over_the_audit_and_names_a_bad_judge(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge, audit: Audit
) -> None:
    judge = make_judge(chat_server)
    url = reverse("api-audit-judge-runs", args=[audit.pk])

    started = lead_client.post(
        url, {"judge": judge.pk, "limit": 1}, content_type="application/json"
    )
    unknown = lead_client.post(url, {"judge": 99999}, content_type="application/json")
    missing = lead_client.post(
        reverse("api-audit-judge-runs", args=[audit.pk + 1]), {"judge": judge.pk}
    )

    assert started.status_code == 202
    assert (started.json()["scope"], started.json()["total"]) == (f"audit {audit.pk}", 1)
    assert started.json()["dataset"] == "judge-test"
    assert JudgeRun.objects.get().pair_ids == serving_order(audit)
    assert unknown.status_code == 400 and unknown.json() == {
        "detail": "no judge with id 99999",
        "field": "judge",
    }
    assert missing.status_code == 404
    assert JudgeRun.objects.count() == 1


def test_the_judges_api_points_an_audit_run_to_the_audit(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge, audit: Audit
) -> None:
    judge = make_judge(chat_server)

    response = lead_client.post(
        reverse("api-judge-runs", args=[judge.pk]),
        {"audit": audit.pk},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert f"POST /api/audits/{audit.pk}/judge-runs/" in response.json()["audit"][0]
    assert JudgeRun.objects.count() == 0


def test_the_command_runs_a_judge_over_an_audit(
    chat_server: ChatServer, make_judge: MakeJudge, audit: Audit, capsys: pytest.CaptureFixture[str]
) -> None:
    chat_server.responder = picky_judge
    judge = make_judge(chat_server)

    call_command("run_judge", "--judge", judge.name, "--audit", str(audit.pk))

    run = JudgeRun.objects.get()
    assert (run.scope, run.pair_ids, run.done) == (f"audit {audit.pk}", serving_order(audit), 2)
    out = capsys.readouterr().out
    assert f"run {run.pk}: {judge} on judge-test · audit {audit.pk}, 2 pairs" in out
