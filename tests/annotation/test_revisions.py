"""Revisable decisions: annotators change their own labels until the audit closes, leads revise
adjudications; every change is kept (who, when, before, after); figures read the latest; and
blind adjudication hides model names, verdicts and who chose what."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from analysis.selectors import audit_watermark
from annotation import queue, selectors, services
from annotation.models import (
    Adjudication,
    AdjudicationRevision,
    Assignment,
    Audit,
    AuditItem,
    Label,
    LabelRevision,
)
from tests.annotation.test_audit_build import make_audit
from tests.factories import JudgeFactory, VerdictFactory


@pytest.fixture
def labelled(lead: User, annotator: User, other_annotator: User) -> dict[str, Any]:
    """Two items, k = 2, both labelled by both: the annotator chose left on each."""
    audit = make_audit(
        lead=lead,
        annotators=[annotator, other_annotator],
        n_items=2,
        k=2,
        allow_strength=True,
        criteria=["correctness"],
    )
    labels = {}
    for person, choice in ((annotator, "left"), (other_annotator, "right")):
        while (assignment := queue.queue_next(audit=audit, annotator=person)) is not None:
            result = queue.label_submit(
                assignment=assignment,
                choice=choice,
                submission_key=uuid.uuid4(),
                rationale=f"first thought: {choice}",
                criteria={"correctness": choice},
                time_spent_ms=4000,
                now=assignment.served_at + timedelta(seconds=10),
            )
            labels[(person.username, assignment.item.position)] = result.label
    return {"audit": audit, "labels": labels}


def mine(labelled: dict[str, Any], annotator: User, position: int = 0) -> Label:
    return labelled["labels"][(annotator.username, position)]


# --- Labels -----------------------------------------------------------------------------------


def test_it_revises_a_label_and_keeps_the_change(labelled: dict[str, Any], annotator: User) -> None:
    label = mine(labelled, annotator)
    a_on_left = label.assignment.a_on_left
    result = queue.label_revise(
        label_id=label.pk,
        annotator=annotator,
        choice="right",
        submission_key=uuid.uuid4(),
        strength=2,
        criteria={"correctness": "right"},
        rationale="  On second reading the right one is correct. ",
    )
    assert result.created
    current = Label.objects.get(item=label.item, annotator=annotator)
    assert current.pk == result.label.pk != label.pk  # a new row: readers watching ids see it
    right = "B" if a_on_left else "A"
    assert (current.outcome, current.chose_left, current.strength) == (right, False, 2)
    assert current.criteria == {"correctness": right}
    assert current.rationale == "On second reading the right one is correct."
    assert current.created_at == label.created_at  # when it was first given
    assert current.time_spent_ms == 4000
    assert current.assignment_id == label.assignment_id
    assert AuditItem.objects.get(pk=label.item_id).label_count == 2  # k unchanged

    (change,) = LabelRevision.objects.all()
    assert (change.annotator, change.changed_by, change.kind) == (annotator, annotator, "revised")
    assert change.before["label"] == label.pk and change.before["outcome"] == label.outcome
    assert change.before["rationale"] == "first thought: left"
    assert change.after == {
        "label": current.pk,
        "outcome": right,
        "strength": 2,
        "criteria": {"correctness": right},
        "rationale": "On second reading the right one is correct.",
        "classes": {},  # this audit does not ask response classes
    }
    # Every figure reads the latest: the one label per annotator is the revised one.
    assert selectors.labels_counted(labelled["audit"]).filter(annotator=annotator).count() == 2
    assert right in selectors.labels_counted(labelled["audit"]).filter(item=label.item).values_list(
        "outcome", flat=True
    )


def test_it_changes_the_reports_watermark_when_a_label_or_decision_is_revised(
    labelled: dict[str, Any], annotator: User, lead: User
) -> None:
    audit = labelled["audit"]
    before = audit_watermark(audit)
    label = mine(labelled, annotator)
    queue.label_revise(
        label_id=label.pk, annotator=annotator, choice="tie", submission_key=uuid.uuid4()
    )
    after_label = audit_watermark(audit)
    assert after_label != before
    assert after_label["labels"] == before["labels"]  # same count, a newer id
    item = label.item
    services.adjudication_decide(item=item, lead=lead, outcome="A")
    decided = audit_watermark(audit)
    services.adjudication_revise(item=item, lead=lead, outcome="B")
    assert audit_watermark(audit) != decided


def test_it_is_idempotent_and_writes_nothing_for_an_unchanged_answer(
    labelled: dict[str, Any], annotator: User
) -> None:
    label = mine(labelled, annotator)
    same = queue.label_revise(
        label_id=label.pk,
        annotator=annotator,
        choice="left",
        submission_key=uuid.uuid4(),
        criteria={"correctness": "left"},
        rationale="first thought: left",
    )
    assert not same.created and same.label.pk == label.pk
    key = uuid.uuid4()
    first = queue.label_revise(
        label_id=label.pk, annotator=annotator, choice="tie", submission_key=key
    )
    retry = queue.label_revise(
        label_id=label.pk, annotator=annotator, choice="tie", submission_key=key
    )
    assert first.created and not retry.created and retry.label.pk == first.label.pk
    assert LabelRevision.objects.count() == 1


def test_it_refuses_revisions_once_the_audit_is_closed(
    labelled: dict[str, Any], annotator: User
) -> None:
    label = mine(labelled, annotator)
    services.audit_status_set(audit=labelled["audit"], status=Audit.Status.CLOSED)
    with pytest.raises(queue.AuditClosed, match="can no longer be changed"):
        queue.label_revise(
            label_id=label.pk, annotator=annotator, choice="tie", submission_key=uuid.uuid4()
        )
    assert Label.objects.get(pk=label.pk).outcome == label.outcome
    assert not LabelRevision.objects.exists()


def test_it_refuses_to_revise_someone_elses_label(
    labelled: dict[str, Any], annotator: User, other_annotator: User
) -> None:
    theirs = mine(labelled, other_annotator)
    with pytest.raises(queue.RevisionRefused):
        queue.label_revise(
            label_id=theirs.pk, annotator=annotator, choice="tie", submission_key=uuid.uuid4()
        )
    assert Label.objects.get(pk=theirs.pk).outcome == theirs.outcome


def test_it_keeps_an_undone_label_in_the_history(lead: User, annotator: User) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=2, k=1)
    assignment = queue.queue_next(audit=audit, annotator=annotator)
    assert assignment
    label = queue.label_submit(
        assignment=assignment, choice="left", submission_key=uuid.uuid4()
    ).label
    queue.label_undo(label_id=label.pk, annotator=annotator)
    (change,) = LabelRevision.objects.all()
    assert (change.kind, change.after, change.before["label"]) == ("undone", None, label.pk)
    assert change.before["outcome"] == label.outcome


def test_it_lets_annotators_change_their_labels_from_the_page(
    labelled: dict[str, Any], annotator: User, annotator_client: Client, other_annotator: User
) -> None:
    audit = labelled["audit"]
    label = mine(labelled, annotator)
    mine_page = annotator_client.get(f"/audits/{audit.pk}/mine/").content.decode()
    assert f'href="/audits/{audit.pk}/mine/{label.pk}/"' in mine_page
    url = f"/audits/{audit.pk}/mine/{label.pk}/"
    page = annotator_client.get(url).content.decode()
    assert 'data-testid="current-choice">left<' in page
    pair = label.item.pair
    for secret in (pair.response_a.model_name, pair.response_b.model_name, "otto"):
        assert secret not in page  # still blind: no model names, no other label
    key = re.search(r'name="submission_key" value="([0-9a-f-]{36})"', page)
    assert key
    response = annotator_client.post(
        url,
        {"choice": "tie", "submission_key": key.group(1), "rationale": "Both fine", "strength": ""},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "your label is now “tie”" in html
    assert re.search(r">tie <span class=\"badge\"[^>]*>changed</span>", html)
    current = Label.objects.get(item=label.item, annotator=annotator)
    assert (current.outcome, current.rationale) == ("tie", "Both fine")
    history = annotator_client.get(f"/audits/{audit.pk}/mine/{current.pk}/").content.decode()
    assert re.search(r"<td>left</td><td>tie</td>", history)


def test_it_keeps_label_revision_to_the_labels_owner(
    labelled: dict[str, Any],
    annotator: User,
    other_annotator: User,
    lead_client: Client,
    outsider_client: Client,
) -> None:
    audit = labelled["audit"]
    theirs = mine(labelled, other_annotator)
    url = f"/audits/{audit.pk}/mine/{theirs.pk}/"
    client = Client()
    client.force_login(annotator)
    assert client.get(url).status_code == 404  # not theirs: not even its existence
    assert client.post(url, {"choice": "tie"}).status_code == 404
    assert lead_client.get(url).status_code == 403  # a lead who is not an annotator here
    assert outsider_client.get(url).status_code == 403
    api = client.post(
        f"/api/labels/{theirs.pk}/revise/",
        {"choice": "tie", "submission_key": str(uuid.uuid4())},
        content_type="application/json",
    )
    assert api.status_code == 404
    assert Label.objects.get(pk=theirs.pk).outcome == theirs.outcome


def test_it_revises_a_label_through_the_api(
    labelled: dict[str, Any], annotator: User, annotator_client: Client
) -> None:
    label = mine(labelled, annotator)
    response = annotator_client.post(
        f"/api/labels/{label.pk}/revise/",
        {"choice": "right", "submission_key": str(uuid.uuid4()), "rationale": "changed"},
        content_type="application/json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["choice"], body["rationale"]) == ("right", "changed")
    assert Label.objects.get(pk=body["id"]).item_id == label.item_id
    services.audit_status_set(audit=labelled["audit"], status=Audit.Status.CLOSED)
    closed = annotator_client.post(
        f"/api/labels/{body['id']}/revise/",
        {"choice": "left", "submission_key": str(uuid.uuid4())},
        content_type="application/json",
    )
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


# --- Adjudications ----------------------------------------------------------------------------


def test_it_revises_an_adjudication_and_keeps_the_history(
    labelled: dict[str, Any], lead: User
) -> None:
    item, lead_user = labelled["labels"][("ana-annotator", 0)].item, lead
    first = services.adjudication_decide(item=item, lead=lead_user, outcome="A", note="A cites")
    revised = services.adjudication_revise(
        item=item, lead=lead_user, outcome="B", note="B is right after all", expected=first.pk
    )
    assert revised.pk != first.pk
    assert Adjudication.objects.get(item=item) == revised
    assert selectors.final_outcomes(labelled["audit"])[item.pk] == ("B", "adjudication")
    (change,) = AdjudicationRevision.objects.all()
    assert change.changed_by == lead_user
    assert (change.before["outcome"], change.before["note"], change.before["lead"]) == (
        "A",
        "A cites",
        "lena-lead",
    )
    assert (change.after["outcome"], change.after["note"]) == ("B", "B is right after all")
    with pytest.raises(services.AdjudicationChanged, match="Another decision"):
        services.adjudication_revise(item=item, lead=lead_user, outcome="tie", expected=first.pk)
    with pytest.raises(services.AlreadyAdjudicated):
        services.adjudication_decide(item=item, lead=lead_user, outcome="tie")
    assert Adjudication.objects.get(item=item).outcome == "B"
    with pytest.raises(ValidationError):
        services.adjudication_revise(item=item, lead=lead_user, outcome="both_bad")


def test_it_revises_an_adjudication_from_the_page(
    labelled: dict[str, Any], lead: User, lead_client: Client
) -> None:
    audit = labelled["audit"]
    item = labelled["labels"][("ana-annotator", 0)].item
    url = f"/audits/{audit.pk}/adjudicate/{item.pk}/"
    lead_client.post(url, {"outcome": "A", "note": "first"})
    decided = Adjudication.objects.get(item=item)
    page = lead_client.get(url).content.decode()
    assert "Revise the final label" in page
    assert f'name="expected" value="{decided.pk}"' in page
    response = lead_client.post(
        url, {"outcome": "tie", "note": "both fine", "expected": decided.pk}, follow=True
    )
    html = response.content.decode()
    assert "decision revised" in html
    assert re.search(r'data-testid="history".*lena-lead.*A.*tie', html, re.S)
    assert Adjudication.objects.get(item=item).outcome == "tie"
    stale = lead_client.post(url, {"outcome": "B", "expected": decided.pk}, follow=True)
    assert "Another decision was recorded" in stale.content.decode()
    assert Adjudication.objects.get(item=item).outcome == "tie"


def test_it_revises_an_adjudication_through_the_api(
    labelled: dict[str, Any], lead_client: Client
) -> None:
    item = labelled["labels"][("ana-annotator", 0)].item
    url = f"/api/items/{item.pk}/adjudication/"
    first = lead_client.post(url, {"outcome": "A"}, content_type="application/json")
    assert first.status_code == 201
    again = lead_client.post(url, {"outcome": "B"}, content_type="application/json")
    assert again.status_code == 409
    revised = lead_client.post(
        url, {"outcome": "B", "expected": first.json()["id"]}, content_type="application/json"
    )
    assert revised.status_code == 200 and revised.json()["outcome"] == "B"
    assert AdjudicationRevision.objects.count() == 1


# --- Blind adjudication -----------------------------------------------------------------------


@pytest.fixture
def blind(labelled: dict[str, Any]) -> dict[str, Any]:
    audit = labelled["audit"]
    judge: Any = JudgeFactory(name="judge-sigma", model_id="judge-model-kappa")
    audit.judges.add(judge)
    for item in audit.items.select_related("pair__response_a", "pair__response_b"):
        VerdictFactory(judge=judge, pair=item.pair, outcome="A", margin=0.42, raw_ab="RAW-VERDICT")
        item.pair.response_a.model_name = "model-alpha-secret"
        item.pair.response_a.save()
        item.pair.response_b.model_name = "model-beta-secret"
        item.pair.response_b.save()
    services.audit_options_set(audit=audit, blind_adjudication=True)
    return {**labelled, "judge": judge}


BLIND_SECRETS = (
    "model-alpha-secret",
    "model-beta-secret",
    "judge-sigma",
    "RAW-VERDICT",
    "ana-annotator",
    "otto-annotator",
)


def test_it_hides_names_verdicts_and_who_chose_what_when_blind(
    blind: dict[str, Any], lead_client: Client
) -> None:
    audit = blind["audit"]
    item = blind["labels"][("ana-annotator", 0)].item
    queue_page = lead_client.get(f"/audits/{audit.pk}/adjudicate/").content.decode()
    item_page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{item.pk}/").content.decode()
    api_item = json.dumps(lead_client.get(f"/api/items/{item.pk}/").json())
    api_queue = json.dumps(lead_client.get(f"/api/audits/{audit.pk}/adjudications/").json())
    for text in (queue_page, item_page, api_item, api_queue):
        for secret in BLIND_SECRETS:
            assert secret not in text, secret
    assert item.pair.response_a.text in item_page  # the texts themselves are shown
    assert item_page.count("first thought") == 2  # both labels, anonymous
    assert 'data-testid="blind"' in item_page
    # The adjudicator still decides, and the decision is stored with them.
    lead_client.post(f"/audits/{audit.pk}/adjudicate/{item.pk}/", {"outcome": "A"})
    adjudication = Adjudication.objects.get(item=item)
    assert adjudication.lead.username == "lena-lead" and adjudication.reference_judge is None


def test_it_shows_names_and_verdicts_when_not_blind(
    blind: dict[str, Any], lead_client: Client
) -> None:
    audit = blind["audit"]
    services.audit_options_set(audit=audit, blind_adjudication=False)
    item = blind["labels"][("ana-annotator", 0)].item
    page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{item.pk}/").content.decode()
    for visible in ("model-alpha-secret", "judge-sigma", "ana-annotator"):
        assert visible in page


def test_it_sets_blind_adjudication_when_building(lead: User, annotator: User) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1, blind_adjudication=True)
    assert Audit.objects.get(pk=audit.pk).blind_adjudication


def test_it_still_keeps_annotators_blind_after_revisions(
    labelled: dict[str, Any], annotator: User, annotator_client: Client
) -> None:
    """The revision history an annotator sees is their own: another's change never shows."""
    theirs = labelled["labels"][("otto-annotator", 0)]
    queue.label_revise(
        label_id=theirs.pk,
        annotator=theirs.annotator,
        choice="tie",
        submission_key=uuid.uuid4(),
        rationale="OTTO-CHANGED-MIND",
    )
    label = mine(labelled, annotator)
    page = annotator_client.get(f"/audits/{labelled['audit'].pk}/mine/{label.pk}/")
    assert "OTTO-CHANGED-MIND" not in page.content.decode()
    assert not Assignment.objects.filter(annotator=annotator, status="held").exists()
