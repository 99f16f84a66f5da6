"""The judges pages: leads list versions, start a run and watch it; nobody else gets in."""

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

MakeJudge = Callable[..., Judge]


@pytest.mark.parametrize(
    ("url_name", "args"),
    [
        ("judge_list", []),
        ("judge_detail", ["judge"]),
        ("judge_run_detail", ["run"]),
    ],
)
@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_keeps_everyone_but_leads_out(
    request: pytest.FixtureRequest,
    persona: str,
    url_name: str,
    args: list[str],
    judge: Judge,
    dataset: Dataset,
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    objects = {"judge": judge.pk, "run": run.pk}
    client: Client = request.getfixturevalue(persona)

    response = client.get(reverse(url_name, args=[objects[a] for a in args]))

    assert response.status_code == 403


def test_it_sends_anonymous_visitors_to_log_in(client: Client, db: None) -> None:
    response = client.get(reverse("judge_list"))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_annotator_cannot_start_a_run(
    annotator_client: Client, judge: Judge, dataset: Dataset, chat_server: ChatServer
) -> None:
    response = annotator_client.post(
        reverse("judge_run_start"), {"judge": judge.pk, "dataset": dataset.name}
    )

    assert response.status_code == 403
    assert JudgeRun.objects.count() == 0 and chat_server.requests == []


def test_it_lists_versions_with_verdict_counts_and_failed_parse_rate(
    lead_client: Client, judge: Judge, dataset: Dataset
) -> None:
    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    response = lead_client.get(reverse("judge_list"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "picky v1" in page
    assert judge.fingerprint[:12] in page
    row = next(s for s in response.context["judges"] if s.judge.pk == judge.pk)
    assert (row.verdicts, row.orders_ok, row.orders_failed, row.inconsistent) == (4, 6, 2, 1)
    assert row.failed_parse_rate == pytest.approx(2 / 8)
    assert "(25%)" in page


@pytest.mark.usefixtures("tasks_inline")
def test_a_lead_starts_a_run_and_lands_on_its_page(
    lead_client: Client,
    judge: Judge,
    dataset: Dataset,
    chat_server: ChatServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(
            reverse("judge_run_start"), {"judge": judge.pk, "dataset": dataset.name, "limit": 3}
        )

    run = JudgeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("judge_run_detail", args=[run.pk])
    assert (run.status, run.total, run.done, run.created_by.username) == (
        "done",
        3,
        3,
        "lena-lead",
    )
    assert Verdict.objects.filter(judge=judge).count() == 3 and len(chat_server.requests) == 6


def test_the_run_form_explains_what_is_wrong(
    lead_client: Client, judge: Judge, dataset: Dataset
) -> None:
    services.judge_run_create(judge=judge, dataset=dataset)  # still pending

    busy = lead_client.post(
        reverse("judge_run_start"), {"judge": judge.pk, "dataset": dataset.name}
    )
    empty = lead_client.post(reverse("judge_run_start"), {"judge": judge.pk})

    assert busy.status_code == 400
    assert "is already running on this data" in busy.content.decode()
    assert empty.status_code == 400
    assert "Choose a dataset." in empty.content.decode()
    assert JudgeRun.objects.count() == 1


def test_the_run_page_polls_while_running_and_stops_polling_when_done(
    lead_client: Client, judge: Judge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    url = reverse("judge_run_detail", args=[run.pk])

    pending = lead_client.get(url)
    fragment = lead_client.get(url, headers={"HX-Request": "true"})
    services.judge_run_execute(run.pk)
    finished = lead_client.get(url, headers={"HX-Request": "true"})

    assert 'hx-trigger="every 2s"' in pending.content.decode()
    assert "<html" not in fragment.content.decode()
    assert 'id="run-progress"' in fragment.content.decode()
    done = finished.content.decode()
    assert "hx-trigger" not in done
    assert '<progress value="4" max="4">' in done
    assert 'Failed parses</th><td class="num">2<' in done
    assert "<script" not in done and "style=" not in done  # strict CSP: nothing inline


def test_a_lead_stops_a_pending_run(lead_client: Client, judge: Judge, dataset: Dataset) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)

    response = lead_client.post(reverse("judge_run_stop", args=[run.pk]))

    run.refresh_from_db()
    assert response.status_code == 302
    assert (run.status, run.stop_requested) == ("stopped", True)


def test_the_judge_page_shows_failed_parses_as_the_judge_wrote_them(
    lead_client: Client, judge: Judge, dataset: Dataset
) -> None:
    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    response = lead_client.get(reverse("judge_detail", args=[judge.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert judge.fingerprint in page
    assert page.count("Both answers have merit, and it is hard to say.") == 2
    assert "no verdict token" in page


def test_model_output_is_escaped_on_the_judge_page(
    lead_client: Client, chat_server: ChatServer, make_judge: MakeJudge, dataset: Dataset
) -> None:
    from tests.judges.chat_server import Reply

    chat_server.responder = lambda request: Reply(content="<script>alert(1)</script> no verdict")
    judge = make_judge(chat_server, name="xss")
    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    page = lead_client.get(reverse("judge_detail", args=[judge.pk])).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_lead_creates_a_judge_version_from_the_form(
    lead_client: Client, chat_server: ChatServer
) -> None:
    form = {
        "name": "form-judge",
        "provider": "openai_compatible",
        "preset": "sos-bench",
        "model_id": "llama-3-70b",
        "base_url": chat_server.base_url,
        "temperature": "0",
        "seed": "11",
        "max_tokens": "512",
        "top_logprobs": "0",
        "tie_policy": "allow_tie",
        "swap_policy": "both",
    }

    first = lead_client.post(reverse("judge_create"), form)
    again = lead_client.post(reverse("judge_create"), form)
    changed = lead_client.post(reverse("judge_create"), {**form, "seed": "12"})

    versions = list(Judge.objects.filter(name="form-judge").order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert first["Location"] == again["Location"] == reverse("judge_detail", args=[versions[0].pk])
    assert changed["Location"] == reverse("judge_detail", args=[versions[1].pk])
    assert versions[0].template_name == "sos_bench_five_criteria"


def test_the_judge_form_names_the_field_at_fault(lead_client: Client, db: None) -> None:
    response = lead_client.post(
        reverse("judge_create"),
        {
            "name": "bad",
            "provider": "openai_compatible",
            "preset": "mt-bench",
            "model_id": "m",
            "base_url": "http://127.0.0.1:1/v1",
            "api_key_env": "sk-my-real-key",
            "temperature": "0",
            "max_tokens": "10",
            "top_logprobs": "0",
            "tie_policy": "allow_tie",
            "swap_policy": "both",
        },
    )

    assert response.status_code == 400
    assert "NAME of an environment variable" in " ".join(
        response.context["create_form"].errors["api_key_env"]
    )
    assert Judge.objects.count() == 0
