"""The serving rule is written twice: `queue.candidates` (ORM, the readable reference) and the
SQL statement of the hot path (`queue._candidate_step`). Both must pick the same items in the
same order, in every state the queue meets; `queue_next_orm` must serve what `queue_next`
serves."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from annotation import queue, services
from annotation.models import Audit, AuditItem
from tests.annotation.test_audit_build import make_audit
from tests.factories import AssignmentFactory, UserFactory

Ids = list[int]


def sql_pick(audit: Audit, annotator: Any, now: Any, *, tried: list[int] | None = None) -> Ids:
    """Every item the SQL statement would serve, best first (LIMIT large)."""
    step = queue._candidate_step(audit, annotator, now, tried or [], limit=10_000)
    with connection.cursor() as cursor:
        cursor.execute(step.sql, step.params)
        return [row[0] for row in cursor.fetchall()]


def orm_pick(audit: Audit, annotator: Any, now: Any, *, tried: list[int] | None = None) -> Ids:
    return list(
        queue.candidates(audit, annotator, now)
        .exclude(pk__in=tried or [])
        .values_list("pk", flat=True)
    )


@pytest.fixture
def busy_audit(lead: User) -> tuple[Audit, list[Any]]:
    """Twelve items, k = 3, four people, in a mixed state: complete, partial, held live,
    held but expired, skipped, labelled by the one asking, and a gold item."""
    people = [UserFactory(username=f"s{i}") for i in range(4)]
    audit = make_audit(lead=lead, annotators=people, n_items=12, pairs=13, k=3, seed=9)
    me, a, b, c = people
    items = list(audit.items.order_by("position"))
    now = timezone.now()

    def hold(item: AuditItem, who: Any, *, status: str = "held", expired: bool = False) -> None:
        served = now - timedelta(hours=2) if expired else now
        AssignmentFactory(item=item, annotator=who, status=status, served_at=served)

    for item, count in zip(items, [3, 2, 2, 1, 1, 1, 0, 0, 2, 1, 0, 0], strict=True):
        AuditItem.objects.filter(pk=item.pk).update(label_count=count)
    hold(items[1], a)  # partial, held live by someone else
    hold(items[2], a, expired=True)  # partial, the hold has expired
    hold(items[3], me, status="submitted")  # labelled by the one asking
    hold(items[4], me, status="skipped")
    hold(items[6], b)  # fresh, held live
    hold(items[9], me, expired=True)  # my own expired hold: served to me again
    hold(items[10], c, status="skipped")  # someone else skipped it: still open to me
    spare = audit.dataset.pairs.exclude(pk__in=[i.pair_id for i in items]).get()
    services.gold_add(audit=audit, lines=services.parse_gold_lines(f"{spare.source_key}, A"))
    return audit, people


@pytest.fixture(params=Audit.QueuePolicy.values)
def busy_under_policy(
    request: pytest.FixtureRequest, busy_audit: tuple[Audit, list[Any]]
) -> tuple[Audit, list[Any], str]:
    """The busy audit under each queue policy in turn."""
    audit, people = busy_audit
    services.audit_options_set(audit=audit, queue_policy=request.param)
    return audit, people, request.param


def test_it_picks_the_same_items_with_sql_and_the_orm(
    busy_under_policy: tuple[Audit, list[Any], str],
) -> None:
    audit, people, policy = busy_under_policy
    now = timezone.now()
    for person in people:
        assert sql_pick(audit, person, now) == orm_pick(audit, person, now)
    me = people[0]
    picked = orm_pick(audit, me, now)
    counts = dict(AuditItem.objects.values_list("pk", "label_count"))
    # Never a complete, held-by-others, done-by-me or gold item; in the policy's order.
    expected = sorted(
        AuditItem.objects.sampled()
        .filter(pk__in=picked)
        .values_list("label_count", "position", "pk"),
        key=lambda row: (-row[0] if policy == "complete_first" else row[0], row[1]),
    )
    assert picked == [pk for _, _, pk in expected]
    assert all(counts[pk] < audit.overlap_k for pk in picked)
    assert len(picked) == 7  # 12 items - complete - held live x2 - labelled - skipped
    tried = picked[:2]
    assert sql_pick(audit, me, now, tried=tried) == orm_pick(audit, me, now, tried=tried)


def test_it_picks_nothing_for_someone_set_aside_either_way(
    busy_audit: tuple[Audit, list[Any]], lead: User
) -> None:
    audit, people = busy_audit
    services.annotator_set_aside(audit=audit, annotator=people[1], by=lead)
    now = timezone.now()
    assert sql_pick(audit, people[1], now) == orm_pick(audit, people[1], now) == []
    assert sql_pick(audit, people[0], now) == orm_pick(audit, people[0], now) != []


def test_it_serves_the_same_item_with_queue_next_and_its_orm_reference(
    busy_under_policy: tuple[Audit, list[Any], str],
) -> None:
    audit, people, _ = busy_under_policy
    for person in people:
        now = timezone.now()
        with transaction.atomic():
            by_sql = queue.queue_next(audit=audit, annotator=person, now=now)
            transaction.set_rollback(True)
        with transaction.atomic():
            by_orm = queue.queue_next_orm(audit=audit, annotator=person, now=now)
            transaction.set_rollback(True)
        assert (by_sql and by_sql.item_id) == (by_orm and by_orm.item_id)
    # Then for real, in turn, until the audit is done: the same sequence both ways.
    assert _drain(audit, people, queue.queue_next) == _drain_again(audit, people)


def _drain(audit: Audit, people: list[Any], serve: Any) -> list[int]:
    served = []
    with transaction.atomic():
        for _ in range(60):
            progress = False
            for person in people:
                assignment = serve(audit=audit, annotator=person)
                if assignment is None:
                    continue
                progress = True
                served.append(assignment.item_id)
                queue.label_submit(assignment=assignment, choice="tie", submission_key=uuid.uuid4())
            if not progress:
                break
        transaction.set_rollback(True)
    return served


def _drain_again(audit: Audit, people: list[Any]) -> list[int]:
    return _drain(audit, people, queue.queue_next_orm)


def test_it_gives_served_items_their_own_stored_values(lead: User) -> None:
    """The raw rows become model instances with each value on its own field."""
    people = [UserFactory(username=f"v{i}") for i in range(2)]
    audit = make_audit(lead=lead, annotators=people, n_items=3, pairs=5, k=2)
    first = queue.queue_next(audit=audit, annotator=people[0])
    assert first is not None
    queue.label_submit(assignment=first, choice="left", submission_key=uuid.uuid4())
    second = queue.queue_next(audit=audit, annotator=people[1])
    assert second is not None
    stored = AuditItem.objects.get(pk=second.item_id)
    served = second.item
    assert (served.position, served.label_count, served.inclusion_probability) == (
        stored.position,
        stored.label_count,
        stored.inclusion_probability,
    )
    assert (served.label_count, served.inclusion_probability) == (1, pytest.approx(0.6))
