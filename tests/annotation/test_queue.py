"""The labelling queue: who gets which item, holds and their expiry, idempotent submits, undo."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from annotation import queue, services
from annotation.models import Assignment, Audit, AuditItem, Label
from tests.annotation.test_audit_build import make_audit
from tests.factories import UserFactory


def submit(assignment: Assignment, choice: str = "left", **extra: Any) -> queue.LabelResult:
    return queue.label_submit(
        assignment=assignment, choice=choice, submission_key=uuid.uuid4(), **extra
    )


def held_next(audit: Audit, annotator: User) -> Assignment:
    """The next item served to ``annotator``; there is one."""
    assignment = queue.queue_next(audit=audit, annotator=annotator)
    assert assignment is not None
    return assignment


@pytest.fixture
def audit(lead: User, annotator: User, other_annotator: User) -> Audit:
    return make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=4, k=2)


def test_it_serves_the_first_item_in_the_shuffled_order(audit: Audit, annotator: User) -> None:
    assignment = held_next(audit, annotator)
    assert assignment.item.position == 0
    assert assignment.status == Assignment.Status.HELD
    assert assignment.expires_at - assignment.served_at == timedelta(seconds=audit.hold_seconds)


def test_it_never_serves_an_item_someone_else_holds(
    audit: Audit, annotator: User, other_annotator: User
) -> None:
    mine = queue.queue_next(audit=audit, annotator=annotator)
    theirs = queue.queue_next(audit=audit, annotator=other_annotator)
    assert mine and theirs
    assert mine.item_id != theirs.item_id


def test_it_resumes_the_same_item_with_the_same_sides_on_reload(
    audit: Audit, annotator: User
) -> None:
    first = queue.queue_next(audit=audit, annotator=annotator)
    again = queue.queue_next(audit=audit, annotator=annotator)
    assert first and again
    assert (again.pk, again.item_id, again.a_on_left) == (first.pk, first.item_id, first.a_on_left)
    assert Assignment.objects.count() == 1


def test_it_never_serves_an_item_twice_to_one_annotator(audit: Audit, annotator: User) -> None:
    seen = []
    while (assignment := queue.queue_next(audit=audit, annotator=annotator)) is not None:
        seen.append(assignment.item_id)
        submit(assignment)
    assert sorted(seen) == sorted(audit.items.values_list("pk", flat=True))


def test_it_stops_serving_an_item_once_it_has_k_labels(lead: User) -> None:
    people: list[Any] = [UserFactory(username=f"a{i}") for i in range(3)]
    audit = make_audit(lead=lead, annotators=people, n_items=3, k=2)
    for person in people:
        while (assignment := queue.queue_next(audit=audit, annotator=person)) is not None:
            submit(assignment)
    assert list(audit.items.values_list("label_count", flat=True)) == [2, 2, 2]
    assert Label.objects.count() == 6
    pairs = Counter(Label.objects.values_list("item_id", "annotator_id"))
    assert set(pairs.values()) == {1}


def test_it_hands_an_expired_hold_to_someone_else(
    audit: Audit, annotator: User, other_annotator: User
) -> None:
    k1 = make_audit(lead=audit.created_by, annotators=[annotator, other_annotator], n_items=1, k=1)
    forgotten = queue.queue_next(audit=k1, annotator=annotator)
    assert queue.queue_next(audit=k1, annotator=other_annotator) is None
    later = timezone.now() + timedelta(seconds=k1.hold_seconds + 1)
    taken = queue.queue_next(audit=k1, annotator=other_annotator, now=later)
    assert forgotten and taken
    assert taken.item_id == forgotten.item_id
    assert taken.annotator == other_annotator


def test_it_refuses_a_late_submit_once_the_item_went_to_someone_else(
    lead: User, annotator: User, other_annotator: User
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=1, k=1)
    forgotten = queue.queue_next(audit=audit, annotator=annotator)
    later = timezone.now() + timedelta(seconds=audit.hold_seconds + 1)
    taken = queue.queue_next(audit=audit, annotator=other_annotator, now=later)
    assert forgotten and taken
    with pytest.raises(queue.HoldLost):
        submit(forgotten, now=later)
    submit(taken, now=later)
    assert AuditItem.objects.get().label_count == 1
    assert list(Label.objects.values_list("annotator__username", flat=True)) == [
        other_annotator.username
    ]


def test_it_accepts_a_late_submit_while_the_item_still_has_room(
    lead: User, annotator: User
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=1, k=1)
    assignment = held_next(audit, annotator)
    later = timezone.now() + timedelta(seconds=audit.hold_seconds + 60)
    result = submit(assignment, now=later)
    assert result.created
    assert AuditItem.objects.get().label_count == 1


def test_it_makes_one_label_from_a_retried_submit(audit: Audit, annotator: User) -> None:
    assignment = held_next(audit, annotator)
    key = uuid.uuid4()
    first = queue.label_submit(assignment=assignment, choice="right", submission_key=key)
    retry = queue.label_submit(assignment=assignment, choice="right", submission_key=key)
    assert first.created and not retry.created
    assert retry.label.pk == first.label.pk
    assert Label.objects.count() == 1
    assert AuditItem.objects.get(pk=assignment.item_id).label_count == 1


def test_it_makes_one_label_from_two_forms_for_one_item(audit: Audit, annotator: User) -> None:
    assignment = held_next(audit, annotator)
    submit(assignment, "left")
    second = submit(assignment, "right")  # another tab, another key: still one label
    assert not second.created
    assert Label.objects.get().chose_left is True
    assert AuditItem.objects.get(pk=assignment.item_id).label_count == 1


def test_it_refuses_a_submission_key_used_for_another_item(audit: Audit, annotator: User) -> None:
    key = uuid.uuid4()
    first = held_next(audit, annotator)
    queue.label_submit(assignment=first, choice="left", submission_key=key)
    second = held_next(audit, annotator)
    with pytest.raises(queue.InvalidLabel, match="already used"):
        queue.label_submit(assignment=second, choice="left", submission_key=key)
    assert Label.objects.count() == 1
    assert AuditItem.objects.get(pk=second.item_id).label_count == 0


@pytest.mark.parametrize(
    ("a_on_left", "choice", "outcome"),
    [
        (True, "left", "A"),
        (True, "right", "B"),
        (False, "left", "B"),
        (False, "right", "A"),
        (False, "tie", "tie"),
    ],
)
def test_it_stores_the_side_chosen_as_the_pairs_own_response(
    audit: Audit, annotator: User, a_on_left: bool, choice: str, outcome: str
) -> None:
    assignment = held_next(audit, annotator)
    Assignment.objects.filter(pk=assignment.pk).update(a_on_left=a_on_left)
    assignment.a_on_left = a_on_left
    label = submit(assignment, choice).label
    assert label.outcome == outcome
    assert label.chose_left == {"left": True, "right": False}.get(choice)


def test_it_randomises_the_side_order_per_assignment(lead: User, annotator: User) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=40, k=1)
    orders = set()
    while (assignment := queue.queue_next(audit=audit, annotator=annotator)) is not None:
        orders.add(assignment.a_on_left)
        submit(assignment)
    assert orders == {True, False}


def test_it_caps_the_time_spent_at_the_time_since_serving(audit: Audit, annotator: User) -> None:
    assignment = held_next(audit, annotator)
    now = assignment.served_at + timedelta(seconds=12)
    label = submit(assignment, time_spent_ms=3_600_000, now=now).label
    assert label.time_spent_ms == 12_000
    other = held_next(audit, annotator)
    label = submit(other, time_spent_ms=4_500, now=other.served_at + timedelta(seconds=30)).label
    assert label.time_spent_ms == 4_500


def test_it_stores_strength_and_criteria_in_the_pairs_terms(lead: User, annotator: User) -> None:
    audit = make_audit(
        lead=lead,
        annotators=[annotator],
        n_items=1,
        k=1,
        allow_strength=True,
        criteria=["correctness", "style"],
    )
    assignment = held_next(audit, annotator)
    Assignment.objects.filter(pk=assignment.pk).update(a_on_left=False)
    assignment.a_on_left = False
    label = submit(
        assignment,
        "left",
        strength=2,
        criteria={"correctness": "left", "style": "tie"},
        rationale="  B is right about the date. ",
    ).label
    assert (label.outcome, label.strength) == ("B", 2)
    assert label.criteria == {"correctness": "B", "style": "tie"}
    assert label.rationale == "B is right about the date."


def test_it_refuses_both_bad_when_the_audit_does_not_offer_it(
    audit: Audit, annotator: User
) -> None:
    assignment = held_next(audit, annotator)
    with pytest.raises(queue.InvalidLabel, match="both bad"):
        submit(assignment, "both_bad")
    assert not Label.objects.exists()


def test_it_undoes_the_last_label_and_serves_the_item_again(audit: Audit, annotator: User) -> None:
    first = held_next(audit, annotator)
    label = submit(first, "left").label
    following = queue.queue_next(audit=audit, annotator=annotator)
    assert following and following.item_id != first.item_id

    back = queue.label_undo(label_id=label.pk, annotator=annotator)
    assert back.pk == first.pk and back.status == Assignment.Status.HELD
    assert not Label.objects.exists()
    assert AuditItem.objects.get(pk=first.item_id).label_count == 0
    # The item they were on next is released, and the undone one is served again.
    assert not Assignment.objects.filter(pk=following.pk).exists()
    again = queue.queue_next(audit=audit, annotator=annotator)
    assert again and (again.pk, again.a_on_left) == (first.pk, first.a_on_left)
    assert submit(again, "right").created
    assert Label.objects.get().chose_left is False


@override_settings(ANNOTATION_UNDO_SECONDS=30)
def test_it_refuses_undo_after_the_window(audit: Audit, annotator: User) -> None:
    assignment = held_next(audit, annotator)
    label = submit(assignment).label
    with pytest.raises(queue.UndoUnavailable, match="30 seconds"):
        queue.label_undo(
            label_id=label.pk, annotator=annotator, now=label.created_at + timedelta(seconds=31)
        )
    assert Label.objects.count() == 1


def test_it_refuses_to_undo_an_older_label_or_someone_elses(
    audit: Audit, annotator: User, other_annotator: User
) -> None:
    first = held_next(audit, annotator)
    older = submit(first).label
    second = held_next(audit, annotator)
    submit(second)
    with pytest.raises(queue.UndoUnavailable, match="latest"):
        queue.label_undo(label_id=older.pk, annotator=annotator)
    with pytest.raises(queue.UndoUnavailable):
        queue.label_undo(label_id=older.pk, annotator=other_annotator)
    assert Label.objects.count() == 2


def test_it_skips_an_item_and_serves_it_to_others_only(
    audit: Audit, annotator: User, other_annotator: User
) -> None:
    assignment = held_next(audit, annotator)
    with pytest.raises(queue.InvalidLabel, match="why"):
        queue.item_skip(assignment=assignment, reason="  ")
    queue.item_skip(assignment=assignment, reason="outside my expertise")
    skipped = Assignment.objects.get(pk=assignment.pk)
    assert (skipped.status, skipped.skip_reason) == ("skipped", "outside my expertise")
    served_to_me = []
    while (nxt := queue.queue_next(audit=audit, annotator=annotator)) is not None:
        served_to_me.append(nxt.item_id)
        submit(nxt)
    assert assignment.item_id not in served_to_me
    served_to_them = []
    while (theirs := queue.queue_next(audit=audit, annotator=other_annotator)) is not None:
        served_to_them.append(theirs.item_id)
        submit(theirs)
    assert assignment.item_id in served_to_them
    # Complete first: the items with one label came before the skipped one, which had none.
    assert served_to_them[-1] == assignment.item_id


def test_it_serves_nothing_and_takes_no_labels_in_a_closed_audit(
    audit: Audit, annotator: User
) -> None:
    assignment = held_next(audit, annotator)
    services.audit_status_set(audit=audit, status=Audit.Status.CLOSED)
    assert queue.queue_next(audit=audit, annotator=annotator) is None
    with pytest.raises(queue.AuditClosed):
        submit(assignment)
    assert not Label.objects.exists()
