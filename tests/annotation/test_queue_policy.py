"""Serving order per audit (complete first, spread first), gold items mixed in at a rate, and
annotators a lead has set aside."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import queue, selectors, services
from annotation.models import Assignment, Audit, AuditItem, Label
from tests.annotation.test_audit_build import make_audit
from tests.factories import PairFactory, UserFactory


def submit(assignment: Any, choice: str = "left") -> queue.LabelResult:
    return queue.label_submit(assignment=assignment, choice=choice, submission_key=uuid.uuid4())


def serve_and_label(audit: Audit, person: Any, choice: str = "left") -> AuditItem:
    assignment = queue.queue_next(audit=audit, annotator=person)
    assert assignment is not None
    submit(assignment, choice)
    return assignment.item


@pytest.fixture
def people(db: None) -> list[Any]:
    return [UserFactory(username=f"p{i}") for i in range(3)]


@pytest.fixture
def people_audit(lead: User, people: list[Any]) -> Callable[..., Audit]:
    """``people_audit(n_items=..., k=..., ...)``: an audit of the three people, led by lead."""
    return lambda **design: make_audit(lead=lead, annotators=people, **design)


# --- Complete first, spread first -------------------------------------------------------------


def test_it_completes_items_before_starting_fresh_ones_by_default(
    people: list[Any], people_audit: Callable[..., Audit]
) -> None:
    a, b, _ = people
    audit = people_audit(n_items=5, k=2)
    assert audit.queue_policy == Audit.QueuePolicy.COMPLETE_FIRST
    first = serve_and_label(audit, a)  # position 0 now has one label
    second = serve_and_label(audit, b)
    assert second.pk == first.pk  # b completes it instead of starting position 1
    assert AuditItem.objects.get(pk=first.pk).label_count == 2
    assert selectors.audit_progress(audit).items_complete == 1


def test_it_spreads_labels_over_fresh_items_when_asked(lead: User, people: list[Any]) -> None:
    a, b, _ = people
    audit = make_audit(
        lead=lead,
        annotators=people,
        n_items=5,
        k=2,
        queue_policy=Audit.QueuePolicy.SPREAD_FIRST,
    )
    first = serve_and_label(audit, a)
    second = serve_and_label(audit, b)
    assert (first.position, second.position) == (0, 1)
    assert selectors.audit_progress(audit).items_complete == 0


def test_it_serves_the_item_with_most_labels_first_when_k_is_three(lead: User) -> None:
    people = [UserFactory(username=f"q{i}") for i in range(4)]
    audit = make_audit(lead=lead, annotators=people, n_items=4, k=3)
    items = list(audit.items.order_by("position"))
    AuditItem.objects.filter(pk=items[2].pk).update(label_count=2)
    AuditItem.objects.filter(pk=items[1].pk).update(label_count=1)
    assignment = queue.queue_next(audit=audit, annotator=people[0])
    assert assignment is not None and assignment.item_id == items[2].pk


def test_it_starts_a_fresh_item_while_the_partial_one_is_held(
    people: list[Any], people_audit: Callable[..., Audit]
) -> None:
    a, b, c = people
    audit = people_audit(n_items=3, k=2)
    started = serve_and_label(audit, a)
    held = queue.queue_next(audit=audit, annotator=b)
    assert held is not None and held.item_id == started.pk
    fresh = queue.queue_next(audit=audit, annotator=c)
    assert fresh is not None and fresh.item_id != started.pk
    assert AuditItem.objects.get(pk=fresh.item_id).label_count == 0


def test_it_completes_every_started_item_when_labels_run_out(lead: User) -> None:
    """With k = 2 and 4 annotators who each give 3 labels, complete first leaves 6 complete
    items and none half-done; spread first leaves 12 items with one label each."""

    def run(policy: str) -> Counter[int]:
        people = [UserFactory(username=f"{policy[:2]}{i}") for i in range(4)]
        audit = make_audit(lead=lead, annotators=people, n_items=20, k=2, queue_policy=policy)
        for _ in range(3):
            for person in people:
                serve_and_label(audit, person)
        return Counter(audit.items.values_list("label_count", flat=True))

    assert run(Audit.QueuePolicy.COMPLETE_FIRST) == {2: 6, 0: 14}
    assert run(Audit.QueuePolicy.SPREAD_FIRST) == {1: 12, 0: 8}


def test_it_changes_the_policy_of_a_running_audit(
    people: list[Any], people_audit: Callable[..., Audit]
) -> None:
    a, b, _ = people
    audit = people_audit(n_items=4, k=2)
    serve_and_label(audit, a)
    services.audit_options_set(audit=audit, queue_policy=Audit.QueuePolicy.SPREAD_FIRST)
    assert Audit.objects.get(pk=audit.pk).queue_policy == "spread_first"
    nxt = queue.queue_next(audit=audit, annotator=b)
    assert nxt is not None and AuditItem.objects.get(pk=nxt.item_id).label_count == 0


def test_it_refuses_an_unknown_policy(people_audit: Callable[..., Audit]) -> None:
    audit = people_audit(n_items=2, k=2)
    with pytest.raises(Exception, match="queue_policy"):
        services.audit_options_set(audit=audit, queue_policy="random")
    assert Audit.objects.get(pk=audit.pk).queue_policy == "complete_first"


def test_it_shows_complete_items_and_what_is_left_in_the_workspace(
    lead: User, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    serve_and_label(audit, other_annotator)
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "0 of 3 items complete" in html
    assert "<strong>3</strong> items left for you" in html
    assignment = Assignment.objects.get(annotator=annotator, status="held")
    submit(assignment)
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "1 of 3 items complete" in html
    assert "<strong>2</strong> items left for you" in html
    progress = selectors.audit_progress(audit, annotator)
    assert (progress.items_complete, progress.left_for_me, progress.mine) == (1, 2, 1)


# --- Gold items -------------------------------------------------------------------------------


@pytest.fixture
def gold_audit(lead: User, annotator: User, other_annotator: User) -> Audit:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=4, pairs=7, k=1)
    in_audit = set(audit.items.values_list("pair_id", flat=True))
    spare = [p for p in audit.dataset.pairs.order_by("source_key") if p.pk not in in_audit]
    lines = services.parse_gold_lines(
        f"{spare[0].source_key}, A, cites the source\n{spare[1].source_key}, tie"
    )
    services.gold_add(audit=audit, lines=lines)
    return audit


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The gold draws queue_next will see, in order (0-99; below the rate serves gold)."""
    sequence: list[int] = []
    monkeypatch.setattr(queue, "_percent_draw", lambda: sequence.pop(0) if sequence else 99)
    yield sequence


def test_it_mixes_gold_into_the_queue_at_the_audits_rate(
    gold_audit: Audit, annotator: User, draws: list[int]
) -> None:
    services.audit_options_set(audit=gold_audit, gold_percent=20)
    draws.extend([50, 19, 20, 3])  # sampled, gold, sampled, gold
    served = []
    for _ in range(4):
        assignment = queue.queue_next(audit=gold_audit, annotator=annotator)
        assert assignment is not None
        served.append(assignment.item.stratum)
        submit(assignment, "tie")
    assert served == ["random", "gold", "random", "gold"]
    assert Label.objects.filter(item__stratum="gold", annotator=annotator).count() == 2


def test_it_serves_no_gold_at_rate_zero_and_each_gold_once_per_annotator(
    gold_audit: Audit, annotator: User, draws: list[int]
) -> None:
    draws.extend([0, 0, 0])
    assignment = queue.queue_next(audit=gold_audit, annotator=annotator)
    assert assignment is not None and assignment.item.stratum == "random"  # rate 0: no gold
    submit(assignment)
    services.audit_options_set(audit=gold_audit, gold_percent=50)
    draws.extend([0] * 10)
    strata = []
    while (assignment := queue.queue_next(audit=gold_audit, annotator=annotator)) is not None:
        strata.append(assignment.item.stratum)
        submit(assignment)
    # Both gold items first (every draw says gold), once each, then the sampled ones.
    assert strata == ["gold", "gold", "random", "random", "random"]


def test_it_serves_one_gold_item_to_several_annotators_at_once_beyond_k(
    gold_audit: Audit, annotator: User, other_annotator: User, draws: list[int]
) -> None:
    services.audit_options_set(audit=gold_audit, gold_percent=50)
    draws.extend([0, 0])
    mine = queue.queue_next(audit=gold_audit, annotator=annotator)
    theirs = queue.queue_next(audit=gold_audit, annotator=other_annotator)
    assert mine and theirs and mine.item_id == theirs.item_id  # k = 1, both hold it
    submit(mine, "left")
    submit(theirs, "left")
    assert AuditItem.objects.get(pk=mine.item_id).label_count == 2  # gold is outside k


@pytest.fixture
def gold_answered(gold_audit: Audit, annotator: User, draws: list[int]) -> Assignment:
    """The annotator served a gold item (gold at 50 %, the draw says gold) and answered it."""
    services.audit_options_set(audit=gold_audit, gold_percent=50)
    draws.extend([0])
    gold = queue.queue_next(audit=gold_audit, annotator=annotator)
    assert gold is not None and gold.item.stratum == "gold"
    submit(gold)
    return gold


@pytest.mark.usefixtures("gold_answered")
def test_it_keeps_gold_items_out_of_the_figures_and_the_progress(
    gold_audit: Audit, annotator: User
) -> None:
    progress = selectors.audit_progress(gold_audit, annotator)
    assert (progress.items, progress.labels_done, progress.labels_needed) == (4, 0, 4)
    assert not selectors.labels_counted(gold_audit).exists()
    assert Label.objects.filter(item__audit=gold_audit).count() == 1
    assert AuditItem.objects.sampled().filter(audit=gold_audit).count() == 4
    assert set(selectors.final_outcomes(gold_audit)) == set(
        AuditItem.objects.sampled().filter(audit=gold_audit).values_list("pk", flat=True)
    )
    assert len(selectors.audit_run_scope(gold_audit)["pair_ids"]) == 4


def test_it_explains_bad_gold_lines_by_line_number(gold_audit: Audit) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="line 2: 'maybe' is not an answer"):
        services.parse_gold_lines("k1, A\nk2, maybe\n")
    with pytest.raises(ValidationError, match="line 1: write the pair's source key"):
        services.parse_gold_lines("just-a-key")
    taken = gold_audit.items.sampled().first()
    assert taken is not None
    with pytest.raises(ValidationError, match="in the audit already"):
        services.gold_add(
            audit=gold_audit, lines=services.parse_gold_lines(f"{taken.pair.source_key}, B")
        )
    with pytest.raises(ValidationError, match="no pair with this source key"):
        services.gold_add(audit=gold_audit, lines=services.parse_gold_lines("nope, B"))
    assert gold_audit.items.gold().count() == 2  # nothing half-written


def test_it_removes_a_gold_item_only_before_anyone_answered_it(
    gold_audit: Audit, gold_answered: Assignment
) -> None:
    from django.core.exceptions import ValidationError

    answered = gold_answered
    with pytest.raises(ValidationError, match="has answers"):
        services.gold_remove(audit=gold_audit, item_id=answered.item_id)
    other = gold_audit.items.gold().exclude(pk=answered.item_id).get()
    services.gold_remove(audit=gold_audit, item_id=other.pk)
    assert list(gold_audit.items.gold().values_list("pk", flat=True)) == [answered.item_id]


# --- Setting an annotator's labels aside -----------------------------------------------------


def test_it_sets_labels_aside_and_serves_their_items_to_others_again(
    lead: User, people: list[Any], people_audit: Callable[..., Audit]
) -> None:
    a, b, c = people
    audit = people_audit(n_items=2, k=2)
    item = serve_and_label(audit, a)
    assert serve_and_label(audit, b).pk == item.pk
    assert AuditItem.objects.get(pk=item.pk).label_count == 2
    services.annotator_set_aside(audit=audit, annotator=a, by=lead, reason="0.3 s per item")

    assert AuditItem.objects.get(pk=item.pk).label_count == 1  # a's label no longer counts
    assert Label.objects.filter(annotator=a).count() == 1  # kept, not deleted
    assert list(selectors.labels_counted(audit).values_list("annotator", flat=True)) == [b.pk]
    assert queue.queue_next(audit=audit, annotator=a) is None
    assert serve_and_label(audit, c).pk == item.pk  # the freed slot goes to someone else
    assert AuditItem.objects.get(pk=item.pk).label_count == 2

    services.annotator_count_again(audit=audit, annotator=a)
    assert AuditItem.objects.get(pk=item.pk).label_count == 3  # more than k: nothing dropped
    assert selectors.labels_counted(audit).count() == 3


def test_it_refuses_a_submit_from_someone_set_aside_while_holding(
    lead: User, people: list[Any], people_audit: Callable[..., Audit]
) -> None:
    a, _, _ = people
    audit = people_audit(n_items=2, k=2)
    held = queue.queue_next(audit=audit, annotator=a)
    assert held is not None
    services.annotator_set_aside(audit=audit, annotator=a, by=lead)
    assert not Assignment.objects.filter(annotator=a, status="held").exists()  # released
    Assignment.objects.create(  # a hold that slipped in before the set-aside committed
        item=held.item,
        annotator=a,
        a_on_left=True,
        served_at=held.served_at,
        expires_at=held.expires_at,
    )
    stale = Assignment.objects.select_related("item__audit", "annotator").get(annotator=a)
    with pytest.raises(queue.SetAside):
        submit(stale)
    assert not Label.objects.exists()
    assert AuditItem.objects.get(pk=held.item_id).label_count == 0


def test_it_tells_a_set_aside_annotator_why_nothing_is_served(
    lead: User, annotator: User, other_annotator: User, annotator_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=2, k=1)
    services.annotator_set_aside(audit=audit, annotator=annotator, by=lead)
    html = annotator_client.get(f"/audits/{audit.pk}/label/").content.decode()
    assert "set your labels in this audit aside" in html
    assert 'id="label-form"' not in html


def test_it_lets_only_leads_set_labels_aside(
    lead: User,
    annotator: User,
    other_annotator: User,
    lead_client: Client,
    annotator_client: Client,
    outsider_client: Client,
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=2, k=1)
    url = f"/audits/{audit.pk}/annotators/{other_annotator.pk}/set-aside/"
    for client in (annotator_client, outsider_client):
        assert client.post(url, {"action": "set_aside"}).status_code == 403
    assert Client().post(url, {"action": "set_aside"}).status_code == 302  # to the login
    assert not audit.exclusions.exists()
    response = lead_client.post(url, {"action": "set_aside", "reason": "too fast"})
    assert response.status_code == 302
    exclusion = audit.exclusions.get()
    assert (exclusion.annotator, exclusion.excluded_by, exclusion.reason) == (
        other_annotator,
        lead,
        "too fast",
    )
    assert lead_client.post(url, {"action": "count"}).status_code == 302
    assert not audit.exclusions.exists()
    stranger = UserFactory(username="not-in-this-audit")
    url = f"/audits/{audit.pk}/annotators/{stranger.pk}/set-aside/"
    assert lead_client.post(url, {"action": "set_aside"}).status_code == 404


def test_it_keeps_gold_pairs_out_of_the_strata_table(people_audit: Callable[..., Audit]) -> None:
    """A gold pair is outside the sample: the audit's strata stay as they were."""
    audit = people_audit(n_items=2, pairs=4, k=1)
    spare = PairFactory(prompt__dataset=audit.dataset, source_key="zz-gold")
    services.gold_add(audit=audit, lines=services.parse_gold_lines("zz-gold, B"))
    rows = {row["stratum"]: row["selected"] for row in selectors.strata_summary(audit)}
    assert rows["random"] == 2 and "gold" not in rows
    assert audit.items.gold().get().pair == spare
