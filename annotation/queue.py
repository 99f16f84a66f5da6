"""The annotator queue: which item to serve next, and what submit, skip, undo and revise change.

Locking contract. Every write concerning an audit item (serving it, labelling, skipping,
undoing or revising it) first takes that AuditItem row's lock (SELECT ... FOR UPDATE) and only
then reads or writes the item's Assignment and Label rows. One lock order everywhere, so no
deadlocks; and because the item lock serialises all of them, these invariants hold:

* a sampled item is served only while its label_count < overlap_k and nobody else holds it
  live (status held, expires_at in the future);
* label_count + live holds never exceeds overlap_k, so no item ends with more than k labels
  that count (label_count counts the labels of annotators no lead has set aside);
* one label per assignment (a retried or double-clicked submit returns the first label).

Gold items (known answers, `Stratum.GOLD`) are outside the sample and outside k: every
annotator may answer each one once, several may hold one at a time, and they are mixed into
an annotator's queue at the audit's `gold_percent`.

The serving order is the audit's policy. Complete first (the default): an item that has
some labels but fewer than k, and that nobody holds, comes before a fresh one, so the labels
given so far make complete items. Spread first: every item gets its first label before any
gets its k-th. Each order is an index of its own (`audititem_queue_complete`,
`audititem_queue`), so LIMIT 1 stops at once.

On PostgreSQL the serving query skips item rows that concurrent requests have locked (SKIP
LOCKED), so sixteen annotators asking at once each get a different item without waiting.
Queue transactions wait for a lock only on their first item row, holding no other; the
services that touch many items of an audit (growing it, setting an annotator aside) first
lock the audit row, then the item rows in id order, and never wait on anything the queue
holds while holding an item a queue transaction waits for. SQLite has no row locks: the
statements leave FOR UPDATE out there, and the settings' transaction_mode IMMEDIATE makes
every transaction take the database write lock at BEGIN, so queue transactions simply run one
at a time.

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
from typing import Any, TypedDict, TypeVar, Unpack

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Model, OuterRef, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation import selectors
from annotation.models import (
    AnnotatorExclusion,
    Assignment,
    Audit,
    AuditItem,
    Label,
    LabelRevision,
    ResponseClassLabel,
    Revision,
    Stratum,
)
from annotation.signals import audit_labels_changed
from corpus.models import Outcome, Pair, Prompt, Response
from judges.models import ResponseClass

_M = TypeVar("_M", bound=Model)

CHOICES = ("left", "right", "tie", "both_bad")
CRITERION_CHOICES = ("left", "right", "tie")
RESPONSE_CLASSES = ResponseClass.values
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


class SetAside(QueueError):
    pass


class RevisionRefused(QueueError):
    pass


SET_ASIDE = "A lead has set your labels in this audit aside; you are served no more items."


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
# SQL through Django's cursor; the serving rule is also written with the ORM (`candidates`,
# `queue_next_orm`) as the readable reference, and tests check that both pick the same items.
# Why SQL: see `_candidate_step`. The statements are portable (PostgreSQL, and SQLite for the
# demo); row locks are added where the backend has them. Colder paths use the ORM.

_ORDER_SQL = {
    Audit.QueuePolicy.COMPLETE_FIRST: "i.label_count DESC, i.position",
    Audit.QueuePolicy.SPREAD_FIRST: "i.label_count, i.position",
}


@lru_cache(maxsize=4)
def _statements(vendor: str) -> dict[str, str]:
    q = connection.ops.quote_name
    item, assignment = q(AuditItem._meta.db_table), q(Assignment._meta.db_table)
    label, audit = q(Label._meta.db_table), q(Audit._meta.db_table)
    pair, prompt = q(Pair._meta.db_table), q(Prompt._meta.db_table)
    response = q(Response._meta.db_table)
    exclusion = q(AnnotatorExclusion._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    lock_item = " FOR UPDATE OF i" if connection.features.has_select_for_update_of else ""
    returning = " RETURNING id" if connection.features.can_return_columns_from_insert else ""
    item_columns = "i.id, i.pair_id, i.stratum, i.position, i.label_count, i.inclusion_probability"
    # Not for an annotator a lead has set aside; uncorrelated, so evaluated once.
    not_set_aside = (
        f" AND NOT EXISTS (SELECT 1 FROM {exclusion} x WHERE x.audit_id = %s"
        " AND x.annotator_id = %s)"
    )
    not_done_by_me = (
        f" AND NOT EXISTS (SELECT 1 FROM {assignment} d WHERE d.item_id = i.id"
        "  AND d.annotator_id = %s AND d.status IN (%s, %s))"
    )
    statements = {
        "live_hold": (
            f"SELECT s.id, s.a_on_left, s.served_at, s.expires_at, {item_columns}"
            f" FROM {assignment} s JOIN {item} i ON i.id = s.item_id"
            " WHERE s.annotator_id = %s AND s.status = %s AND s.expires_at > %s"
            " AND i.audit_id = %s ORDER BY s.served_at DESC LIMIT 1"
        ),
        # Gold items: outside k, any number of holds; the first one this annotator has not
        # answered or skipped.
        "gold_candidate": (
            f"SELECT {item_columns} FROM {item} i WHERE i.audit_id = %s AND i.stratum = %s"
            + not_done_by_me
            + not_set_aside
            + " ORDER BY i.position LIMIT 1"
            + skip_locked
        ),
        "holds": (
            f"SELECT id, annotator_id, status, expires_at, a_on_left FROM {assignment}"
            " WHERE item_id = %s"
        ),
        # One statement for the usual case: hold the item unless this annotator already has
        # a row for it or someone holds it live (re-read here, after the row lock).
        "hold_if_free": (
            f"INSERT INTO {assignment} (item_id, annotator_id, a_on_left, status, served_at,"
            " expires_at, skip_reason) SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS"
            f" (SELECT 1 FROM {assignment} o WHERE o.item_id = %s AND (o.annotator_id = %s"
            f" OR (o.status = %s AND o.expires_at > %s))){returning}"
        ),
        # A gold item: others' holds do not matter, only this annotator's own row.
        "hold_if_new": (
            f"INSERT INTO {assignment} (item_id, annotator_id, a_on_left, status, served_at,"
            " expires_at, skip_reason) SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS"
            f" (SELECT 1 FROM {assignment} o WHERE o.item_id = %s AND o.annotator_id = %s)"
            f"{returning}"
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
            "SELECT i.label_count, a.status, a.overlap_k, i.stratum,"
            f" EXISTS (SELECT 1 FROM {exclusion} x WHERE x.audit_id = i.audit_id"
            "  AND x.annotator_id = %s)"
            f" FROM {item} i JOIN {audit} a ON a.id = i.audit_id WHERE i.id = %s" + lock_item
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
    for policy, order in _ORDER_SQL.items():
        # Rows other requests are serving or labelling right now are skipped, not waited for.
        statements[f"candidate:{policy}"] = (
            f"SELECT {item_columns} FROM {item} i"
            " WHERE i.audit_id = %s AND i.label_count < %s AND i.stratum <> %s"
            + not_done_by_me
            + f" AND NOT EXISTS (SELECT 1 FROM {assignment} h WHERE h.item_id = i.id"
            "  AND h.status = %s AND h.expires_at > %s AND h.annotator_id <> %s)"
            + not_set_aside
            + "{tried} ORDER BY "
            + order
            + " LIMIT {limit}"
            + skip_locked
        )
    return statements


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
    """A model instance from a raw row; fields not given are deferred (loaded on access).

    Model.from_db pairs a partial row with the model's fields in *their* order, so the values
    are put in that order here, whatever order the caller named them in."""
    names = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


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

# The serving order of each policy, as the ORM writes it (the index of each is on the model).
SERVING_ORDER: dict[str, tuple[str, ...]] = {
    Audit.QueuePolicy.COMPLETE_FIRST: ("-label_count", "position"),
    Audit.QueuePolicy.SPREAD_FIRST: ("label_count", "position"),
}


def candidates(audit: Audit, annotator: Any, now: datetime) -> QuerySet[AuditItem]:
    """The serving rule, written to be read: the sampled items `annotator` may be served now,
    best first. Fewer than k labels; not labelled or skipped by them; held live by nobody
    else; in the audit's policy order (complete first: most labels first; spread first: fewest
    first; then the seeded position). Nothing for an annotator a lead has set aside.

    `_candidate_step` runs the same rule as one SQL statement on the hot path; the tests
    (tests/annotation/test_queue_sql.py) check that both give the same items in the same order.
    """
    if AnnotatorExclusion.objects.filter(audit=audit, annotator=annotator).exists():
        return AuditItem.objects.none()
    done = Assignment.objects.filter(
        item=OuterRef("pk"),
        annotator=annotator,
        status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED],
    )
    held = Assignment.objects.filter(
        item=OuterRef("pk"), status=Assignment.Status.HELD, expires_at__gt=now
    ).exclude(annotator=annotator)
    return (
        AuditItem.objects.sampled()
        .filter(audit=audit, label_count__lt=audit.overlap_k)
        .exclude(Exists(done))
        .exclude(Exists(held))
        .order_by(*SERVING_ORDER[audit.queue_policy])
    )


def _candidate_step(
    audit: Audit, annotator: Any, now: datetime, tried: list[int], *, limit: int = 1
) -> _Step:
    """`candidates(audit, annotator, now)` minus `tried`, first `limit` rows, as one SQL
    statement (FOR UPDATE SKIP LOCKED where the backend has it). The hot path of every answer.

    Why SQL and not the ORM queryset: bench/annotator_bench.py --mode next serves from audits
    built alike in one run, timing queue_next (this statement, batched with the hold and the
    texts) and queue_next_orm (the same rule through the ORM) side by side. On the 2-CPU
    machine (20,000 pairs, 2,000-item audit, load average 12-15 from other jobs), p50 per
    serve: 11.5 ms against 32.0 ms for one annotator; with sixteen at once 26 ms against
    216 ms, 274 serves/s against 48. The ORM's time goes to building and compiling queries in
    Python, which one process's interpreter lock serialises across annotators; the rule is
    the same (tests/annotation/test_queue_sql.py), and this statement is built once per
    backend (`_statements`).
    """
    sql = _sql(f"candidate:{audit.queue_policy}").format(
        tried=f" AND i.id NOT IN ({', '.join(['%s'] * len(tried))})" if tried else "",
        limit=int(limit),
    )
    params = [
        audit.pk,
        audit.overlap_k,
        Stratum.GOLD,
        annotator.pk,
        Assignment.Status.SUBMITTED,
        Assignment.Status.SKIPPED,
        Assignment.Status.HELD,
        _db(Assignment, "served_at", now),
        annotator.pk,
        audit.pk,
        annotator.pk,
        *tried,
    ]
    return _Step(sql, params)


def _gold_step(audit: Audit, annotator: Any) -> _Step:
    return _Step(
        _sql("gold_candidate"),
        [
            audit.pk,
            Stratum.GOLD,
            annotator.pk,
            Assignment.Status.SUBMITTED,
            Assignment.Status.SKIPPED,
            audit.pk,
            annotator.pk,
        ],
    )


def _percent_draw() -> int:
    """0-99, uniformly: whether this serve is a gold item (tests replace it)."""
    return secrets.randbelow(100)


def _gold_due(audit: Audit) -> bool:
    return audit.gold_percent > 0 and _percent_draw() < audit.gold_percent


def queue_next(*, audit: Audit, annotator: Any, now: datetime | None = None) -> Assignment | None:
    """The item `annotator` should label now, held for them, or None when nothing is free.

    Their live hold first (a reload resumes the same item with the same sides); then, at the
    audit's gold rate, a gold item they have not answered; otherwise the first of
    `candidates(...)`. Locks: SELECT ... FOR UPDATE SKIP LOCKED on the candidate AuditItem
    row, then writes its Assignment (see the module docstring).
    """
    if audit.status != Audit.Status.OPEN:
        return None
    with transaction.atomic():
        return _next_in_transaction(audit, annotator, now or timezone.now(), gold=_gold_due(audit))


def _live_hold_step(audit: Audit, annotator: Any, now: datetime) -> _Step:
    return _Step(
        _sql("live_hold"),
        [annotator.pk, Assignment.Status.HELD, _db(Assignment, "served_at", now), audit.pk],
    )


def _first_step(audit: Audit, annotator: Any, now: datetime, *, gold: bool) -> _Step:
    return _gold_step(audit, annotator) if gold else _candidate_step(audit, annotator, now, [])


def _next_in_transaction(
    audit: Audit,
    annotator: Any,
    now: datetime,
    *,
    gold: bool,
    live_hold: list[tuple[Any, ...]] | None = None,
    candidate: list[tuple[Any, ...]] | None = None,
) -> Assignment | None:
    """queue_next's work inside the caller's transaction. `live_hold` and `candidate` are the
    rows of those two queries (`_first_step`) when the caller already ran them in its own
    round trip."""
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
        if gold:
            if candidate is None:
                (candidate,) = _batch(cursor, _gold_step(audit, annotator))
            if candidate:
                item = _item_from_row(audit, candidate[0])
                assignment = _claim(cursor, item, audit, annotator, now, exclusive=False)
                if assignment is not None:
                    return assignment
            candidate = None  # no gold left for them: a sampled item instead
        tried: list[int] = []
        while True:
            if candidate is None:
                (candidate,) = _batch(cursor, _candidate_step(audit, annotator, now, tried))
            if not candidate:
                return None
            item = _item_from_row(audit, candidate[0])
            candidate = None
            assignment = _claim(cursor, item, audit, annotator, now, exclusive=True)
            if assignment is not None:
                return assignment
            tried.append(item.pk)


def _claim(
    cursor: Any, item: AuditItem, audit: Audit, annotator: Any, now: datetime, *, exclusive: bool
) -> Assignment | None:
    """Hold `item` for `annotator`, if it is still free. Call holding the item's row lock.

    The candidate query's subqueries saw the database as of its own start; a hold committed
    between then and our lock would be missed, so the holds are read again, fresh: inside the
    insert for the usual case, and in full when the annotator has a row for the item already
    (their own expired hold, which is renewed with the side order they saw). `exclusive` is
    False for gold items, which others' holds do not block.
    """
    expires = now + timedelta(seconds=audit.hold_seconds)
    served_db = _db(Assignment, "served_at", now)
    expires_db = _db(Assignment, "expires_at", expires)
    a_on_left = secrets.randbelow(2) == 0
    held = Assignment.Status.HELD
    values = [item.pk, annotator.pk, a_on_left, held, served_db, expires_db, ""]
    if exclusive:
        insert = _Step(
            _sql("hold_if_free"),
            [*values, item.pk, annotator.pk, held, served_db],  # the NOT EXISTS check
            inserts=True,
        )
    else:
        insert = _Step(_sql("hold_if_new"), [*values, item.pk, annotator.pk], inserts=True)
    inserted, texts = _batch(cursor, insert, _texts_step(item))
    if inserted and inserted[0][0] is not None:
        assignment_id = inserted[0][0]
    else:
        cursor.execute(_sql("holds"), [item.pk])
        mine = None
        for pk, who, status, expires_at, own_side in cursor.fetchall():
            if who == annotator.pk:
                mine = (pk, status, own_side)
            elif exclusive and status == held and _aware(expires_at) > now:
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


def queue_next_orm(
    *, audit: Audit, annotator: Any, now: datetime | None = None
) -> Assignment | None:
    """queue_next for sampled items, written with the ORM: the readable reference of the serving
    path (no gold draw). Tests check it serves what queue_next serves; bench/annotator_bench.py
    (--mode next) times both side by side. Same locks: the candidate row FOR UPDATE SKIP
    LOCKED, then its Assignment."""
    if audit.status != Audit.Status.OPEN:
        return None
    now = now or timezone.now()
    expires = now + timedelta(seconds=audit.hold_seconds)
    with transaction.atomic():
        live = (
            Assignment.objects.filter(
                item__audit=audit,
                annotator=annotator,
                status=Assignment.Status.HELD,
                expires_at__gt=now,
            )
            .order_by("-served_at")
            .values_list("pk", flat=True)
            .first()
        )
        if live is not None:
            return selectors.served_assignment(live)
        tried: list[int] = []
        while True:
            item = (
                candidates(audit, annotator, now)
                .exclude(pk__in=tried)
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if item is None:
                return None
            holds = Assignment.objects.filter(item=item)
            mine = holds.filter(annotator=annotator).first()
            taken = holds.filter(status=Assignment.Status.HELD, expires_at__gt=now).exclude(
                annotator=annotator
            )
            if taken.exists() or (mine is not None and mine.status != Assignment.Status.HELD):
                tried.append(item.pk)
                continue
            if mine is None:
                mine = Assignment.objects.create(
                    item=item,
                    annotator=annotator,
                    a_on_left=secrets.randbelow(2) == 0,
                    served_at=now,
                    expires_at=expires,
                )
            else:
                mine.served_at, mine.expires_at = now, expires
                mine.save(update_fields=["served_at", "expires_at"])
            return selectors.served_assignment(mine.pk)


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


def _clean_classes(
    audit: Audit, classes: Mapping[str, str] | None, *, a_on_left: bool
) -> dict[str, str]:
    """What each response did, from the screen sides (`left`/`right`) to the pair's A/B.

    Required, for both responses, when the audit asks for response classes; ignored when it
    does not (a stale form from before the audit changed)."""
    if not audit.ask_response_classes:
        return {}
    given = {side: value for side, value in (classes or {}).items() if value}
    unknown = sorted(set(given) - {"left", "right"})
    if unknown:
        raise InvalidLabel(f"classes: {unknown[0]!r} is not left or right", field="classes")
    for side in ("left", "right"):
        if side not in given:
            raise InvalidLabel(
                f"Say what the {side} response did (answered, refused, or with a caveat).",
                field="classes",
            )
        if given[side] not in RESPONSE_CLASSES:
            raise InvalidLabel(
                f"classes: {side} {given[side]!r} is not one of {', '.join(RESPONSE_CLASSES)}",
                field="classes",
            )
    a_side, b_side = ("left", "right") if a_on_left else ("right", "left")
    return {"A": given[a_side], "B": given[b_side]}


def _classes_create(label_id: int, classes: Mapping[str, str]) -> list[ResponseClassLabel]:
    return ResponseClassLabel.objects.bulk_create(
        ResponseClassLabel(label_id=label_id, side=side, response_class=value)
        for side, value in sorted(classes.items())
    )


def _classes_known(label: Label, rows: list[ResponseClassLabel]) -> None:
    """A new label's response classes are the rows just written: store them as
    `label.response_classes.all()` would return them (as prefetch_related does), so answering
    with the label reads nothing back after the commit. Most audits ask for no classes: their
    labels get an empty queryset, built in 4 µs against the filtered one's 30 µs."""
    known = (
        ResponseClassLabel.objects.filter(label_id=label.pk)
        if rows
        else ResponseClassLabel.objects.none()
    )
    known._result_cache = rows
    known._prefetch_done = True  # type: ignore[attr-defined]  # what prefetch_related sets
    label._prefetched_objects_cache = {"response_classes": known}  # type: ignore[attr-defined]


class AnswerFields(TypedDict, total=False):
    """What label_submit and label_submit_and_next take besides the side chosen and the
    submission key (defaults in `_Answer.clean`)."""

    strength: int | None
    criteria: Mapping[str, str] | None
    rationale: str
    time_spent_ms: int | None
    classes: Mapping[str, str] | None


def label_submit(
    *,
    assignment: Assignment,
    choice: str,
    submission_key: uuid.UUID | str,
    now: datetime | None = None,
    **answer_fields: Unpack[AnswerFields],
) -> LabelResult:
    """Record the annotator's answer to an assignment. Idempotent.

    `classes`: what each response did, by screen side ({"left": "normal", "right":
    "ethical_refusal"}), required when the audit asks for response classes; stored as
    `ResponseClassLabel` rows with the label (a retried submit writes nothing more).

    `choice` is the side they saw (left/right/tie/both_bad), converted here to the pair's A/B
    with the stored side order. `submission_key` is minted when the form is rendered: a
    retried request (same key) or a second submit for the same assignment returns the first
    label with created=False. The client's `time_spent_ms` is capped by the time since the
    item was served. Locks: the item row (FOR UPDATE), then its assignment (module docstring).
    """
    answer = _Answer.clean(
        assignment, choice=choice, submission_key=submission_key, **answer_fields
    )
    try:
        with transaction.atomic():
            result, _ = _submit_in_transaction(assignment, answer, now or timezone.now())
            return result
    except IntegrityError:
        raise _key_reused() from None


def _submission_key(value: uuid.UUID | str) -> uuid.UUID:
    """The key minted when the form was rendered (an answer's idempotency key)."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidLabel(
            "The form is missing its submission key; reload the page.", field="submission_key"
        ) from exc


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
    classes: dict[str, str]  # "A"/"B" -> response class; empty when not asked

    @classmethod
    def clean(
        cls,
        assignment: Assignment,
        *,
        choice: str,
        submission_key: uuid.UUID | str,
        strength: int | None = None,
        criteria: Mapping[str, str] | None = None,
        rationale: str = "",
        time_spent_ms: int | None = None,
        classes: Mapping[str, str] | None = None,
    ) -> _Answer:
        key = _submission_key(submission_key)
        outcome, chose_left, strength, stored, text = _clean_input(
            assignment.item.audit,
            choice=choice,
            strength=strength,
            criteria=criteria,
            rationale=rationale,
            a_on_left=assignment.a_on_left,
        )
        audit = assignment.item.audit
        found = _clean_classes(audit, classes, a_on_left=assignment.a_on_left)
        return cls(key, outcome, chose_left, strength, stored, text, time_spent_ms, found)


def _submit_in_transaction(
    assignment: Assignment, answer: _Answer, now: datetime, *then: _Step
) -> tuple[LabelResult, list[list[tuple[Any, ...]]]]:
    """label_submit's work inside the caller's transaction; `then` are statements to run in
    the same round trip as the writes (their rows are returned)."""
    audit = assignment.item.audit
    with connection.cursor() as cursor:
        locked, state = _batch(
            cursor,
            _Step(_sql("lock_item"), [assignment.annotator_id, assignment.item_id]),
            _Step(_sql("assignment_state"), [assignment.pk]),
        )
        label_count, audit_status, overlap_k, stratum, set_aside = locked[0]
        status, served_at, expires_at, annotator_id, label_id = state[0]
        if label_id is not None:
            return LabelResult(Label.objects.get(pk=label_id), created=False), []
        if audit_status != Audit.Status.OPEN:
            raise AuditClosed("This audit is closed; no more labels are taken.")
        if set_aside:
            raise SetAside(SET_ASIDE + " This answer was not recorded.")
        if status == Assignment.Status.SKIPPED:
            raise HoldLost("You skipped this item, so the answer was not recorded.")
        if _aware(expires_at) <= now and stratum != Stratum.GOLD:
            cursor.execute(
                _sql("other_live_holds"),
                [
                    assignment.item_id,
                    Assignment.Status.HELD,
                    _db(Assignment, "expires_at", now),
                    assignment.pk,
                ],
            )
            if label_count + cursor.fetchone()[0] >= overlap_k:
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
    _classes_known(label, _classes_create(label.pk, answer.classes) if answer.classes else [])
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
    now: datetime | None = None,
    **answer_fields: Unpack[AnswerFields],
) -> tuple[LabelResult, Assignment | None]:
    """label_submit, then queue_next for the same annotator, in one transaction: the label and
    the next hold commit together, one durable commit per answer instead of two, and no
    savepoints in between. Raises as label_submit does (nothing written), or returns both.
    """
    answer = _Answer.clean(
        assignment, choice=choice, submission_key=submission_key, **answer_fields
    )
    now = now or timezone.now()
    try:
        audit, annotator = assignment.item.audit, assignment.annotator
        gold = _gold_due(audit)
        with transaction.atomic():
            # The next item's queries ride in the same round trip as the label's writes (and
            # see them). If the annotator turns out to hold another item live, the candidate
            # row locked on the way is simply released at commit.
            result, after = _submit_in_transaction(
                assignment,
                answer,
                now,
                _live_hold_step(audit, annotator, now),
                _first_step(audit, annotator, now, gold=gold),
            )
            following = None
            if audit.status == Audit.Status.OPEN:
                live_hold, candidate = after if after else (None, None)
                following = _next_in_transaction(
                    audit, annotator, now, gold=gold, live_hold=live_hold, candidate=candidate
                )
    except IntegrityError:
        raise _key_reused() from None
    return result, following


def label_undo(*, label_id: int, annotator: Any, now: datetime | None = None) -> Assignment:
    """Take back the annotator's latest label within the undo window (ANNOTATION_UNDO_SECONDS,
    default 30 s): the label is deleted, label_count drops by one and the assignment is held
    again with a fresh expiry, so the same item (same sides) is served next. Any other item
    they were holding in that audit is released. Only their most recent label qualifies;
    undoing twice is refused. The undone label is kept in a LabelRevision (kind "undone").
    Locks: the item row, then its assignment and label.
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
        if selectors.is_set_aside(audit, annotator):
            raise SetAside(SET_ASIDE)
        Assignment.objects.filter(
            item__audit=audit, annotator=annotator, status=Assignment.Status.HELD
        ).exclude(pk=label.assignment_id).delete()
        assignment_id = label.assignment_id
        LabelRevision.objects.create(
            item_id=label.item_id,
            annotator=annotator,
            changed_by=annotator,
            changed_at=now,
            kind=Revision.UNDONE,
            before=label_state(label),
            after=None,
        )
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


def label_state(label: Label) -> dict[str, Any]:
    """What a LabelRevision keeps of a label: its answer in the pair's own labelling."""
    return {
        "label": label.pk,
        "outcome": label.outcome,
        "strength": label.strength,
        "criteria": dict(label.criteria),
        "rationale": label.rationale,
        "classes": label_classes(label),
        "given_at": label.created_at.isoformat() if label.created_at else None,
    }


def label_classes(label: Label) -> dict[str, str]:
    """The response classes given with a label, "A"/"B" -> class (empty when not asked)."""
    return dict(
        ResponseClassLabel.objects.filter(label_id=label.pk).values_list("side", "response_class")
    )


def label_revise(
    *,
    label_id: int,
    annotator: Any,
    choice: str,
    submission_key: uuid.UUID | str,
    strength: int | None = None,
    criteria: Mapping[str, str] | None = None,
    rationale: str = "",
    classes: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> LabelResult:
    """Change the annotator's own label while the audit is open. `choice` is the side they saw
    (the assignment's side order, as when they first answered).

    The label row is replaced by a new one (a new id, the same assignment, the first
    `created_at` and time spent kept) and the change is appended to LabelRevision (who, when,
    before, after): every reader finds the current answer where it always did, and readers
    that watch ids (the analysis snapshot's watermark) see it changed. Idempotent on
    `submission_key`; an unchanged answer writes nothing (created=False). label_count does
    not move. Locks: the item row, then its label (module docstring).
    """
    now = now or timezone.now()
    key = _submission_key(submission_key)
    with transaction.atomic():
        label = (
            Label.objects.filter(pk=label_id, annotator=annotator)
            .select_related("item__audit", "assignment")
            .first()
        )
        if label is None:
            again = Label.objects.filter(submission_key=key, annotator=annotator).first()
            if again is not None:
                return LabelResult(again, created=False)  # a retried revision
            raise RevisionRefused(
                "This label was changed or undone in the meantime; open your labels again."
            )
        audit = label.item.audit
        AuditItem.objects.select_for_update().get(pk=label.item_id)
        status = Audit.objects.values_list("status", flat=True).get(pk=audit.pk)
        if status != Audit.Status.OPEN:
            raise AuditClosed("This audit is closed; labels can no longer be changed.")
        if selectors.is_set_aside(audit, annotator):
            raise SetAside(SET_ASIDE)
        current = Label.objects.filter(pk=label.pk).first()
        if current is None:
            raise RevisionRefused(
                "This label was changed or undone in the meantime; open your labels again."
            )
        outcome, chose_left, strength, stored, text = _clean_input(
            audit,
            choice=choice,
            strength=strength,
            criteria=criteria,
            rationale=rationale,
            a_on_left=label.assignment.a_on_left,
        )
        before = label_state(current)
        # Response classes: the new ones when given, else the label keeps its own.
        found = (
            _clean_classes(audit, classes, a_on_left=label.assignment.a_on_left)
            if classes and audit.ask_response_classes
            else before["classes"]
        )
        after = {
            "outcome": outcome,
            "strength": strength,
            "criteria": stored,
            "rationale": text,
            "classes": found,
        }
        if all(before[name] == value for name, value in after.items()):
            return LabelResult(current, created=False)
        current.delete()
        fields = {name: value for name, value in after.items() if name != "classes"}
        try:
            with transaction.atomic():  # a savepoint: the key's uniqueness is checked here
                revised = Label.objects.create(
                    item_id=current.item_id,
                    assignment_id=current.assignment_id,
                    annotator=annotator,
                    chose_left=chose_left,
                    time_spent_ms=current.time_spent_ms,
                    submission_key=key,
                    **fields,
                )
        except IntegrityError:
            raise _key_reused() from None  # leaves the outer block: nothing is written
        # auto_now_add stamps "now"; the label was first given earlier.
        Label.objects.filter(pk=revised.pk).update(created_at=current.created_at)
        if found:
            _classes_create(revised.pk, found)
        revised.created_at = current.created_at
        LabelRevision.objects.create(
            item_id=current.item_id,
            annotator=annotator,
            changed_by=annotator,
            changed_at=now,
            kind=Revision.REVISED,
            before=before,
            after={"label": revised.pk, **after},
        )
        _snapshot_after_commit(audit)
    return LabelResult(revised, created=True)
