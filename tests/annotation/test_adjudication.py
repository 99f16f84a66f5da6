"""Adjudication: disagreements reach the lead with labels and verdicts; the decision is final."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import queue, selectors, services
from annotation.models import Adjudication, Audit, AuditItem
from tests.annotation.test_audit_build import make_audit
from tests.factories import JudgeFactory, VerdictFactory


def label_next(audit: Audit, user: User, outcome_for: Callable[[AuditItem], str]) -> AuditItem:
    """`user` labels their next item with the A/B outcome the plan gives, whatever the sides."""
    assignment = queue.queue_next(audit=audit, annotator=user)
    assert assignment
    side = queue.to_side(outcome_for(assignment.item), a_on_left=assignment.a_on_left)
    queue.label_submit(assignment=assignment, choice=side, submission_key=uuid.uuid4())
    return assignment.item


@pytest.fixture
def judged(lead: User, annotator: User, other_annotator: User) -> dict[str, Any]:
    """Three items labelled by two annotators: one split, one agreed with the judge, one agreed
    against the judge. Items are served in the same order to both (breadth first)."""
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    judge: Any = JudgeFactory(name="gpt-judge", model_id="judge-model-x")
    audit.judges.add(judge)
    items = list(audit.items.order_by("position").select_related("pair"))
    for item in items:
        VerdictFactory(judge=judge, pair=item.pair, outcome="A", margin=0.4, consistent=False)
    plan = {items[0].pk: ("A", "B"), items[1].pk: ("A", "A"), items[2].pk: ("B", "B")}
    for _ in items:
        label_next(audit, annotator, lambda item: plan[item.pk][0])
    for _ in items:
        label_next(audit, other_annotator, lambda item: plan[item.pk][1])
    return {"audit": audit, "judge": judge, "items": items}


def test_it_queues_items_whose_annotators_disagree(judged: dict[str, Any]) -> None:
    rows = selectors.adjudication_queue(judged["audit"])
    assert [row.item.pk for row in rows] == [judged["items"][0].pk]
    assert rows[0].reason == "Annotators disagree: A is better, B is better"
    assert {label.outcome for label in rows[0].labels} == {"A", "B"}


def test_it_queues_agreed_items_that_the_chosen_judge_contradicts(judged: dict[str, Any]) -> None:
    rows = selectors.adjudication_queue(judged["audit"], reference_judge=judged["judge"])
    split, _agreed_with_judge, agreed_against = judged["items"]
    assert [row.item.pk for row in rows] == [split.pk, agreed_against.pk]
    assert rows[1].reason == "Annotators agree on B is better; gpt-judge v1 says A is better"
    assert rows[1].judge_outcome == "A"


def test_it_waits_for_all_k_labels_before_comparing_with_the_judge(
    lead: User, annotator: User, other_annotator: User
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=1, k=2)
    judge: Any = JudgeFactory()
    VerdictFactory(judge=judge, pair=audit.items.get().pair, outcome="A")
    label_next(audit, annotator, lambda item: "B")
    assert selectors.adjudication_queue(audit, reference_judge=judge) == []
    label_next(audit, other_annotator, lambda item: "B")
    assert len(selectors.adjudication_queue(audit, reference_judge=judge)) == 1


def test_it_makes_the_decision_the_items_final_label(judged: dict[str, Any], lead: User) -> None:
    audit, split = judged["audit"], judged["items"][0]
    assert selectors.final_outcomes(audit)[split.pk] == (None, "unresolved")
    services.adjudication_decide(item=split, lead=lead, outcome="B", note="B cites the source")
    finals = selectors.final_outcomes(audit)
    assert finals[split.pk] == ("B", "adjudication")
    assert finals[judged["items"][1].pk] == ("A", "labels")
    assert split.pk not in [row.item.pk for row in selectors.adjudication_queue(audit)]


def test_it_refuses_a_second_decision(judged: dict[str, Any], lead: User) -> None:
    split = judged["items"][0]
    services.adjudication_decide(item=split, lead=lead, outcome="A")
    with pytest.raises(services.AlreadyAdjudicated):
        services.adjudication_decide(item=split, lead=lead, outcome="B")
    assert Adjudication.objects.get().outcome == "A"


def test_it_shows_the_lead_every_label_verdict_and_model_name(
    judged: dict[str, Any], lead_client: Client, other_annotator: User
) -> None:
    audit, split = judged["audit"], judged["items"][0]
    queue_page = lead_client.get(f"/audits/{audit.pk}/adjudicate/?judge={judged['judge'].pk}")
    assert queue_page.status_code == 200
    html = queue_page.content.decode()
    assert html.count(f'href="/audits/{audit.pk}/adjudicate/') >= 2
    assert "Annotators agree on B is better" in html

    item_page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{split.pk}/")
    html = item_page.content.decode()
    pair = split.pair
    for visible in (
        pair.response_a.model_name,
        pair.response_b.model_name,
        other_annotator.username,
        "gpt-judge",
        "flips",
        "0.400",
    ):
        assert visible in html, visible


def test_it_records_the_decision_from_the_page_and_moves_on(
    judged: dict[str, Any], lead_client: Client, lead: User
) -> None:
    audit, split = judged["audit"], judged["items"][0]
    judge = judged["judge"]
    response = lead_client.post(
        f"/audits/{audit.pk}/adjudicate/{split.pk}/?judge={judge.pk}",
        {"outcome": "tie", "note": "Both fine", "judge": judge.pk},
    )
    adjudication = Adjudication.objects.get()
    assert (adjudication.item, adjudication.lead, adjudication.outcome, adjudication.note) == (
        split,
        lead,
        "tie",
        "Both fine",
    )
    assert adjudication.reference_judge == judge
    assert response.status_code == 302
    assert response["Location"] == (
        f"/audits/{audit.pk}/adjudicate/{judged['items'][2].pk}/?judge={judge.pk}"
    )
    page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{split.pk}/").content.decode()
    assert "Final label: <strong>Tie</strong>" in page


def test_it_keeps_adjudication_from_annotators(
    judged: dict[str, Any], annotator_client: Client, outsider_client: Client
) -> None:
    audit, split = judged["audit"], judged["items"][0]
    for browser in (annotator_client, outsider_client):
        assert browser.get(f"/audits/{audit.pk}/adjudicate/").status_code == 403
        assert browser.get(f"/audits/{audit.pk}/adjudicate/{split.pk}/").status_code == 403
        assert (
            browser.post(
                f"/api/items/{split.pk}/adjudication/",
                {"outcome": "A"},
                content_type="application/json",
            ).status_code
            == 403
        )
        assert browser.get(f"/api/audits/{audit.pk}/adjudications/").status_code == 403
    assert not Adjudication.objects.exists()


def test_it_adjudicates_through_the_api(judged: dict[str, Any], lead_client: Client) -> None:
    audit, split = judged["audit"], judged["items"][0]
    rows = lead_client.get(
        f"/api/audits/{audit.pk}/adjudications/", {"judge": judged["judge"].pk}
    ).json()
    assert [row["item"] for row in rows] == [split.pk, judged["items"][2].pk]
    assert {label["outcome"] for label in rows[0]["labels"]} == {"A", "B"}
    made = lead_client.post(
        f"/api/items/{split.pk}/adjudication/",
        {"outcome": "A", "note": "ok"},
        content_type="application/json",
    )
    assert made.status_code == 201 and made.json()["outcome"] == "A"
    again = lead_client.post(
        f"/api/items/{split.pk}/adjudication/", {"outcome": "B"}, content_type="application/json"
    )
    assert again.status_code == 409
    assert Adjudication.objects.get().outcome == "A"
