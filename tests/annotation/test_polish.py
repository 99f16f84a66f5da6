"""Polish (issue 13, item 10): a 403 page that says what the user may do, the Admin link only
for people who can use the admin, pacing that applies, and why some responses are not
classified."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from judges.models import ResponseClassification
from tests.annotation.test_audit_build import make_audit
from tests.factories import DatasetFactory, JudgeFactory, PairFactory


@pytest.mark.parametrize(
    ("persona", "page", "says"),
    [
        pytest.param(
            "annotator_client",
            "",
            [
                'data-testid="forbidden"',
                "Leads only.",
                "Annotators label the audits they are listed on",
                'href="{home}"',
                "Your audits",
                "<html",  # the site's page, not a bare 403
                "tribunal.css",
            ],
            id="an-annotator-on-a-lead-page-what-they-may-do",
        ),
        pytest.param(
            "lead_client",
            "label/",
            ["You are not an annotator of this audit.", "add yourself on the audit's page"],
            id="a-lead-how-to-label-an-audit-they-are-not-listed-on",
        ),
    ],
)
def test_it_tells_a_refused_user_what_they_may_do(
    request: pytest.FixtureRequest,
    lead: User,
    annotator: User,
    persona: str,
    page: str,
    says: list[str],
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    client: Client = request.getfixturevalue(persona)
    response = client.get(f"/audits/{audit.pk}/{page}")
    assert response.status_code == 403
    html = response.content.decode()
    for text in says:
        assert text.format(home=reverse("home")) in html


def test_it_shows_the_admin_link_only_to_people_who_can_use_the_admin(
    lead: User, lead_client: Client
) -> None:
    page = lead_client.get(reverse("audit_list")).content.decode()
    assert 'href="/admin/"' not in page  # a lead, but not staff: the admin would refuse them
    lead.is_staff = True
    lead.save()
    assert 'href="/admin/"' in lead_client.get(reverse("audit_list")).content.decode()


def test_it_says_pacing_does_not_apply_to_imported_judges(lead_client: Client) -> None:
    imported = JudgeFactory(name="imported-judge")
    html = lead_client.get(reverse("judge_detail", args=[imported.pk])).content.decode()
    pacing = html.split('data-testid="pacing">')[1].split("</td>")[0]
    assert "does not apply" in pacing and "timeout  s" not in pacing


def test_it_says_the_unclassified_responses_are_empty_texts(lead_client: Client) -> None:
    dataset = DatasetFactory(name="with-empties")
    pairs = [PairFactory(prompt__dataset=dataset, source_key=f"e{i}") for i in range(3)]
    empty = pairs[0].response_b
    empty.text, empty.has_text = "", False
    empty.save()
    for pair in pairs:
        for response in (pair.response_a, pair.response_b):
            if response.has_text:
                ResponseClassification.objects.create(
                    response=response, classifier="c" * 64, label="normal", score=0.9
                )
    html = lead_client.get(reverse("dataset_judging", args=[dataset.name])).content.decode()
    line = html.split('data-testid="classified">')[1].split("·")[0]
    assert "5 of 6 responses classified; the other 1 is an empty text, which is never" in line
