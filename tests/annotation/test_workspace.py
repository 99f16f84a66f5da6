"""The annotator workspace: blind, safe rendering, htmx and plain forms, roles, the API."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from annotation import queue
from annotation.markdown import render_markdown
from annotation.models import Assignment, Audit, AuditItem, Label
from tests.annotation.blind import OTHER_RATIONALE, add_secrets, assert_blind
from tests.annotation.test_audit_build import make_audit

HX = {"HX-Request": "true"}


@pytest.fixture
def audit(lead: User, annotator: User, other_annotator: User) -> Audit:
    return make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)


def served(audit: Audit, user: User) -> Assignment:
    assignment = Assignment.objects.get(item__audit=audit, annotator=user, status="held")
    return assignment


def key_from(html: str) -> str:
    match = re.search(r'name="submission_key" value="([0-9a-f-]{36})"', html)
    assert match, "the form carries a submission key"
    return match.group(1)


@dataclass
class Opened:
    """The workspace as an annotator opened it: the page, and the assignment it serves."""

    client: Client
    page: str
    assignment: Assignment

    def submit(self, *, htmx: bool = True, **fields: str) -> HttpResponse:
        """Post the page's label form with ``fields`` and the page's submission key."""
        return self.client.post(
            f"/audits/{self.assignment.item.audit_id}/label/{self.assignment.pk}/",
            {"submission_key": key_from(self.page), **fields},
            headers=HX if htmx else None,
        )


def opened(client: Client, audit: Audit, annotator: User) -> Opened:
    page = client.get(f"/audits/{audit.pk}/label/").content.decode()
    return Opened(client, page, served(audit, annotator))


@pytest.fixture
def first(audit: Audit, annotator: User, annotator_client: Client) -> Opened:
    """The annotator's workspace on the fixture audit, open at the first item served."""
    return opened(annotator_client, audit, annotator)


# --- What the annotator sees ---------------------------------------------------------------


def test_it_shows_the_prompt_and_both_responses_side_by_side(
    audit: Audit, annotator_client: Client, annotator: User
) -> None:
    response = annotator_client.get(f"/audits/{audit.pk}/label/")
    assert response.status_code == 200
    html = response.content.decode()
    assignment = served(audit, annotator)
    pair = assignment.item.pair
    left, right = (
        (pair.response_a, pair.response_b)
        if assignment.a_on_left
        else (pair.response_b, pair.response_a)
    )
    assert pair.prompt.text in html
    assert html.index(left.text) < html.index(right.text)
    assert html.count('name="choice"') == 3  # left, right, tie; no "both bad" here
    assert 'data-key="0"' not in html
    assert "js/workspace.js" in html


def test_it_keeps_model_names_verdicts_and_other_labels_out_of_the_workspace(
    lead: User, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=1, k=2)
    add_secrets(audit, outcome="B", margin=1.75)
    pair = audit.items.get().pair
    theirs = queue.queue_next(audit=audit, annotator=other_annotator)
    assert theirs
    queue.label_submit(
        assignment=theirs, choice="left", submission_key=uuid.uuid4(), rationale=OTHER_RATIONALE
    )

    page = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    fragment = annotator_client.get(f"/audits/{audit.pk}/label/", headers=HX).content.decode()
    api = json.dumps(annotator_client.post(f"/api/audits/{audit.pk}/next/").json())
    assert pair.response_a.text in page and pair.response_a.text in api
    for text in (page, fragment, api):
        assert_blind(text, other_annotator, "1.75", "A is better", "B is better")


def test_it_renders_markdown_with_code_blocks_and_no_executable_html(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    pair = audit.items.get().pair
    pair.prompt.text = (
        "Explain **this**:\n\n<script>alert(1)</script>\n\n```python\nprint('<b>hi</b>')\n```"
    )
    pair.prompt.save()
    pair.response_a.text = '<img src=x onerror="alert(1)"> [click](javascript:alert(1)) `x`'
    pair.response_a.save()
    pair.response_b.text = "| a | b |\n|---|---|\n| 1 | 2 |\n\n<iframe src=//evil></iframe>"
    pair.response_b.save()

    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "<strong>this</strong>" in html
    assert "<pre><code>print(&#x27;&lt;b&gt;hi&lt;/b&gt;&#x27;)" in html or (
        "<pre><code>print('&lt;b&gt;hi&lt;/b&gt;')" in html
    )
    assert "<table>" in html
    assert "<script>alert" not in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert not re.search(r"<iframe", html)
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, harmlessly


def test_it_sanitises_markdown_even_when_the_renderer_lets_html_through() -> None:
    assert render_markdown("<script>alert(1)</script>") == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    )
    assert "onerror" not in render_markdown('<img src="x" onerror="alert(1)">').split("&lt;")[0]
    link = render_markdown("[ok](https://example.org)")
    assert 'href="https://example.org"' in link and 'rel="noopener noreferrer nofollow"' in link


def test_it_puts_no_inline_script_or_style_in_the_page(
    audit: Audit, annotator_client: Client
) -> None:
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", html)
    assert not re.search(r"<[^>]+\sstyle\s*=", html)


def test_it_offers_both_bad_and_strength_only_when_the_audit_does(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(
        lead=lead,
        annotators=[annotator],
        n_items=1,
        k=1,
        allow_both_bad=True,
        allow_strength=True,
        criteria=["correctness"],
    )
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert 'value="both_bad"' in html and 'data-key="0"' in html
    assert 'name="strength" value="2"' in html
    assert 'name="criterion_0" value="left"' in html


def test_it_opens_the_guidelines_for_the_first_item(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(
        lead=lead, annotators=[annotator], n_items=2, k=1, guidelines="Prefer **correct** answers."
    )
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert re.search(r'<details class="guidelines card" id="guidelines"\s+open', html)
    assert "<strong>correct</strong>" in html


# --- Labelling through the page ------------------------------------------------------------


def test_it_returns_only_the_workspace_fragment_to_htmx(
    audit: Audit, annotator_client: Client
) -> None:
    html = annotator_client.get(f"/audits/{audit.pk}/label/", headers=HX).content.decode()
    assert html.lstrip().startswith('<div id="workspace"')
    assert "<html" not in html


def test_it_saves_a_label_and_serves_the_next_item_over_htmx(
    audit: Audit, annotator: User, first: Opened
) -> None:
    response = first.submit(choice="left", time_spent_ms="4200", rationale="clearer")
    assert response.status_code == 200
    html = response.content.decode()
    label = Label.objects.get()
    assert (label.annotator, label.chose_left, label.rationale) == (annotator, True, "clearer")
    assert label.outcome == ("A" if first.assignment.a_on_left else "B")
    assert "Label saved." in html
    assert 'data-testid="my-count">1 of' in html
    assert "Undo last label" in html
    following = served(audit, annotator)
    assert following.item_id != first.assignment.item_id
    assert f"/label/{following.pk}/" in html


def test_it_labels_with_a_plain_form_post_without_javascript(
    audit: Audit, annotator_client: Client, first: Opened
) -> None:
    response = first.submit(htmx=False, choice="tie", time_spent_ms="")
    assert response.status_code == 302
    assert response["Location"] == f"/audits/{audit.pk}/label/"
    assert Label.objects.get().outcome == "tie"
    after = annotator_client.get(response["Location"]).content.decode()
    assert "Label saved." in after


def test_it_makes_one_label_from_a_double_click(first: Opened) -> None:
    first.submit(choice="right")
    again = first.submit(choice="right")
    assert again.status_code == 200
    assert "Already saved." in again.content.decode()
    assert Label.objects.count() == 1
    assert AuditItem.objects.get(pk=first.assignment.item_id).label_count == 1


def test_it_keeps_the_item_and_inputs_when_the_choice_is_invalid(first: Opened) -> None:
    response = first.submit(choice="both_bad", rationale="keep me")
    html = response.content.decode()
    assert "does not offer" in html
    assert f"/label/{first.assignment.pk}/" in html and "keep me" in html
    assert not Label.objects.exists()


def test_it_caps_the_time_spent_sent_by_the_page(first: Opened) -> None:
    first.submit(htmx=False, choice="left", time_spent_ms="86400000")
    assert Label.objects.get().time_spent_ms < 60_000


def test_it_skips_with_a_reason_from_the_page(
    audit: Audit, annotator: User, annotator_client: Client
) -> None:
    annotator_client.get(f"/audits/{audit.pk}/label/")
    first = served(audit, annotator)
    response = annotator_client.post(
        f"/audits/{audit.pk}/label/{first.pk}/skip/",
        {"reason": "content missing or broken", "detail": "response cut off"},
        headers=HX,
    )
    assert "Skipped." in response.content.decode()
    first.refresh_from_db()
    assert (first.status, first.skip_reason) == (
        "skipped",
        "content missing or broken: response cut off",
    )


def test_it_undoes_the_last_label_from_the_page(
    audit: Audit, annotator_client: Client, first: Opened
) -> None:
    first.submit(choice="left", rationale="first thought")
    label = Label.objects.get()
    response = annotator_client.post(
        f"/audits/{audit.pk}/undo/", {"label_id": label.pk}, headers=HX
    )
    html = response.content.decode()
    assert "Label undone" in html
    assert f"/label/{first.assignment.pk}/" in html  # the same item again
    assert "first thought" in html  # and the rationale kept
    assert not Label.objects.exists()
    again = annotator_client.post(f"/audits/{audit.pk}/undo/", {"label_id": label.pk}, headers=HX)
    assert "already been undone" in again.content.decode()


def test_it_says_when_everything_is_done(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    response = opened(annotator_client, audit, annotator).submit(choice="left")
    assert "All done" in response.content.decode()


def test_it_says_when_the_remaining_items_are_held_by_others(
    lead: User, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=1, k=2)
    queue.queue_next(audit=audit, annotator=other_annotator)
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "Nothing free right now" in html and "1 item still needs labels" in html


# --- Who sees what -------------------------------------------------------------------------


def test_it_lists_only_the_annotators_own_audits_at_home(
    lead: User, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    mine = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    Audit.objects.filter(pk=mine.pk).update(name="Mine to label")
    theirs = make_audit(lead=lead, annotators=[other_annotator], n_items=1, k=1)
    Audit.objects.filter(pk=theirs.pk).update(name="Someone else's")
    html = annotator_client.get("/").content.decode()
    assert "Mine to label" in html and f"/audits/{mine.pk}/label/" in html
    assert "Someone else" not in html


def test_it_keeps_annotators_out_of_audits_they_are_not_in(
    audit: Audit,
    lead: User,
    outsider_client: Client,
    lead_client: Client,
    client: Client,
    other_annotator: User,
) -> None:
    other = make_audit(lead=lead, annotators=[other_annotator], n_items=1, k=1)
    for browser in (outsider_client, lead_client):  # a lead labels only audits they are in
        assert browser.get(f"/audits/{other.pk}/label/").status_code == 403
        assert browser.post(f"/api/audits/{other.pk}/next/").status_code == 403
    anonymous = client.get(f"/audits/{other.pk}/label/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not Assignment.objects.filter(item__audit=other).exists()


def test_it_refuses_to_label_someone_elses_assignment(
    audit: Audit, annotator_client: Client, other_annotator: User
) -> None:
    theirs = queue.queue_next(audit=audit, annotator=other_annotator)
    assert theirs
    response = annotator_client.post(
        f"/audits/{audit.pk}/label/{theirs.pk}/",
        {"choice": "left", "submission_key": str(uuid.uuid4())},
    )
    assert response.status_code == 404
    assert (
        annotator_client.post(
            f"/api/assignments/{theirs.pk}/label/",
            {"choice": "left", "submission_key": str(uuid.uuid4())},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert not Label.objects.exists()


def test_it_shows_annotators_their_own_labels_only(
    audit: Audit, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    for person, note in ((annotator, "MY-NOTE"), (other_annotator, "THEIR-NOTE")):
        assignment = queue.queue_next(audit=audit, annotator=person)
        assert assignment
        queue.label_submit(
            assignment=assignment, choice="left", submission_key=uuid.uuid4(), rationale=note
        )
    html = annotator_client.get(f"/audits/{audit.pk}/mine/").content.decode()
    assert "MY-NOTE" in html and "THEIR-NOTE" not in html


def test_it_keeps_the_audit_page_for_leads(
    audit: Audit, annotator_client: Client, lead_client: Client
) -> None:
    assert annotator_client.get(f"/audits/{audit.pk}/").status_code == 403
    response = lead_client.get(f"/audits/{audit.pk}/")
    assert response.status_code == 200
    assert "Random control" in response.content.decode()


# --- The API -------------------------------------------------------------------------------


def test_it_labels_through_the_api(audit: Audit, annotator: User, annotator_client: Client) -> None:
    nxt = annotator_client.post(f"/api/audits/{audit.pk}/next/")
    assert nxt.status_code == 200
    body = nxt.json()
    assert set(body) == {"id", "expires_at", "submission_key", "prompt", "left", "right"}
    label_url = f"/api/assignments/{body['id']}/label/"
    payload = {"choice": "right", "submission_key": body["submission_key"], "time_spent_ms": 900}
    created = annotator_client.post(label_url, payload, content_type="application/json")
    retried = annotator_client.post(label_url, payload, content_type="application/json")
    assert (created.status_code, retried.status_code) == (201, 200)
    assert created.json()["choice"] == "right" and retried.json()["id"] == created.json()["id"]
    assert Label.objects.count() == 1

    bad = annotator_client.post(
        f"/api/assignments/{body['id']}/label/",
        {"choice": "sideways"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "choice" in bad.json()

    undo = annotator_client.post(
        f"/api/audits/{audit.pk}/undo/",
        {"label_id": created.json()["id"]},
        content_type="application/json",
    )
    assert undo.status_code == 200 and undo.json()["id"] == body["id"]
    assert not Label.objects.exists()

    skip = annotator_client.post(
        f"/api/assignments/{body['id']}/skip/",
        {"reason": "outside my expertise"},
        content_type="application/json",
    )
    assert skip.status_code == 200
    assert Assignment.objects.get(pk=body["id"]).status == "skipped"


def test_it_labels_and_serves_the_next_item_in_one_api_call(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=2, k=1)
    first = annotator_client.post(f"/api/audits/{audit.pk}/next/").json()
    url = f"/api/assignments/{first['id']}/label/?next=1"
    body = {"choice": "left", "submission_key": first["submission_key"]}
    response = annotator_client.post(url, body, content_type="application/json")
    assert response.status_code == 201
    following = response.json()["next"]
    assert response.json()["label"]["choice"] == "left"
    assert following["id"] != first["id"] and following["prompt"]
    assert Assignment.objects.get(pk=following["id"]).status == "held"
    last = annotator_client.post(
        f"/api/assignments/{following['id']}/label/?next=1",
        {"choice": "tie", "submission_key": following["submission_key"]},
        content_type="application/json",
    )
    assert last.json()["next"] is None
    assert Label.objects.count() == 2


def test_it_answers_204_when_nothing_is_left_for_the_annotator(
    lead: User, annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    body = annotator_client.post(f"/api/audits/{audit.pk}/next/").json()
    annotator_client.post(
        f"/api/assignments/{body['id']}/label/",
        {"choice": "tie", "submission_key": body["submission_key"]},
        content_type="application/json",
    )
    assert annotator_client.post(f"/api/audits/{audit.pk}/next/").status_code == 204
    detail = annotator_client.get(f"/api/audits/{audit.pk}/").json()
    assert detail["progress"]["labels_done"] == 1 and detail["progress"]["mine"] == 1


def test_it_closes_an_audit_from_its_page(
    audit: Audit, lead_client: Client, annotator_client: Client
) -> None:
    response = lead_client.post(f"/audits/{audit.pk}/status/", {"status": "closed"})
    assert response.status_code == 302
    audit.refresh_from_db()
    assert audit.status == "closed"
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "This audit is closed" in html
    assert not Assignment.objects.filter(item__audit=audit).exists()


def test_it_changes_who_annotates_from_the_audit_page(
    audit: Audit, lead_client: Client, annotator: User, lead: User
) -> None:
    before = set(audit.annotators.all())
    response = lead_client.post(
        f"/audits/{audit.pk}/annotators/", {"annotators": [annotator.pk]}, follow=True
    )
    assert "needs 2 annotators per item" in response.content.decode()
    assert set(audit.annotators.all()) == before
    audit_k1 = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    lead_client.post(f"/audits/{audit_k1.pk}/annotators/", {"annotators": [annotator.pk, lead.pk]})
    assert set(audit_k1.annotators.all()) == {annotator, lead}
