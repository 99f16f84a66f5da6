"""The judges REST API: versions, runs and their status, for leads only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from corpus.models import Dataset
from judges import services
from judges.models import Judge, JudgeRun, Verdict
from tests.judges.chat_server import ChatServer
from tests.judges.conftest import picky_judge

MakeJudge = Callable[..., Judge]


def body(server: ChatServer, **extra: Any) -> dict[str, Any]:
    return {
        "name": "api-judge",
        "preset": "mt-bench",
        "model_id": "qwen2.5-7b-instruct",
        "base_url": server.base_url,
        "seed": 5,
        **extra,
    }


def test_it_creates_a_version_and_returns_the_same_one_for_the_same_config(
    lead_client: Client, chat_server: ChatServer
) -> None:
    url = reverse("api-judges")

    created = lead_client.post(url, body(chat_server), content_type="application/json")
    same = lead_client.post(url, body(chat_server), content_type="application/json")
    changed = lead_client.post(
        url, body(chat_server, temperature=0.3), content_type="application/json"
    )

    judge = Judge.objects.get(name="api-judge", version=1)
    assert created.status_code == 201
    assert created.json()["fingerprint"] == judge.fingerprint
    assert created.json()["config"]["template_name"] == "mt_bench_pair_v2"
    assert same.status_code == 200 and same.json()["id"] == judge.pk
    assert changed.status_code == 201 and changed.json()["version"] == 2


def test_it_copies_a_stored_config_with_one_change(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge
) -> None:
    original = make_judge(chat_server, name="orig")

    response = lead_client.post(
        reverse("api-judges"),
        {"name": "orig", "config": original.config, "max_tokens": 99},
        content_type="application/json",
    )

    assert response.status_code == 201
    assert (response.json()["version"], response.json()["max_tokens"]) == (2, 99)
    assert response.json()["config"]["template_user"] == original.config["template_user"]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"api_key_env": "sk-abc"}, "api_key_env", "NAME of an environment variable"),
        ({"config": {"colour": "red"}}, "config.colour", "unknown field"),
        ({"config": {"temperature": 5}}, "config.temperature", "must be at most 2, got 5"),
        ({"preset": "arena"}, "preset", "is not a valid choice"),
        ({"temperature": 5}, "temperature", "less than or equal to 2"),
        ({"timeout_s": 0}, "timeout_s", "must be greater than 0"),
    ],
)
def test_it_refuses_a_bad_judge_naming_the_field(
    lead_client: Client,
    chat_server: ChatServer,
    extra: dict[str, Any],
    field: str,
    message: str,
) -> None:
    response = lead_client.post(
        reverse("api-judges"), body(chat_server, **extra), content_type="application/json"
    )

    errors = response.json()
    for key in field.split("."):  # a value inside `config` is named by its path
        errors = errors[key]
    assert response.status_code == 400
    assert message in " ".join(errors)
    assert Judge.objects.count() == 0


@pytest.mark.usefixtures("tasks_inline")
def test_it_starts_a_run_and_reports_its_status_and_counts(
    lead_client: Client,
    chat_server: ChatServer,
    make_judge: MakeJudge,
    dataset: Dataset,
    django_capture_on_commit_callbacks: Any,
) -> None:
    chat_server.responder = picky_judge
    judge = make_judge(chat_server)

    with django_capture_on_commit_callbacks(execute=True):
        started = lead_client.post(
            reverse("api-judge-runs", args=[judge.pk]),
            {"dataset": dataset.name},
            content_type="application/json",
        )
    run_id = started.json()["id"]
    status = lead_client.get(reverse("api-judge-run-detail", args=[run_id]))
    detail = lead_client.get(reverse("api-judge-detail", args=[judge.pk]))

    assert started.status_code == 202
    assert status.json()["status"] == "done"
    assert (status.json()["done"], status.json()["total"]) == (4, 4)
    assert status.json()["counts"]["failed_parses"] == 2
    assert status.json()["counts"]["calls"] == 8
    assert detail.json()["stats"] == {
        "verdicts": 4,
        "orders_parsed": 6,
        "failed_parses": 2,
        "call_errors": 0,
        "inconsistent": 1,
        "failed_parse_rate": 0.25,
    }
    assert Verdict.objects.filter(judge=judge).count() == 4


def test_it_explains_a_run_it_cannot_start(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    judge = make_judge(chat_server)
    url = reverse("api-judge-runs", args=[judge.pk])

    unknown = lead_client.post(url, {"dataset": "nope"}, content_type="application/json")
    nothing = lead_client.post(url, {}, content_type="application/json")

    assert unknown.status_code == 400 and unknown.json() == {"dataset": ["no dataset named 'nope'"]}
    assert nothing.status_code == 400 and "dataset" in nothing.json()
    assert JudgeRun.objects.count() == 0


def test_it_stops_a_run(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=make_judge(chat_server), dataset=dataset)

    response = lead_client.post(reverse("api-judge-run-stop", args=[run.pk]))

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["stop_requested"]) == ("stopped", True)


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_is_for_leads_only(
    request: pytest.FixtureRequest,
    persona: str,
    chat_server: ChatServer,
    make_judge: MakeJudge,
    dataset: Dataset,
) -> None:
    judge = make_judge(chat_server)
    run = services.judge_run_create(judge=judge, dataset=dataset)
    client: Client = request.getfixturevalue(persona)

    responses = [
        client.get(reverse("api-judges")),
        client.post(reverse("api-judges"), body(chat_server), content_type="application/json"),
        client.get(reverse("api-judge-detail", args=[judge.pk])),
        client.post(
            reverse("api-judge-runs", args=[judge.pk]),
            {"dataset": dataset.name},
            content_type="application/json",
        ),
        client.get(reverse("api-judge-run-detail", args=[run.pk])),
        client.post(reverse("api-judge-run-stop", args=[run.pk])),
    ]

    assert [r.status_code for r in responses] == [403] * 6
    assert Judge.objects.count() == 1 and JudgeRun.objects.count() == 1
    run.refresh_from_db()
    assert run.stop_requested is False


def test_anonymous_callers_are_refused(client: Client, db: None) -> None:
    assert client.get(reverse("api-judges")).status_code in (401, 403)
