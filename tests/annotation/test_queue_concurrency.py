"""Sixteen annotators labelling at once on PostgreSQL: SKIP LOCKED hands out distinct items, and
the complete-first policy holds under contention."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, connections

from annotation import queue, selectors
from annotation.models import Audit, AuditItem, Label
from config.roles import ensure_groups
from tests.annotation.test_audit_build import make_audit
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (row locks and SKIP LOCKED); set DATABASE_URL=postgres://...",
    ),
]

ANNOTATORS = 16
ITEMS = 300
K = 2


def _audit_for_16(tag: str, items: int, **options: Any) -> tuple[Audit, list[Any]]:
    """An audit of `items` fresh pairs, k = 2, for sixteen annotators."""
    _, annotator_group = ensure_groups()
    people: list[Any] = [UserFactory(username=f"{tag}-{i:02d}") for i in range(ANNOTATORS)]
    for person in people:
        person.groups.add(annotator_group)
    audit = make_audit(
        lead=UserFactory(username=f"{tag}-lead"),
        annotators=people,
        n_items=items,
        k=K,
        seed=3,
        name=f"Sixteen at once ({tag})",
        dataset_name=f"audit-{tag}",
        **options,
    )
    return audit, people


def _all_at_once(people: list[Any], work: Any) -> None:
    """Run `work(person)` for everyone in threads that start together, and wait for them."""
    start = threading.Barrier(len(people))

    def run(person: Any) -> None:
        start.wait()
        work(person)

    threads = [threading.Thread(target=run, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)


def _label_until_done(
    audit: Audit, user: Any, created: list[int], errors: list[BaseException]
) -> None:
    try:
        while True:
            assignment = queue.queue_next(audit=audit, annotator=user)
            if assignment is None:
                # Items may still be held by others who have not submitted yet: wait for them
                # unless nothing is left that this annotator could label.
                if selectors.items_open_to(audit, user) == 0:
                    return
                time.sleep(0.005)
                continue
            result = queue.label_submit(
                assignment=assignment,
                choice=("left", "right", "tie")[assignment.item.position % 3],
                submission_key=uuid.uuid4(),
            )
            if result.created:
                created.append(result.label.pk)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        connections.close_all()


def test_it_gives_every_item_exactly_k_labels_with_16_annotators_at_once(
    transactional_db: None,
) -> None:
    audit, people = _audit_for_16("concurrent", ITEMS)

    created: list[int] = []
    errors: list[BaseException] = []
    _all_at_once(people, lambda person: _label_until_done(audit, person, created, errors))
    assert errors == []

    counts = Counter(Label.objects.filter(item__audit=audit).values_list("item_id", flat=True))
    assert len(counts) == ITEMS
    assert set(counts.values()) == {K}
    assert set(AuditItem.objects.filter(audit=audit).values_list("label_count", flat=True)) == {K}
    per_person = Counter(
        Label.objects.filter(item__audit=audit).values_list("item_id", "annotator_id")
    )
    assert max(per_person.values()) == 1  # nobody labelled an item twice
    assert Label.objects.filter(item__audit=audit).count() == ITEMS * K
    assert sorted(created) == sorted(Label.objects.values_list("pk", flat=True))  # none lost
    # The work was shared, not done by one thread that happened to win every race.
    assert len({annotator for _, annotator in per_person}) == ANNOTATORS


# --- Complete first under contention ----------------------------------------------------------

POLICY_ITEMS = 160


@dataclass(frozen=True)
class Serve:
    annotator: int
    started: float
    ended: float
    item: int
    labels_before: int  # the item's label_count when it was served: 0 = a fresh item


def _label_and_log(
    audit: Audit,
    user: Any,
    serves: list[Serve],
    submits: list[tuple[int, float]],
    errors: list[BaseException],
) -> None:
    """Serve and label until nothing is left, logging when each serve started and ended and
    when each label had committed (time.monotonic, shared by all threads)."""
    try:
        while True:
            started = time.monotonic()
            assignment = queue.queue_next(audit=audit, annotator=user)
            ended = time.monotonic()
            if assignment is None:
                if selectors.items_open_to(audit, user) == 0:
                    return
                time.sleep(0.005)
                continue
            serves.append(
                Serve(user.pk, started, ended, assignment.item_id, assignment.item.label_count)
            )
            queue.label_submit(
                assignment=assignment,
                choice=("left", "right", "tie")[assignment.item.position % 3],
                submission_key=uuid.uuid4(),
            )
            submits.append((assignment.item_id, time.monotonic()))
    except BaseException as exc:
        errors.append(exc)
    finally:
        connections.close_all()


def fresh_served_past_a_free_partial(serves: list[Serve], submits: list[tuple[int, float]]) -> int:
    """Serves of a fresh item while, for certain, a partial item was free for that annotator.

    X is certainly partial and free from the moment its first label committed until the
    second labeller's serve started (with k = 2 and no skips, nobody else holds it then, and
    no transaction locks its row). A serve that started after the first commit and ended
    before the second serve began saw X that way; if it returned a fresh item to anyone but
    X's first labeller, complete first was broken. Timing overlaps only make the check more
    lenient, never wrong.
    """
    first_commit: dict[int, float] = {}
    for item, at in sorted(submits, key=lambda pair: pair[1]):
        first_commit.setdefault(item, at)
    first_by = {s.item: s.annotator for s in serves if s.labels_before == 0}
    second_start = {s.item: s.started for s in serves if s.labels_before == 1}
    windows = [
        (first_commit[item], second_start[item], first_by[item])
        for item in second_start
        if item in first_commit
    ]
    return sum(
        1
        for s in serves
        if s.labels_before == 0
        and any(
            opened < s.started and s.ended < closed and s.annotator != first
            for opened, closed, first in windows
        )
    )


def _run_policy(policy: str, tag: str) -> tuple[Audit, list[Serve], list[tuple[int, float]]]:
    audit, people = _audit_for_16(tag, POLICY_ITEMS, queue_policy=policy)
    serves: list[Serve] = []
    submits: list[tuple[int, float]] = []
    errors: list[BaseException] = []
    _all_at_once(people, lambda person: _label_and_log(audit, person, serves, submits, errors))
    assert errors == []
    return audit, serves, submits


@pytest.fixture
def _no_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the queue: no report recomputed after each label (the test
    # settings would run one inline, in every annotator's thread).
    monkeypatch.setattr(queue, "_snapshot_after_commit", lambda audit: None)


def test_it_completes_served_items_before_fresh_ones_with_16_annotators_at_once(
    transactional_db: None, _no_reports: None
) -> None:
    audit, serves, submits = _run_policy(Audit.QueuePolicy.COMPLETE_FIRST, "cf")

    counts = Counter(Label.objects.filter(item__audit=audit).values_list("item_id", flat=True))
    assert max(counts.values()) <= K  # no item over k labels
    assert set(counts.values()) == {K} and len(counts) == POLICY_ITEMS
    assert len(serves) == len(submits) == POLICY_ITEMS * K
    assert fresh_served_past_a_free_partial(serves, submits) == 0
    # Both kinds of serve happened under contention (not one thread doing all the work).
    assert {s.labels_before for s in serves} == {0, 1}
    assert len({s.annotator for s in serves}) == ANNOTATORS


def test_it_would_see_spread_first_serve_fresh_items_past_partial_ones(
    transactional_db: None, _no_reports: None
) -> None:
    """The check above has teeth: the other policy, on the same run, breaks it many times."""
    audit, serves, submits = _run_policy(Audit.QueuePolicy.SPREAD_FIRST, "sf")
    counts = Counter(Label.objects.filter(item__audit=audit).values_list("item_id", flat=True))
    assert set(counts.values()) == {K}
    assert fresh_served_past_a_free_partial(serves, submits) > POLICY_ITEMS // 4
