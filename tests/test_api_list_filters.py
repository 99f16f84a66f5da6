"""Filters and pages on the lists that existed before: audits, imports, judges, judge runs.

A filter value that cannot be right is a 400 naming the parameter; a right value that matches
nothing is an empty page.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import services
from annotation.models import Audit
from corpus.models import ImportJob
from judges.models import JudgeRun
from tests.annotation.test_audit_build import make_audit
from tests.factories import DatasetFactory, JudgeFactory


@pytest.fixture
def audits(lead: User, annotator: User, other_annotator: User) -> dict[str, Audit]:
    mine_open = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=2)
    mine_closed = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=2)
    services.audit_status_set(audit=mine_closed, status="closed")
    theirs = make_audit(lead=lead, annotators=[other_annotator], n_items=2, k=1)
    return {"open": mine_open, "closed": mine_closed, "theirs": theirs}


def _ids(response: Any) -> list[int]:
    return sorted(row["id"] for row in response.json())


def test_it_filters_audits_by_status_and_dataset(
    lead_client: Client, audits: dict[str, Audit]
) -> None:
    closed = lead_client.get("/api/audits/", {"status": "closed"})
    opened = lead_client.get("/api/audits/", {"status": "open"})
    by_dataset = lead_client.get("/api/audits/", {"dataset": audits["theirs"].dataset.name})
    both = lead_client.get(
        "/api/audits/", {"dataset": audits["theirs"].dataset.name, "status": "closed"}
    )

    assert closed.status_code == opened.status_code == by_dataset.status_code == 200
    assert _ids(closed) == [audits["closed"].pk]
    assert _ids(opened) == sorted([audits["open"].pk, audits["theirs"].pk])
    assert _ids(by_dataset) == [audits["theirs"].pk]
    assert both.json() == []
    assert lead_client.get("/api/audits/", {"dataset": "nothing-here"}).json() == []


def test_it_filters_only_the_audits_an_annotator_sees(
    annotator_client: Client, audits: dict[str, Audit]
) -> None:
    response = annotator_client.get("/api/audits/", {"status": "open"})

    assert _ids(response) == [audits["open"].pk]
    assert response["X-Total-Count"] == "1"


def test_it_pages_audits_newest_first(lead_client: Client, audits: dict[str, Audit]) -> None:
    first = lead_client.get("/api/audits/", {"page_size": 2})
    second = lead_client.get("/api/audits/", {"page_size": 2, "page": 2})

    newest_first = [a.pk for a in Audit.objects.order_by("-created_at", "-pk")]
    assert [a["id"] for a in first.json() + second.json()] == newest_first
    assert first["X-Total-Count"] == "3"


def test_it_explains_which_statuses_exist(lead_client: Client, db: None) -> None:
    response = lead_client.get("/api/audits/", {"status": "archived"})

    assert response.json() == {"status": ['"archived" is not a status; use open or closed']}


@pytest.fixture
def imports(lead: User) -> dict[str, ImportJob]:
    arena, mtbench = DatasetFactory(name="arena"), DatasetFactory(name="mt-bench")

    def job(dataset: Any, status: str, name: str) -> ImportJob:
        return ImportJob.objects.create(
            dataset=dataset, format="generic", filename=name, status=status, created_by=lead
        )

    return {
        "arena-done": job(arena, "done", "a.jsonl"),
        "arena-failed": job(arena, "failed", "b.jsonl"),
        "mt-done": job(mtbench, "done", "c.jsonl"),
    }


def test_it_filters_imports_by_dataset_and_status(
    lead_client: Client, imports: dict[str, ImportJob]
) -> None:
    arena = lead_client.get("/api/imports/", {"dataset": "arena"})
    done = lead_client.get("/api/imports/", {"status": "done"})
    failed_arena = lead_client.get("/api/imports/", {"status": "failed", "dataset": "arena"})

    assert _ids(arena) == sorted([imports["arena-done"].pk, imports["arena-failed"].pk])
    assert _ids(done) == sorted([imports["arena-done"].pk, imports["mt-done"].pk])
    assert [j["filename"] for j in failed_arena.json()] == ["b.jsonl"]
    assert lead_client.get("/api/imports/", {"dataset": "nothing-here"}).json() == []


def test_it_pages_imports_newest_first(lead_client: Client, imports: dict[str, ImportJob]) -> None:
    response = lead_client.get("/api/imports/", {"page_size": 1, "page": 3})

    assert [j["filename"] for j in response.json()] == ["a.jsonl"]
    assert response["X-Total-Count"] == "3"


def test_it_keeps_the_import_list_for_leads(
    annotator_client: Client, outsider_client: Client, imports: dict[str, ImportJob]
) -> None:
    assert annotator_client.get("/api/imports/", {"dataset": "arena"}).status_code == 403
    assert outsider_client.get("/api/imports/", {"status": "done"}).status_code == 403


@pytest.fixture
def runs(db: None) -> dict[str, Any]:
    dataset = DatasetFactory(name="runs-set")
    gpt = JudgeFactory(name="gpt-judge")
    gpt_v2 = JudgeFactory(name="gpt-judge", version=2, fingerprint="f" * 64)
    rm = JudgeFactory(name="rm-judge")
    made = {
        status: JudgeRun.objects.create(judge=gpt, dataset=dataset, status=status)
        for status in ("done", "failed", "running")
    }
    JudgeRun.objects.create(judge=rm, dataset=dataset, status="done")
    return {"gpt": gpt, "gpt_v2": gpt_v2, "rm": rm, "runs": made}


def test_it_filters_judges_by_name(lead_client: Client, runs: dict[str, Any]) -> None:
    response = lead_client.get("/api/judges/", {"name": "gpt-judge"})

    assert response.status_code == 200
    assert [(j["name"], j["version"]) for j in response.json()] == [
        ("gpt-judge", 2),
        ("gpt-judge", 1),
    ]
    assert response["X-Total-Count"] == "2"
    assert lead_client.get("/api/judges/", {"name": "nobody"}).json() == []
    assert len(lead_client.get("/api/judges/").json()) == 3


@pytest.mark.parametrize(
    ("listing", "rows", "query", "parameter"),
    [
        ("/api/audits/", "audits", {"status": "archived"}, "status"),
        ("/api/audits/", "audits", {"dataset": "not a slug!"}, "dataset"),
        ("/api/audits/", "audits", {"page": "-1"}, "page"),
        ("/api/imports/", "imports", {"status": "half-done"}, "status"),
        ("/api/imports/", "imports", {"dataset": "a/b"}, "dataset"),
        ("/api/judges/", "runs", {"name": "x" * 201}, "name"),
    ],
)
def test_it_refuses_a_bad_filter_naming_the_parameter(
    request: pytest.FixtureRequest,
    lead_client: Client,
    listing: str,
    rows: str,
    query: dict[str, str],
    parameter: str,
) -> None:
    request.getfixturevalue(rows)  # the list has rows the filter would apply to
    response = lead_client.get(listing, query)

    assert response.status_code == 400
    assert list(response.json()) == [parameter]


def test_it_lists_a_judges_runs_filtered_by_status(
    lead_client: Client, runs: dict[str, Any]
) -> None:
    url = f"/api/judges/{runs['gpt'].pk}/runs/"

    everything = lead_client.get(url)
    failed = lead_client.get(url, {"status": "failed"})
    stopped = lead_client.get(url, {"status": "stopped"})

    assert everything.status_code == 200
    assert _ids(everything) == sorted(run.pk for run in runs["runs"].values())
    assert [(r["id"], r["status"]) for r in failed.json()] == [
        (runs["runs"]["failed"].pk, "failed")
    ]
    assert stopped.json() == []


def test_it_refuses_a_bad_run_status_naming_the_parameter(
    lead_client: Client, runs: dict[str, Any]
) -> None:
    response = lead_client.get(f"/api/judges/{runs['gpt'].pk}/runs/", {"status": "paused"})

    assert response.status_code == 400
    assert list(response.json()) == ["status"]
    assert "stopped" in response.json()["status"][0]


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_keeps_judges_and_runs_for_leads(
    request: pytest.FixtureRequest, persona: str, runs: dict[str, Any]
) -> None:
    client: Client = request.getfixturevalue(persona)

    assert client.get("/api/judges/", {"name": "gpt-judge"}).status_code == 403
    assert client.get(f"/api/judges/{runs['gpt'].pk}/runs/").status_code == 403


def test_it_asks_anonymous_callers_to_authenticate(client: Client, runs: dict[str, Any]) -> None:
    for url in (
        "/api/audits/",
        "/api/imports/",
        "/api/judges/",
        f"/api/judges/{runs['gpt'].pk}/runs/",
    ):
        assert client.get(url).status_code == 401, url
