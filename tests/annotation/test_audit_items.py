"""An audit's item list: each item's state (unlabelled, held, partial, complete,
disagreement, adjudicated), its labels and adjudication, filtered by state; leads only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from annotation import services
from annotation.audit_items import item_state
from annotation.models import AnnotatorExclusion, Audit, AuditItem, Label
from tests.factories import (
    AssignmentFactory,
    DatasetFactory,
    LabelFactory,
    PairFactory,
    PromptFactory,
    UserFactory,
)


@pytest.mark.parametrize(
    ("outcomes", "adjudicated", "held", "state"),
    [
        ([], False, False, "unlabelled"),
        ([], False, True, "held"),
        (["A"], False, True, "held"),
        (["A"], False, False, "partial"),
        (["A", "A"], False, True, "complete"),
        (["A", "B"], False, False, "disagreement"),
        (["A"], True, False, "adjudicated"),
        (["A", "B"], True, True, "adjudicated"),
    ],
)
def test_it_names_one_state_per_item(
    outcomes: list[str], adjudicated: bool, held: bool, state: str
) -> None:
    assert item_state(overlap_k=2, outcomes=outcomes, adjudicated=adjudicated, held=held) == state


def _label(item: AuditItem, who: User, outcome: str) -> Label:
    return LabelFactory(assignment__item=item, assignment__annotator=who, outcome=outcome)


@pytest.fixture
def audit(lead: User) -> Audit:
    dataset = DatasetFactory(name="items")
    audit = Audit.objects.create(
        name="Items audit", dataset=dataset, target_size=7, overlap_k=2, created_by=lead
    )
    items = []
    for i in range(7):
        pair = PairFactory(
            dataset=dataset, prompt=PromptFactory(dataset=dataset), source_key=f"k{i}"
        )
        items.append(
            AuditItem.objects.create(
                audit=audit, pair=pair, stratum="random", inclusion_probability=0.5, position=i
            )
        )
    ann, bob, cy = (UserFactory(username=name) for name in ("ann", "bob", "cy"))
    # k0 unlabelled; k1 held by ann; k2 partial; k3 complete; k4 disagreement; k5 adjudicated;
    # k6: bob disagrees with ann, but bob is set aside, so it is only partial.
    now = timezone.now()
    AssignmentFactory(item=items[1], annotator=ann, a_on_left=False, status="held", served_at=now)
    _label(items[2], ann, "A")
    _label(items[3], ann, "B")
    _label(items[3], cy, "B")
    _label(items[4], ann, "A")
    _label(items[4], cy, "tie")
    _label(items[5], ann, "A")
    _label(items[5], cy, "B")
    services.adjudication_decide(item=items[5], lead=lead, outcome="B", note="")
    _label(items[6], ann, "A")
    _label(items[6], bob, "B")
    AnnotatorExclusion.objects.create(
        audit=audit, annotator=bob, excluded_by=lead, excluded_at=now, reason="fast"
    )
    return audit


STATE_ROW = re.compile(r'<tr data-item="\d+" data-state="(\w+)">\s*<td class="num">(\d+)</td>')


def test_it_lists_every_item_with_its_state_labels_and_adjudication(
    lead_client: Client, audit: Audit
) -> None:
    response = lead_client.get(f"/audits/{audit.pk}/items/")
    assert response.status_code == 200
    page = response.content.decode()
    assert STATE_ROW.findall(page) == [
        ("unlabelled", "1"), ("held", "2"), ("partial", "3"), ("complete", "4"),
        ("disagreement", "5"), ("adjudicated", "6"), ("partial", "7"),
    ]  # fmt: skip
    assert "A \N{MULTIPLICATION SIGN}1 · tie \N{MULTIPLICATION SIGN}1" in page  # its answers
    assert "B by lena-lead" in page  # who decided
    pair = audit.items.get(position=0).pair
    assert f'href="/datasets/items/pairs/{pair.pk}/"' in page
    assert "Disagreement (1)" in page and "Partial (2)" in page


def test_it_filters_by_state(lead_client: Client, audit: Audit) -> None:
    page = lead_client.get(f"/audits/{audit.pk}/items/", {"state": "partial"}).content.decode()
    assert [position for _, position in STATE_ROW.findall(page)] == ["3", "7"]
    bad = lead_client.get(f"/audits/{audit.pk}/items/", {"state": "weird"})
    assert bad.status_code == 200
    assert "state: &#x27;weird&#x27; is not one of" in bad.content.decode()
    assert len(STATE_ROW.findall(bad.content.decode())) == 7


def test_only_leads_see_the_item_list(
    annotator_client: Client, outsider_client: Client, audit: Audit
) -> None:
    for client in (annotator_client, outsider_client):
        assert client.get(f"/audits/{audit.pk}/items/").status_code == 403


def test_the_audit_page_links_to_its_items(lead_client: Client, audit: Audit) -> None:
    page = lead_client.get(f"/audits/{audit.pk}/").content.decode()
    assert f'href="/audits/{audit.pk}/items/"' in page
