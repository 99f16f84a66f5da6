"""`assignment_for_annotator` (SQL built once from the models) against its ORM reference:
the same objects with the same field values, and the same 404 and 403."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from annotation import queue
from annotation.models import Assignment
from annotation.selectors import assignment_for_annotator, assignment_for_annotator_orm
from annotation.serializers import (
    AssignmentOutput,
    LabelOutput,
    assignment_output,
    label_output,
)
from tests.annotation.test_audit_build import make_audit

LOOKUPS: list[Callable[[Any, int], Assignment]] = [
    assignment_for_annotator,
    assignment_for_annotator_orm,
]


def _fields(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


@pytest.mark.every_database
def test_it_loads_the_same_assignment_item_and_audit_as_the_orm(
    lead: User, annotator: User, other_annotator: User
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    audit.criteria = ["accuracy", "tone"]  # a JSON field: the ORM decodes it, so must the SQL
    audit.save()
    held = queue.queue_next(audit=audit, annotator=annotator)
    assert held is not None

    with CaptureQueriesContext(connection) as queries:
        fast = assignment_for_annotator(annotator, held.pk)
    slow = assignment_for_annotator_orm(annotator, held.pk)

    assert len(queries) == 1
    assert _fields(fast) == _fields(slow)
    assert _fields(fast.item) == _fields(slow.item)
    assert _fields(fast.item.audit) == _fields(slow.item.audit)
    assert fast.item.audit.criteria == ["accuracy", "tone"]
    assert fast.served_at == held.served_at and fast.served_at.tzinfo is not None
    with CaptureQueriesContext(connection) as queries:
        assert fast.item.audit.pk == audit.pk and fast.item_id == held.item_id
    assert len(queries) == 0  # item and audit came with it


@pytest.mark.parametrize("lookup", LOOKUPS, ids=["sql", "orm"])
def test_it_refuses_another_persons_or_a_missing_assignment_and_a_removed_annotator(
    lookup: Callable[[Any, int], Assignment], lead: User, annotator: User, other_annotator: User
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    held = queue.queue_next(audit=audit, annotator=annotator)
    assert held is not None
    with pytest.raises(Http404):
        lookup(other_annotator, held.pk)  # not theirs
    with pytest.raises(Http404):
        lookup(annotator, held.pk + 1000)  # no such assignment
    with pytest.raises(Http404):
        lookup(annotator, 2**70)  # past the column's integer range (schemathesis found a 500)
    audit.annotators.remove(annotator)
    with pytest.raises(PermissionDenied):
        lookup(annotator, held.pk)  # taken off the audit


@pytest.mark.parametrize("a_on_left", [True, False])
def test_the_label_calls_answer_is_what_the_serializers_give(
    a_on_left: bool, lead: User, annotator: User, other_annotator: User
) -> None:
    """assignment_output / label_output (the label call's answer) against AssignmentOutput and
    LabelOutput (the API's schema), field for field; only the fresh submission key differs."""
    audit = make_audit(lead=lead, annotators=[annotator, other_annotator], n_items=3, k=2)
    audit.ask_response_classes = True
    audit.criteria = ["accuracy"]
    audit.save()
    held = queue.queue_next(audit=audit, annotator=annotator)
    assert held is not None
    Assignment.objects.filter(pk=held.pk).update(a_on_left=a_on_left)
    held.refresh_from_db()
    result, following = queue.label_submit_and_next(
        assignment=held,
        choice="left",
        submission_key=uuid.uuid4(),
        strength=2,
        criteria={"accuracy": "right"},
        rationale="because",
        time_spent_ms=1234,
        classes={"left": "ethical_refusal", "right": "normal"},
    )
    assert following is not None
    result.label.assignment = held

    label = label_output(result.label)
    assert label == dict(LabelOutput(result.label).data)
    assert label["choice"] == "left" and label["classes"] == {
        "left": "ethical_refusal",
        "right": "normal",
    }
    mine, theirs = assignment_output(following), dict(AssignmentOutput(following).data)
    assert uuid.UUID(mine.pop("submission_key")) != uuid.UUID(theirs.pop("submission_key"))
    assert mine == theirs
