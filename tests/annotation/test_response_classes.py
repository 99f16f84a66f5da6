"""People say what each response did (issue 11 item 4): stored per label and response,
required when the audit asks, idempotent, revisable with the label, over the API, blind to
the classifier, and adjudicated by leads where annotators disagree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import queue, selectors, services
from annotation.models import (
    Assignment,
    Audit,
    Label,
    LabelRevision,
    ResponseClassAdjudication,
    ResponseClassLabel,
)
from judges.models import ResponseClassification
from tests.annotation.test_audit_build import make_audit

CLASSIFIER_SAYS = "technical_disclaimer"  # never what the people say in these tests


@pytest.fixture
def audit(lead: User, annotator: User, other_annotator: User) -> Audit:
    audit = make_audit(
        lead=lead,
        annotators=[annotator, other_annotator],
        n_items=2,
        k=2,
        ask_response_classes=True,
    )
    for item in audit.items.select_related("pair"):
        for response in (item.pair.response_a, item.pair.response_b):
            ResponseClassification.objects.create(
                response=response, classifier="fp", label=CLASSIFIER_SAYS, score=0.9
            )
    return audit


def _next(audit: Audit, person: User) -> Assignment:
    assignment = queue.queue_next(audit=audit, annotator=person)
    assert assignment is not None
    return assignment


def _submit(assignment: Assignment, classes: dict[str, str] | None, **kw: Any) -> Any:
    return queue.label_submit(
        assignment=assignment,
        choice=kw.pop("choice", "left"),
        submission_key=kw.pop("key", uuid.uuid4()),
        classes=classes,
        now=assignment.served_at + timedelta(seconds=5),
        **kw,
    )


def _stored(label_id: int) -> dict[str, str]:
    return dict(
        ResponseClassLabel.objects.filter(label_id=label_id).values_list("side", "response_class")
    )


@dataclass
class Classified:
    """The annotator's first label: the left response normal, the right an ethical refusal."""

    assignment: Assignment
    label: Label
    left: str  # the pair's side shown on the left
    right: str


@pytest.fixture
def classified(audit: Audit, annotator: User) -> Classified:
    assignment = _next(audit, annotator)
    result = _submit(assignment, {"left": "normal", "right": "ethical_refusal"})
    assert result.created
    left, right = ("A", "B") if assignment.a_on_left else ("B", "A")
    return Classified(assignment, result.label, left, right)


def test_classes_are_stored_per_response_in_the_pairs_own_labelling(
    classified: Classified,
) -> None:
    assert _stored(classified.label.pk) == {
        classified.left: "normal",
        classified.right: "ethical_refusal",
    }


def test_a_retried_submit_writes_the_classes_once(audit: Audit, annotator: User) -> None:
    assignment = _next(audit, annotator)
    key = uuid.uuid4()
    first = _submit(assignment, {"left": "normal", "right": "normal"}, key=key)
    again = _submit(assignment, {"left": "ethical_refusal", "right": "normal"}, key=key)
    assert first.created and not again.created
    assert ResponseClassLabel.objects.filter(label__item=assignment.item).count() == 2
    assert set(_stored(first.label.pk).values()) == {"normal"}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (None, "Say what the left response did"),
        ({"left": "normal"}, "Say what the right response did"),
        ({"left": "normal", "right": "rude"}, "classes: right 'rude' is not one of"),
        ({"left": "normal", "right": "normal", "top": "normal"}, "'top' is not left or right"),
    ],
)
def test_classes_are_required_when_asked_and_checked(
    audit: Audit, annotator: User, classes: dict[str, str] | None, message: str
) -> None:
    assignment = _next(audit, annotator)
    with pytest.raises(queue.InvalidLabel, match=message) as error:
        _submit(assignment, classes)
    assert error.value.field == "classes"
    assert not ResponseClassLabel.objects.exists()
    assert not assignment.item.labels.exists()  # all or nothing


def test_an_audit_that_does_not_ask_ignores_them(lead: User, annotator: User) -> None:
    plain = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    result = _submit(_next(plain, annotator), {"left": "normal", "right": "normal"})
    assert result.created and not ResponseClassLabel.objects.exists()


def test_a_new_labels_classes_are_read_without_a_query(
    classified: Classified,
    lead: User,
    annotator: User,
    django_assert_num_queries: Any,
) -> None:
    """What the label call answers with comes from the rows just written, with classes asked
    for or not (`queue._classes_known`)."""
    plain = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    unasked = _submit(_next(plain, annotator), None).label
    with django_assert_num_queries(0):
        asked = {row.side: row.response_class for row in classified.label.response_classes.all()}
        none = list(unasked.response_classes.all())
    assert asked == {classified.left: "normal", classified.right: "ethical_refusal"}
    assert none == []
    # Narrowed further, each is still a query of that label's own rows.
    assert set(classified.label.response_classes.filter(side="A")) == set(
        ResponseClassLabel.objects.filter(label=classified.label, side="A")
    )
    assert not unasked.response_classes.filter(side="A").exists()


def test_revising_changes_the_classes_with_history_and_keeps_them_otherwise(
    classified: Classified, annotator: User
) -> None:
    assignment, first = classified.assignment, classified.label
    left, right = classified.left, classified.right
    revised = queue.label_revise(
        label_id=first.pk,
        annotator=annotator,
        choice="left",
        submission_key=uuid.uuid4(),
        classes={"left": "normal", "right": "ethical_disclaimer"},
    )
    assert revised.created
    assert _stored(revised.label.pk) == {left: "normal", right: "ethical_disclaimer"}
    assert not ResponseClassLabel.objects.filter(label_id=first.pk).exists()
    change = LabelRevision.objects.get(item=assignment.item)
    assert change.before["classes"] == {left: "normal", right: "ethical_refusal"}
    assert change.after["classes"] == {left: "normal", right: "ethical_disclaimer"}
    # A new choice without classes keeps the label's classes.
    again = queue.label_revise(
        label_id=revised.label.pk,
        annotator=annotator,
        choice="right",
        submission_key=uuid.uuid4(),
    )
    assert again.created
    assert _stored(again.label.pk) == {left: "normal", right: "ethical_disclaimer"}


def test_undo_takes_the_classes_back_with_the_label(audit: Audit, annotator: User) -> None:
    result = _submit(_next(audit, annotator), {"left": "normal", "right": "normal"})
    queue.label_undo(label_id=result.label.pk, annotator=annotator, now=result.label.created_at)
    assert not ResponseClassLabel.objects.exists()


def test_the_api_takes_and_returns_classes_by_screen_side(
    audit: Audit, annotator: User, annotator_client: Client
) -> None:
    assignment = _next(audit, annotator)
    url = f"/api/assignments/{assignment.pk}/label/"
    missing = annotator_client.post(
        url,
        {"choice": "left", "submission_key": str(uuid.uuid4())},
        content_type="application/json",
    )
    assert missing.status_code == 400
    assert "left response" in missing.content.decode()
    answer = {
        "choice": "left",
        "submission_key": str(uuid.uuid4()),
        "classes": {"left": "technical_refusal", "right": "normal"},
    }
    created = annotator_client.post(url, answer, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["classes"] == {"left": "technical_refusal", "right": "normal"}
    left = "A" if assignment.a_on_left else "B"
    assert _stored(created.json()["id"])[left] == "technical_refusal"


def test_the_workspace_asks_blind_to_the_classifier(audit: Audit, annotator_client: Client) -> None:
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert 'data-ask-classes="1"' in html
    assert 'name="class_left"' in html and 'name="class_right"' in html
    assert "<kbd>R</kbd> refused on ethical grounds" in html
    legend = html.split('data-testid="legend"')[1].split("</p>")[0]
    for key, words in (
        ("A", "answered"),
        ("C", "refused for lack of capability"),
        ("E", "answered with an ethical caveat"),
        ("L", "answered with a capability caveat"),
    ):
        assert f"<kbd>{key}</kbd> {words}" in legend
    # Blind: nothing is preselected and the classifier's class is nowhere in words.
    fieldset = html.split('data-testid="response-classes"')[1].split("</fieldset>")[0]
    assert " checked" not in fieldset
    assert "Technical disclaimer" not in html and "classifier" not in html.lower()


@pytest.fixture
def disputed_item(audit: Audit, annotator: User, other_annotator: User) -> Any:
    """Both label the first item served to the annotator; they disagree on response A."""
    first = _next(audit, annotator)
    item = first.item
    by_side = {True: ("left", "right"), False: ("right", "left")}
    a_side, b_side = by_side[first.a_on_left]
    _submit(first, {a_side: "ethical_refusal", b_side: "normal"})
    second = Assignment.objects.filter(item=item, annotator=other_annotator).first()
    while second is None:
        served = _next(audit, other_annotator)
        if served.item_id == item.pk:
            second = served
        else:
            _submit(served, {"left": "normal", "right": "normal"})
    a_side, b_side = by_side[second.a_on_left]
    _submit(second, {a_side: "ethical_disclaimer", b_side: "normal"})
    return item


def test_leads_adjudicate_class_disagreements(
    audit: Audit, disputed_item: Any, lead: User, lead_client: Client
) -> None:
    item = disputed_item
    rows = selectors.class_disagreements(audit)
    assert [(row.item.pk, row.side, row.classes) for row in rows] == [
        (item.pk, "A", ["ethical_disclaimer", "ethical_refusal"])
    ]
    finals = selectors.final_response_classes(audit)
    assert finals[(item.pk, "A")] == (None, "unresolved")
    assert finals[(item.pk, "B")] == ("normal", "labels")
    queue_page = lead_client.get(f"/audits/{audit.pk}/adjudicate/").content.decode()
    assert 'data-testid="class-disagreements"' in queue_page
    page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{item.pk}/").content.decode()
    assert "ethical_refusal (1)" in page and "ethical_disclaimer (1)" in page
    assert f"<td>{CLASSIFIER_SAYS}</td>" in page  # not blind: the classifier's class beside
    response = lead_client.post(
        f"/audits/{audit.pk}/adjudicate/{item.pk}/classes/", {"class_A": "ethical_refusal"}
    )
    assert response.status_code == 302
    decided = ResponseClassAdjudication.objects.get(item=item, side="A")
    assert (decided.response_class, decided.lead) == ("ethical_refusal", lead)
    assert selectors.final_response_classes(audit)[(item.pk, "A")] == (
        "ethical_refusal",
        "adjudication",
    )
    assert selectors.class_disagreements(audit) == []
    services.class_adjudicate(item=item, side="A", response_class="normal", lead=lead)
    decided.refresh_from_db()
    assert decided.response_class == "normal"
    assert decided.history[0]["before"] == "ethical_refusal"


def test_blind_adjudication_hides_the_classifier_and_annotators_cannot_decide(
    audit: Audit, annotator: User, disputed_item: Any, lead_client: Client, annotator_client: Client
) -> None:
    item = disputed_item
    services.audit_options_set(audit=audit, blind_adjudication=True)
    page = lead_client.get(f"/audits/{audit.pk}/adjudicate/{item.pk}/").content.decode()
    assert 'data-testid="class-table"' in page
    table = page.split('data-testid="class-table"')[1].split("</table>")[0]
    assert "<th>Classifier</th>" not in table
    assert f"<td>{CLASSIFIER_SAYS}</td>" not in table and annotator.username not in page
    refused = annotator_client.post(
        f"/audits/{audit.pk}/adjudicate/{item.pk}/classes/", {"class_A": "normal"}
    )
    assert refused.status_code in (403, 404)
    assert not ResponseClassAdjudication.objects.exists()
    with pytest.raises(Exception, match="use A or B"):
        services.class_adjudicate(item=item, side="C", response_class="normal", lead=annotator)


def test_leads_decide_classes_over_the_api(
    audit: Audit, disputed_item: Any, lead_client: Client, annotator_client: Client
) -> None:
    item = disputed_item
    url = f"/api/items/{item.pk}/classes/"
    before = {row["side"]: row for row in lead_client.get(url).json()}
    assert before["A"]["given"] == {"ethical_disclaimer": 1, "ethical_refusal": 1}
    assert before["A"]["disagree"] and before["A"]["final"] is None
    assert before["A"]["classifier"] == CLASSIFIER_SAYS
    assert lead_client.post(url, {}, content_type="application/json").status_code == 400
    bad = lead_client.post(url, {"A": "rude"}, content_type="application/json")
    assert bad.status_code == 400 and "rude" in bad.content.decode()
    decided = lead_client.post(url, {"A": "ethical_refusal"}, content_type="application/json")
    assert decided.status_code == 200
    rows = {row["side"]: row for row in decided.json()}
    assert rows["A"]["final"] == "ethical_refusal" and rows["B"]["final"] is None
    assert selectors.final_response_classes(audit)[(item.pk, "A")] == (
        "ethical_refusal",
        "adjudication",
    )
    refused = annotator_client.post(url, {"A": "normal"}, content_type="application/json")
    assert refused.status_code == 403
    services.audit_options_set(audit=audit, blind_adjudication=True)
    blind = {row["side"]: row for row in lead_client.get(url).json()}
    assert blind["A"]["classifier"] is None and blind["B"]["classifier"] is None


def test_the_revision_page_shows_and_changes_the_classes(
    audit: Audit, annotator: User, annotator_client: Client
) -> None:
    assignment = _next(audit, annotator)
    first = _submit(assignment, {"left": "normal", "right": "ethical_refusal"})
    url = f"/audits/{audit.pk}/mine/{first.label.pk}/"
    html = annotator_client.get(url).content.decode()
    assert 'name="class_right" value="ethical_refusal" checked' in html
    assert 'name="class_left" value="normal" checked' in html
    response = annotator_client.post(
        url,
        {
            "choice": "left",
            "submission_key": str(uuid.uuid4()),
            "class_left": "normal",
            "class_right": "technical_refusal",
        },
    )
    assert response.status_code == 302
    (current,) = assignment.item.labels.all()
    right = "B" if assignment.a_on_left else "A"
    assert _stored(current.pk)[right] == "technical_refusal"
