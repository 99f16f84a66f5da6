"""The audit API beyond building and the queue: status, annotators, your labels, an item's
review, and what annotators are (never) shown."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation.models import Adjudication, Audit, Label
from tests.annotation.blind import OTHER_RATIONALE, add_secrets, assert_blind
from tests.annotation.test_audit_build import make_audit
from tests.factories import UserFactory


@pytest.fixture
def audit(lead: User, annotator: User, other_annotator: User) -> Audit:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    judge = add_secrets(audit, outcome="A")
    audit.selection = {**audit.selection, "judges": [judge.pk]}
    audit.save(update_fields=["selection"])
    return audit


def _label_next(client: Client, audit: Audit, choice: str, rationale: str = "") -> dict[str, Any]:
    served = client.post(f"/api/audits/{audit.pk}/next/").json()
    response = client.post(
        f"/api/assignments/{served['id']}/label/",
        {"choice": choice, "submission_key": served["submission_key"], "rationale": rationale},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return {"served": served, "label": response.json()}


def test_it_shows_leads_the_judges_and_design_and_annotators_neither(
    lead_client: Client, annotator_client: Client, audit: Audit
) -> None:
    as_lead = lead_client.get(f"/api/audits/{audit.pk}/").json()
    as_annotator = annotator_client.get(f"/api/audits/{audit.pk}/").json()
    listed = annotator_client.get("/api/audits/").json()

    assert as_lead["judges"] == [audit.judges.get().pk]
    assert as_lead["selection"]["judges"] == [audit.judges.get().pk]
    assert as_lead["seed"] == audit.seed
    for shown in (as_annotator, listed[0]):
        assert (shown["judges"], shown["selection"], shown["seed"]) == (None, None, None)
        assert shown["name"] == audit.name and shown["progress"]["items"] == 3


def test_it_never_serves_an_annotator_model_names_verdicts_or_others_labels(
    annotator_client: Client, audit: Audit, other_annotator: User
) -> None:
    other = Client()
    other.force_login(other_annotator)
    _label_next(other, audit, "left", rationale=OTHER_RATIONALE)

    seen = [
        annotator_client.get("/api/audits/"),
        annotator_client.get(f"/api/audits/{audit.pk}/"),
        annotator_client.post(f"/api/audits/{audit.pk}/next/"),
    ]
    served = seen[-1].json()
    seen.append(
        annotator_client.post(
            f"/api/assignments/{served['id']}/label/?next=1",
            {"choice": "right", "submission_key": served["submission_key"]},
            content_type="application/json",
        )
    )
    seen.append(annotator_client.get(f"/api/audits/{audit.pk}/labels/"))

    text = json.dumps([response.json() for response in seen])
    assert all(r.status_code in (200, 201) for r in seen), [r.status_code for r in seen]
    assert_blind(text, other_annotator)


def test_it_lists_your_own_labels_in_the_sides_you_saw(
    annotator_client: Client, audit: Audit, annotator: User, other_annotator: User
) -> None:
    other = Client()
    other.force_login(other_annotator)
    _label_next(other, audit, "tie")
    first = _label_next(annotator_client, audit, "left")
    second = _label_next(annotator_client, audit, "right")

    response = annotator_client.get(f"/api/audits/{audit.pk}/labels/")

    assert response.status_code == 200
    assert [(row["id"], row["choice"]) for row in response.json()] == [
        (second["label"]["id"], "right"),
        (first["label"]["id"], "left"),
    ]
    assert response["X-Total-Count"] == "2"
    assert {row["id"] for row in response.json()} == set(
        Label.objects.filter(annotator=annotator).values_list("pk", flat=True)
    )


@pytest.mark.parametrize("persona", ["lead_client", "outsider_client"])
def test_it_keeps_the_label_list_for_the_audits_annotators(
    request: pytest.FixtureRequest, persona: str, audit: Audit
) -> None:
    client: Client = request.getfixturevalue(persona)

    assert client.get(f"/api/audits/{audit.pk}/labels/").status_code == 403


def test_it_closes_and_reopens_an_audit(
    lead_client: Client, annotator_client: Client, audit: Audit
) -> None:
    closed = lead_client.post(
        f"/api/audits/{audit.pk}/status/", {"status": "closed"}, content_type="application/json"
    )
    audit.refresh_from_db()
    served = annotator_client.post(f"/api/audits/{audit.pk}/next/")

    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert audit.status == "closed"
    assert served.status_code == 204

    reopened = lead_client.post(
        f"/api/audits/{audit.pk}/status/", {"status": "open"}, content_type="application/json"
    )
    assert reopened.json()["status"] == "open"
    assert annotator_client.post(f"/api/audits/{audit.pk}/next/").status_code == 200


def test_it_refuses_a_bad_status_naming_the_field(lead_client: Client, audit: Audit) -> None:
    response = lead_client.post(
        f"/api/audits/{audit.pk}/status/", {"status": "paused"}, content_type="application/json"
    )

    audit.refresh_from_db()
    assert response.status_code == 400
    assert list(response.json()) == ["status"]
    assert audit.status == "open"


def test_it_replaces_the_annotators(
    lead_client: Client, audit: Audit, annotator: User, other_annotator: User
) -> None:
    newcomer = UserFactory(username="nina-newcomer")

    response = lead_client.post(
        f"/api/audits/{audit.pk}/annotators/",
        {"annotators": [annotator.username, newcomer.username]},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert set(audit.annotators.values_list("username", flat=True)) == {
        annotator.username,
        "nina-newcomer",
    }
    removed = Client()
    removed.force_login(other_annotator)
    assert removed.post(f"/api/audits/{audit.pk}/next/").status_code == 403


@pytest.mark.parametrize(
    ("names", "message"),
    [(["ana-annotator", "nobody-here"], "no user named 'nobody-here'"), (["ana-annotator"], "2")],
)
def test_it_refuses_annotators_it_cannot_use(
    lead_client: Client, audit: Audit, names: list[str], message: str
) -> None:
    before = set(audit.annotators.values_list("pk", flat=True))

    response = lead_client.post(
        f"/api/audits/{audit.pk}/annotators/",
        {"annotators": names},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert list(response.json()) == ["annotators"]
    assert message in " ".join(response.json()["annotators"])
    assert set(audit.annotators.values_list("pk", flat=True)) == before


def test_it_shows_a_lead_everything_about_an_item(
    lead_client: Client, audit: Audit, annotator_client: Client, lead: User
) -> None:
    labelled = _label_next(annotator_client, audit, "left", rationale="because")
    item = Label.objects.get(pk=labelled["label"]["id"]).item
    Adjudication.objects.create(item=item, lead=lead, outcome="B", note="checked")

    response = lead_client.get(f"/api/items/{item.pk}/")

    body = response.json()
    label = Label.objects.get(pk=labelled["label"]["id"])
    assert response.status_code == 200
    assert (body["id"], body["audit"], body["stratum"]) == (item.pk, audit.pk, item.stratum)
    assert body["pair"]["response_a"]["model"] == "secret-model-alpha"
    assert body["labels"] == [
        {
            "annotator": "ana-annotator",
            "outcome": label.outcome,
            "strength": None,
            "criteria": {},
            "rationale": "because",
            "a_on_left": label.assignment.a_on_left,
            "time_spent_ms": label.time_spent_ms,
            "created_at": body["labels"][0]["created_at"],
        }
    ]
    assert [(v["judge_name"], v["outcome"]) for v in body["verdicts"]] == [("judge-zeta", "A")]
    assert body["adjudication"]["outcome"] == "B"
    assert body["adjudication"]["lead"] == lead.username


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_keeps_audit_management_for_leads(
    request: pytest.FixtureRequest, persona: str, audit: Audit
) -> None:
    client: Client = request.getfixturevalue(persona)
    item = audit.items.first()
    assert item is not None

    responses = [
        client.post(
            f"/api/audits/{audit.pk}/status/",
            {"status": "closed"},
            content_type="application/json",
        ),
        client.post(
            f"/api/audits/{audit.pk}/annotators/",
            {"annotators": ["olga-outsider", "ana-annotator"]},
            content_type="application/json",
        ),
        client.get(f"/api/items/{item.pk}/"),
    ]

    audit.refresh_from_db()
    assert [r.status_code for r in responses] == [403, 403, 403]
    assert audit.status == "open"
    assert "secret-model-alpha" not in " ".join(r.content.decode() for r in responses)


def test_it_asks_anonymous_callers_to_authenticate(client: Client, audit: Audit) -> None:
    item = audit.items.first()
    assert item is not None
    calls = [
        client.get(f"/api/audits/{audit.pk}/labels/"),
        client.get(f"/api/items/{item.pk}/"),
        client.post(f"/api/audits/{audit.pk}/status/", {"status": "closed"}),
        client.post(f"/api/audits/{audit.pk}/next/"),
    ]
    assert [r.status_code for r in calls] == [401] * 4


def test_it_answers_404_for_an_item_that_does_not_exist(lead_client: Client, db: None) -> None:
    assert lead_client.get("/api/items/999999/").status_code == 404
    assert (
        lead_client.post(
            "/api/audits/999999/status/", {"status": "open"}, content_type="application/json"
        ).status_code
        == 404
    )


def test_it_refuses_judge_ids_beyond_the_databases_range(lead_client: Client, audit: Audit) -> None:
    # These were 500s on SQLite (an `IN (...)` lookup with a number it cannot store).
    too_big = 2**70
    availability = lead_client.get(
        "/api/audits/availability/", {"dataset": audit.dataset.name, "judges": str(too_big)}
    )
    built = lead_client.post(
        "/api/audits/",
        {"name": "x", "dataset": audit.dataset.name, "size": 1, "judges": [too_big]},
        content_type="application/json",
    )

    assert availability.status_code == built.status_code == 400
    assert list(availability.json()) == list(built.json()) == ["judges"]
    assert Audit.objects.count() == 1


def test_it_labels_and_serves_the_next_item_in_a_fixed_number_of_queries(
    annotator: User,
    lead: User,
    django_assert_max_num_queries: Any,
) -> None:
    """The annotators' loop over the API with a token: the token (with its user), the
    assignment with its audit and membership, then the queue's transaction; the answer's
    response classes are the ones just written, not read back."""
    from rest_framework.authtoken.models import Token

    audit = make_audit(lead=lead, annotators=[annotator], n_items=4, k=1, ask_response_classes=True)
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    served = client.post(f"/api/audits/{audit.pk}/next/").json()
    body = {
        "choice": "left",
        "submission_key": served["submission_key"],
        "classes": {"left": "normal", "right": "ethical_refusal"},
    }

    from django.db import connection

    # PostgreSQL: token, assignment, then the queue's three batched trips and the classes'
    # insert inside the test's savepoint; SQLite runs each statement of a batch on its own.
    budget = 8 if connection.vendor == "postgresql" else 14
    with django_assert_max_num_queries(budget) as queries:
        answer = client.post(
            f"/api/assignments/{served['id']}/label/?next=1", body, content_type="application/json"
        )

    assert answer.status_code == 201, answer.content
    assert answer.json()["label"]["classes"] == {"left": "normal", "right": "ethical_refusal"}
    assert answer.json()["next"]["id"] != served["id"]
    assert not [
        q
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and "classlabel" in q["sql"]
    ]
    label = Label.objects.get(submission_key=served["submission_key"])
    left = "A" if label.assignment.a_on_left else "B"
    assert dict(label.response_classes.values_list("side", "response_class")) == {
        left: "normal",
        "B" if left == "A" else "A": "ethical_refusal",
    }
    # A retried submit returns the same label, read back from the database this time.
    again = client.post(
        f"/api/assignments/{served['id']}/label/", body, content_type="application/json"
    )
    assert again.status_code == 200
    assert again.json()["classes"] == {"left": "normal", "right": "ethical_refusal"}
