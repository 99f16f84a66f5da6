"""The annotator queue: which item to serve next, and what submit, skip and undo change.

Locking contract. Every write concerning an audit item (serving it, labelling, skipping or
undoing it) first takes that AuditItem row's lock (SELECT ... FOR UPDATE) and only then reads
or writes the item's Assignment and Label rows. One lock order everywhere, so no deadlocks;
and because the item lock serialises all of them, these invariants hold:

* an item is served only while its label_count < overlap_k and nobody else holds it live
  (status held, expires_at in the future);
* label_count + live holds never exceeds overlap_k, so no item ends with more than k labels;
* one label per assignment (a retried or double-clicked submit returns the first label).

On PostgreSQL the serving query skips item rows that concurrent requests have locked (SKIP
LOCKED), so sixteen annotators asking at once each get a different item without waiting.
SQLite has no row locks: the statements leave FOR UPDATE out there, and the settings'
transaction_mode IMMEDIATE makes every transaction take the database write lock at BEGIN,
so queue transactions simply run one at a time.

Submit-and-next is one transaction (one durable commit per answer) of five round trips on
PostgreSQL: BEGIN; lock the item and read the assignment; write the label and look for the
next item; hold it and read its texts; COMMIT.

A hold expires after audit.hold_seconds: a forgotten tab starves no one. The expired
Assignment row stays (status held, expiry past) and is renewed if its annotator is served the
item again; a late submit on an expired hold is accepted only while the item still has room.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation import selectors
from annotation.models import Assignment, Audit, AuditItem, Label
from annotation.signals import audit_labels_changed
from corpus.models import Outcome, Pair, Prompt, Response

_M = TypeVar("_M", bound=Model)

CHOICES = ("left", "right", "tie", "both_bad")
CRITERION_CHOICES = ("left", "right", "tie")
_MAX_MS = 2**31 - 1


class QueueError(Exception):
    """A refusal the annotator should read; `field` names the input at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class AuditClosed(QueueError):
    pass


class HoldLost(QueueError):
    pass


class InvalidLabel(QueueError):
    pass


class UndoUnavailable(QueueError):
    pass


@dataclass(frozen=True)
class LabelResult:
    label: Label
    created: bool


def to_outcome(choice: str, *, a_on_left: bool) -> str:
    """The annotator chose a screen side; store it in the pair's own labelling."""
    if choice == "left":
        return Outcome.A if a_on_left else Outcome.B
    if choice == "right":
        return Outcome.B if a_on_left else Outcome.A
    if choice == "tie":
        return Outcome.TIE
    if choice == "both_bad":
        return Outcome.BOTH_BAD
    raise InvalidLabel(f"{choice!r} is not a choice", field="choice")


def to_side(outcome: str, *, a_on_left: bool) -> str:
    """The inverse of to_outcome: what the annotator saw themselves choose."""
    if outcome == Outcome.A:
        return "left" if a_on_left else "right"
    if outcome == Outcome.B:
        return "right" if a_on_left else "left"
    return outcome


# --- SQL ------------------------------------------------------------------------------------
# Serving and submitting run on every answer, sixteen annotators at a time, so they are plain
# SQL through Django's cursor. Written with the ORM, submit-and-next cost ~11 ms of CPU per
# answer on the 2-CPU bench machine, nearly all of it compiling queries, against 0.4 ms for
# a bare SKIP LOCKED loop; as SQL it costs ~2 ms (bench/annotator_bench.py). In one process
# that CPU is what the GIL serialises. The statements are portable (PostgreSQL, and SQLite
# for the demo); row locks are added where the backend has them. Colder paths use the ORM.


@lru_cache(maxsize=4)
def _statements(vendor: str) -> dict[str, str]:
    q = connection.ops.quote_name
    item, assignment = q(AuditItem._meta.db_table), q(Assignment._meta.db_table)
    label, audit = q(Label._meta.db_table), q(Audit._meta.db_table)
    pair, prompt = q(Pair._meta.db_table), q(Prompt._meta.db_table)
    response = q(Response._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    lock_item = " FOR UPDATE OF i" if connection.features.has_select_for_update_of else ""
    returning = " RETURNING id" if connection.features.can_return_columns_from_insert else ""
    return {
        "live_hold": (
            "SELECT s.id, s.a_on_left, s.served_at, s.expires_at,"
            " i.id, i.pair_id, i.stratum, i.position, i.label_count, i.inclusion_probability"
            f" FROM {assignment} s JOIN {item} i ON i.id = s.item_id"
            " WHERE s.annotator_id = %s AND s.status = %s AND s.expires_at > %s"
            " AND i.audit_id = %s ORDER BY s.served_at DESC LIMIT 1"
        ),
        # Breadth first: every item gets its first label before any gets its k-th, so a
        # half-finished audit still covers the whole (randomly ordered) sample. This is the
        # order of the (audit, label_count, position) index, so LIMIT 1 stops at once; rows
        # other requests are serving or labelling right now are skipped, not waited for.
        "candidate": (
            "SELECT i.id, i.pair_id, i.stratum, i.position, i.label_count,"
            f" i.inclusion_probability FROM {item} i"
            " WHERE i.audit_id = %s AND i.label_count < %s"
            f" AND NOT EXISTS (SELECT 1 FROM {assignment} d WHERE d.item_id = i.id"
            "  AND d.annotator_id = %s AND d.status IN (%s, %s))"
            f" AND NOT EXISTS (SELECT 1 FROM {assignment} h WHERE h.item_id = i.id"
            "  AND h.status = %s AND h.expires_at > %s AND h.annotator_id <> %s)"
            "{tried} ORDER BY i.label_count, i.position LIMIT 1" + skip_locked
        ),
        "holds": (
            f"SELECT id, annotator_id, status, expires_at, a_on_left FROM {assignment}"
            " WHERE item_id = %s"
        ),
        "hold": (
            f"INSERT INTO {assignment} (item_id, annotator_id, a_on_left, status, served_at,"
            f" expires_at, skip_reason) VALUES (%s, %s, %s, %s, %s, %s, %s){returning}"
        ),
        # One statement for the usual case: hold the item unless this annotator already has
        # a row for it or someone holds it live (re-read here, after the row lock).
        "hold_if_free": (
            f"INSERT INTO {assignment} (item_id, annotator_id, a_on_left, status, served_at,"
            " expires_at, skip_reason) SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS"
            f" (SELECT 1 FROM {assignment} o WHERE o.item_id = %s AND (o.annotator_id = %s"
            f" OR (o.status = %s AND o.expires_at > %s))){returning}"
        ),
        "renew": f"UPDATE {assignment} SET served_at = %s, expires_at = %s WHERE id = %s",
        # Scalar subqueries rather than a four-way join: the same rows by primary key, and
        # about a fifth of the planning time.
        "texts": (
            "SELECT p.dataset_id, p.prompt_id, p.response_a_id, p.response_b_id,"
            f" (SELECT q.text FROM {prompt} q WHERE q.id = p.prompt_id),"
            f" (SELECT a.text FROM {response} a WHERE a.id = p.response_a_id),"
            f" (SELECT b.text FROM {response} b WHERE b.id = p.response_b_id)"
            f" FROM {pair} p WHERE p.id = %s"
        ),
        "lock_item": (
            f"SELECT i.label_count, a.status FROM {item} i JOIN {audit} a ON a.id = i.audit_id"
            " WHERE i.id = %s" + lock_item
        ),
        "assignment_state": (
            "SELECT s.status, s.served_at, s.expires_at, s.annotator_id, l.id"
            f" FROM {assignment} s LEFT JOIN {label} l ON l.assignment_id = s.id"
            " WHERE s.id = %s"
        ),
        "other_live_holds": (
            f"SELECT COUNT(*) FROM {assignment} WHERE item_id = %s AND status = %s"
            " AND expires_at > %s AND id <> %s"
        ),
        "label": (
            f"INSERT INTO {label} (item_id, assignment_id, annotator_id, outcome, chose_left,"
            " strength, criteria, rationale, time_spent_ms, submission_key, created_at)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s){returning}"
        ),
        "submitted": f"UPDATE {assignment} SET status = %s WHERE id = %s",
        "count_label": f"UPDATE {item} SET label_count = label_count + 1 WHERE id = %s",
    }


def _sql(name: str) -> str:
    return _statements(connection.vendor)[name]


def _db(model: type[Model], field: str, value: Any) -> Any:
    """A Python value as the backend stores it (UUIDs, JSON and datetimes differ by backend)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection)  # type: ignore[union-attr]


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Step:
    sql: str
    params: list[Any]
    inserts: bool = False  # an INSERT whose new id is wanted (RETURNING id, or lastrowid)


def _batch(cursor: Any, *steps: _Step) -> list[list[tuple[Any, ...]]]:
    """Run statements in order and return each one's rows ([] when it returns none).

    On PostgreSQL they travel in one round trip (psycopg's client-side binding sends them as
    one simple query; each statement still gets its own snapshot, so a statement sees what
    the ones before it wrote and what others committed meanwhile). Elsewhere one by one.
    """
    if connection.vendor == "postgresql" and _client_side_binding(cursor):
        cursor.execute("; ".join(step.sql for step in steps), [p for s in steps for p in s.params])
        results = []
        for index in range(len(steps)):
            if index:
                cursor.nextset()
            results.append(cursor.fetchall() if cursor.description else [])
        return results
    results = []
    for step in steps:
        cursor.execute(step.sql, step.params)
        if cursor.description:
            results.append(cursor.fetchall())
        elif step.inserts:
            results.append([(cursor.lastrowid,)] if cursor.rowcount else [])
        else:
            results.append([])
    return results


def _client_side_binding(cursor: Any) -> bool:
    import psycopg

    return isinstance(getattr(cursor, "cursor", None), psycopg.ClientCursor)


def _from_db(model: type[_M], **values: Any) -> _M:
    """A model instance from a raw row; fields not given are deferred (loaded on access)."""
    return model.from_db(connection.alias, list(values), list(values.values()))


def _item_from_row(audit: Audit, row: tuple[Any, ...]) -> AuditItem:
    item_id, pair_id, stratum, position, label_count, probability = row
    item = _from_db(
        AuditItem,
        id=item_id,
        audit_id=audit.pk,
        pair_id=pair_id,
        stratum=stratum,
        position=position,
        label_count=label_count,
        inclusion_probability=probability,
    )
    item.audit = audit
    return item


def _served(
    texts: tuple[Any, ...],
    *,
    assignment_id: int,
    item: AuditItem,
    annotator: Any,
    a_on_left: bool,
    served_at: datetime,
    expires_at: datetime,
) -> Assignment:
    """The Assignment with its item, pair, prompt and both responses' texts attached, built
    from the "texts" row. Only texts are loaded: model names stay out of the annotator's path
    (they would load on access, so nothing breaks if other code asks)."""
    dataset_id, prompt_id, response_a_id, response_b_id, prompt_text, a_text, b_text = texts
    pair = _from_db(
        Pair,
        id=item.pair_id,
        dataset_id=dataset_id,
        prompt_id=prompt_id,
        response_a_id=response_a_id,
        response_b_id=response_b_id,
    )
    pair.prompt = _from_db(Prompt, id=prompt_id, text=prompt_text)
    pair.response_a = _from_db(Response, id=response_a_id, prompt_id=prompt_id, text=a_text)
    pair.response_b = _from_db(Response, id=response_b_id, prompt_id=prompt_id, text=b_text)
    item.pair = pair
    assignment = _from_db(
        Assignment,
        id=assignment_id,
        item_id=item.pk,
        annotator_id=annotator.pk,
        a_on_left=bool(a_on_left),
        status=Assignment.Status.HELD,
        served_at=served_at,
        expires_at=expires_at,
    )
    assignment.item = item
    assignment.annotator = annotator
    return assignment


def _texts_step(item: AuditItem) -> _Step:
    return _Step(_sql("texts"), [item.pair_id])


# --- Serving ----------------------------------------------------------------------------------


def queue_next(*, audit: Audit, annotator: Any, now: datetime | None = None) -> Assignment | None:
    """The item `annotator` should label now, held for them, or None when nothing is free.

    Their live hold first (a reload resumes the same item with the same sides); otherwise the
    first item, breadth first, that they have not labelled or skipped, that has fewer than
    overlap_k labels and that nobody else holds. Locks: SELECT ... FOR UPDATE SKIP LOCKED on
    the candidate AuditItem row, then writes its Assignment (see the module docstring).
    """
    if audit.status != Audit.Status.OPEN:
        return None
    with transaction.atomic():
        return _next_in_transaction(audit, annotator, now or timezone.now())


def _live_hold_step(audit: Audit, annotator: Any, now: datetime) -> _Step:
    return _Step(
        _sql("live_hold"),
        [annotator.pk, Assignment.Status.HELD, _db(Assignment, "served_at", now), audit.pk],
    )


def _candidate_step(audit: Audit, annotator: Any, now: datetime, tried: list[int]) -> _Step:
    sql = _sql("candidate").format(
        tried=f" AND i.id NOT IN ({', '.join(['%s'] * len(tried))})" if tried else ""
    )
    params = [
        audit.pk,
        audit.overlap_k,
        annotator.pk,
        Assignment.Status.SUBMITTED,
        Assignment.Status.SKIPPED,
        Assignment.Status.HELD,
        _db(Assignment, "served_at", now),
        annotator.pk,
        *tried,
    ]
    return _Step(sql, params)


def _next_in_transaction(
    audit: Audit,
    annotator: Any,
    now: datetime,
    *,
    live_hold: list[tuple[Any, ...]] | None = None,
    candidate: list[tuple[Any, ...]] | None = None,
) -> Assignment | None:
    """queue_next's work inside the caller's transaction. `live_hold` and `candidate` are the
    rows of those two queries when the caller already ran them in its own round trip."""
    with connection.cursor() as cursor:
        if live_hold is None:
            (live_hold,) = _batch(cursor, _live_hold_step(audit, annotator, now))
        if live_hold:
            row = live_hold[0]
            item = _item_from_row(audit, row[4:])
            (texts,) = _batch(cursor, _texts_step(item))
            return _served(
                texts[0],
                assignment_id=row[0],
                item=item,
                annotator=annotator,
                a_on_left=row[1],
                served_at=_aware(row[2]),
                expires_at=_aware(row[3]),
            )
        tried: list[int] = []
        while True:
            if candidate is None:
                (candidate,) = _batch(cursor, _candidate_step(audit, annotator, now, tried))
            if not candidate:
                return None
            item = _item_from_row(audit, candidate[0])
            candidate = None
            assignment = _claim(cursor, item, audit, annotator, now)
            if assignment is not None:
                return assignment
            tried.append(item.pk)


def _claim(
    cursor: Any, item: AuditItem, audit: Audit, annotator: Any, now: datetime
) -> Assignment | None:
    """Hold `item` for `annotator`, if it is still free. Call holding the item's row lock.

    The candidate query's subqueries saw the database as of its own start; a hold committed
    between then and our lock would be missed, so the holds are read again, fresh: inside the
    insert for the usual case, and in full when the annotator has a row for the item already
    (their own expired hold, which is renewed with the side order they saw).
    """
    expires = now + timedelta(seconds=audit.hold_seconds)
    served_db = _db(Assignment, "served_at", now)
    expires_db = _db(Assignment, "expires_at", expires)
    a_on_left = secrets.randbelow(2) == 0
    held = Assignment.Status.HELD
    inserted, texts = _batch(
        cursor,
        _Step(
            _sql("hold_if_free"),
            [
                *(item.pk, annotator.pk, a_on_left, held, served_db, expires_db, ""),
                *(item.pk, annotator.pk, held, served_db),  # the NOT EXISTS check
            ],
            inserts=True,
        ),
        _texts_step(item),
    )
    if inserted and inserted[0][0] is not None:
        assignment_id = inserted[0][0]
    else:
        cursor.execute(_sql("holds"), [item.pk])
        mine = None
        for pk, who, status, expires_at, own_side in cursor.fetchall():
            if who == annotator.pk:
                mine = (pk, status, own_side)
            elif status == held and _aware(expires_at) > now:
                return None
        if mine is None or mine[1] != held:
            return None
        assignment_id, a_on_left = mine[0], mine[2]
        cursor.execute(_sql("renew"), [served_db, expires_db, assignment_id])
    return _served(
        texts[0],
        assignment_id=assignment_id,
        item=item,
        annotator=annotator,
        a_on_left=a_on_left,
        served_at=now,
        expires_at=expires,
    )


def _clean_input(
    audit: Audit,
    *,
    choice: str,
    strength: int | None,
    criteria: Mapping[str, str] | None,
    rationale: str,
    a_on_left: bool,
) -> tuple[str, bool | None, int | None, dict[str, str], str]:
    if choice not in CHOICES:
        raise InvalidLabel(f"{choice!r}: choose left, right, tie or both bad", field="choice")
    if choice == "both_bad" and not audit.allow_both_bad:
        raise InvalidLabel("This audit does not offer 'both bad'.", field="choice")
    if strength is not None:
        if not audit.allow_strength:
            strength = None  # a stale form from before the audit changed: ignore, don't fail
        elif strength not in (1, 2):
            raise InvalidLabel(
                f"strength {strength}: use 1 (slightly) or 2 (clearly)", field="strength"
            )
        elif choice not in ("left", "right"):
            strength = None  # a tie or "both bad" has no strength
    stored: dict[str, str] = {}
    for name, value in (criteria or {}).items():
        if name not in audit.criteria:
            raise InvalidLabel(f"{name!r} is not a criterion of this audit", field="criteria")
        if not value:
            continue
        if value not in CRITERION_CHOICES:
            raise InvalidLabel(f"{name}: {value!r} is not left, right or tie", field="criteria")
        stored[name] = to_outcome(value, a_on_left=a_on_left)
    if len(rationale) > 5000:
        raise InvalidLabel("The rationale is limited to 5,000 characters.", field="rationale")
    outcome = to_outcome(choice, a_on_left=a_on_left)
    chose_left = True if choice == "left" else False if choice == "right" else None
    return outcome, chose_left, strength, stored, rationale.strip()


def label_submit(
    *,
    assignment: Assignment,
    choice: str,
    submission_key: uuid.UUID | str,
    strength: int | None = None,
    criteria: Mapping[str, str] | None = None,
    rationale: str = "",
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> LabelResult:
    """Record the annotator's answer to an assignment. Idempotent.

    `choice` is the side they saw (left/right/tie/both_bad), converted here to the pair's A/B
    with the stored side order. `submission_key` is minted when the form is rendered: a
    retried request (same key) or a second submit for the same assignment returns the first
    label with created=False. The client's `time_spent_ms` is capped by the time since the
    item was served. Locks: the item row (FOR UPDATE), then its assignment (module docstring).
    """
    answer = _Answer.clean(
        assignment,
        choice=choice,
        submission_key=submission_key,
        strength=strength,
        criteria=criteria,
        rationale=rationale,
        time_spent_ms=time_spent_ms,
    )
    try:
        with transaction.atomic():
            result, _ = _submit_in_transaction(assignment, answer, now or timezone.now())
            return result
    except IntegrityError:
        raise _key_reused() from None


def _key_reused() -> InvalidLabel:
    # Only a submission key already used for *another* assignment gets here: a second submit
    # for the same assignment is answered under the item lock, before any insert.
    return InvalidLabel(
        "This form was already used for another item; reload the page.", field="submission_key"
    )


@dataclass(frozen=True)
class _Answer:
    key: uuid.UUID
    outcome: str
    chose_left: bool | None
    strength: int | None
    criteria: dict[str, str]
    rationale: str
    time_spent_ms: int | None

    @classmethod
    def clean(
        cls,
        assignment: Assignment,
        *,
        choice: str,
        submission_key: uuid.UUID | str,
        strength: int | None,
        criteria: Mapping[str, str] | None,
        rationale: str,
        time_spent_ms: int | None,
    ) -> _Answer:
        try:
            key = uuid.UUID(str(submission_key))
        except ValueError as exc:
            raise InvalidLabel(
                "The form is missing its submission key; reload the page.",
                field="submission_key",
            ) from exc
        outcome, chose_left, strength, stored, text = _clean_input(
            assignment.item.audit,
            choice=choice,
            strength=strength,
            criteria=criteria,
            rationale=rationale,
            a_on_left=assignment.a_on_left,
        )
        return cls(key, outcome, chose_left, strength, stored, text, time_spent_ms)


def _submit_in_transaction(
    assignment: Assignment, answer: _Answer, now: datetime, *then: _Step
) -> tuple[LabelResult, list[list[tuple[Any, ...]]]]:
    """label_submit's work inside the caller's transaction; `then` are statements to run in
    the same round trip as the writes (their rows are returned)."""
    audit = assignment.item.audit
    with connection.cursor() as cursor:
        locked, state = _batch(
            cursor,
            _Step(_sql("lock_item"), [assignment.item_id]),
            _Step(_sql("assignment_state"), [assignment.pk]),
        )
        label_count, audit_status = locked[0]
        status, served_at, expires_at, annotator_id, label_id = state[0]
        if label_id is not None:
            return LabelResult(Label.objects.get(pk=label_id), created=False), []
        if audit_status != Audit.Status.OPEN:
            raise AuditClosed("This audit is closed; no more labels are taken.")
        if status == Assignment.Status.SKIPPED:
            raise HoldLost("You skipped this item, so the answer was not recorded.")
        if _aware(expires_at) <= now:
            cursor.execute(
                _sql("other_live_holds"),
                [
                    assignment.item_id,
                    Assignment.Status.HELD,
                    _db(Assignment, "expires_at", now),
                    assignment.pk,
                ],
            )
            if label_count + cursor.fetchone()[0] >= audit.overlap_k:
                raise HoldLost(
                    "Your hold on this item expired and it went to someone else; "
                    "your answer was not recorded."
                )
        elapsed = max(0, int((now - _aware(served_at)).total_seconds() * 1000))
        claimed = answer.time_spent_ms
        spent = min(elapsed if claimed is None or claimed < 0 else min(claimed, elapsed), _MAX_MS)
        values = {
            "item_id": assignment.item_id,
            "assignment_id": assignment.pk,
            "annotator_id": annotator_id,
            "outcome": answer.outcome,
            "chose_left": answer.chose_left,
            "strength": answer.strength,
            "criteria": answer.criteria,
            "rationale": answer.rationale,
            "time_spent_ms": spent,
            "submission_key": answer.key,
            "created_at": now,
        }
        params = [
            _db(Label, name, value)
            if name in ("criteria", "submission_key", "created_at")
            else value
            for name, value in values.items()
        ]
        inserted, _, _, *after = _batch(
            cursor,
            _Step(_sql("label"), params, inserts=True),
            _Step(_sql("submitted"), [Assignment.Status.SUBMITTED, assignment.pk]),
            _Step(_sql("count_label"), [assignment.item_id]),
            *then,
        )
    label = _from_db(Label, id=inserted[0][0], **values)
    _snapshot_after_commit(audit)
    return LabelResult(label, created=True), after


def _snapshot_after_commit(audit: Audit) -> None:
    """Tell the apps above (analysis) that the audit's labels changed: it asks for a fresh
    report once this transaction commits, coalesced there; the annotator never waits."""
    audit_labels_changed.send(sender=Audit, audit=audit)


def label_submit_and_next(
    *,
    assignment: Assignment,
    choice: str,
    submission_key: uuid.UUID | str,
    strength: int | None = None,
    criteria: Mapping[str, str] | None = None,
    rationale: str = "",
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> tuple[LabelResult, Assignment | None]:
    """label_submit, then queue_next for the same annotator, in one transaction: the label and
    the next hold commit together, one durable commit per answer instead of two, and no
    savepoints in between. Raises as label_submit does (nothing written), or returns both.
    """
    answer = _Answer.clean(
        assignment,
        choice=choice,
        submission_key=submission_key,
        strength=strength,
        criteria=criteria,
        rationale=rationale,
        time_spent_ms=time_spent_ms,
    )
    now = now or timezone.now()
    try:
        audit, annotator = assignment.item.audit, assignment.annotator
        with transaction.atomic():
            # The next item's queries ride in the same round trip as the label's writes (and
            # see them). If the annotator turns out to hold another item live, the candidate
            # row locked on the way is simply released at commit.
            result, after = _submit_in_transaction(
                assignment,
                answer,
                now,
                _live_hold_step(audit, annotator, now),
                _candidate_step(audit, annotator, now, []),
            )
            following = None
            if audit.status == Audit.Status.OPEN:
                live_hold, candidate = after if after else (None, None)
                following = _next_in_transaction(
                    audit, annotator, now, live_hold=live_hold, candidate=candidate
                )
    except IntegrityError:
        raise _key_reused() from None
    return result, following


def label_undo(*, label_id: int, annotator: Any, now: datetime | None = None) -> Assignment:
    """Take back the annotator's latest label within the undo window (ANNOTATION_UNDO_SECONDS,
    default 30 s): the label is deleted, label_count drops by one and the assignment is held
    again with a fresh expiry, so the same item (same sides) is served next. Any other item
    they were holding in that audit is released. Only their most recent label qualifies;
    undoing twice is refused. Locks: the item row, then its assignment and label.
    """
    now = now or timezone.now()
    with transaction.atomic():
        label = (
            Label.objects.filter(pk=label_id, annotator=annotator)
            .select_related("item__audit")
            .first()
        )
        if label is None:
            raise UndoUnavailable("That label has already been undone.")
        audit = label.item.audit
        latest = selectors.undoable_label(audit, annotator, now=now)
        if latest is None or latest.pk != label.pk:
            raise UndoUnavailable(
                f"Only your latest label can be undone, within {selectors.undo_seconds()} seconds."
            )
        AuditItem.objects.select_for_update().get(pk=label.item_id)
        if not Label.objects.filter(pk=label.pk).exists():
            raise UndoUnavailable("That label has already been undone.")
        Assignment.objects.filter(
            item__audit=audit, annotator=annotator, status=Assignment.Status.HELD
        ).exclude(pk=label.assignment_id).delete()
        assignment_id = label.assignment_id
        label.delete()
        Assignment.objects.filter(pk=assignment_id).update(
            status=Assignment.Status.HELD,
            served_at=now,
            expires_at=now + timedelta(seconds=audit.hold_seconds),
        )
        AuditItem.objects.filter(pk=label.item_id).update(label_count=F("label_count") - 1)
        _snapshot_after_commit(label.item.audit)
    return selectors.served_assignment(assignment_id)


def item_skip(*, assignment: Assignment, reason: str) -> Assignment:
    """Pass on a held item, saying why. The annotator is not served it again; it stays open
    for others. Skipping twice is harmless. Locks: the item row, then the assignment."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidLabel("Say why you skip this item.", field="reason")
    with transaction.atomic():
        AuditItem.objects.select_for_update().get(pk=assignment.item_id)
        current = Assignment.objects.get(pk=assignment.pk)
        if current.status == Assignment.Status.SUBMITTED:
            raise InvalidLabel("This item is already labelled; undo the label instead.")
        if current.status == Assignment.Status.HELD:
            current.status = Assignment.Status.SKIPPED
            current.skip_reason = reason[:500]
            current.save(update_fields=["status", "skip_reason"])
    return current
