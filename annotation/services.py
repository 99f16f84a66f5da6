"""Writes for audits and adjudication. Views, the API and commands all call these.

The labelling queue (serve, submit, skip, undo) lives in annotation.queue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation import sampling, selectors
from annotation.models import (
    Adjudication,
    AdjudicationRevision,
    AnnotatorExclusion,
    Assignment,
    Audit,
    AuditItem,
    Label,
    ResponseClassAdjudication,
    Stratum,
)
from annotation.queue import QueueError
from annotation.signals import audit_labels_changed
from corpus.models import Dataset, Outcome, Pair
from judges import services as judges_services
from judges.models import Judge, JudgeRun, ResponseClass


class AlreadyAdjudicated(QueueError):
    pass


class AdjudicationChanged(QueueError):
    pass


def _clean_criteria(criteria: Iterable[str]) -> list[str]:
    names: list[str] = []
    for raw in criteria:
        name = str(raw).strip()
        if not name:
            continue
        if len(name) > 50:
            raise ValidationError(
                {"criteria": f"{name[:50]}…: a criterion name is at most 50 characters"}
            )
        if name in names:
            raise ValidationError({"criteria": f"{name}: listed twice"})
        names.append(name)
    if len(names) > 8:
        raise ValidationError({"criteria": "at most 8 criteria"})
    return names


def audit_build(
    *,
    name: str,
    dataset: Dataset,
    judges: Sequence[Judge],
    size: int,
    overlap_k: int,
    quotas: Mapping[str, int | None],
    thresholds: Mapping[str, Any],
    seed: int,
    created_by: Any,
    annotators: Sequence[Any] = (),
    guidelines: str = "",
    allow_both_bad: bool = False,
    allow_strength: bool = False,
    criteria: Iterable[str] = (),
    hold_seconds: int | None = None,
    classifier: str | None = None,
    queue_policy: str = Audit.QueuePolicy.COMPLETE_FIRST,
    blind_adjudication: bool = False,
    ask_response_classes: bool = False,
    drift_judges: Sequence[Judge] = (),
) -> Audit:
    """Select a stratified sample of the dataset's pairs and create the audit with its items.

    ``drift_judges`` = (before, after), two judge versions: the drift stratum holds the pairs
    whose verdict differs between them (annotation.sampling); give it a quota to send exactly
    the changed cases to people.

    Strata, priority and inclusion probabilities are described in annotation.sampling; the
    quotas, the pool sizes and the thresholds are frozen into `Audit.selection`, so the
    audit can be explained (and rebuilt with the same seed) later. Raises ValidationError
    keyed by the field to fix; nothing is written then.
    """
    name = name.strip()
    if not name:
        raise ValidationError({"name": "give the audit a name"})
    if overlap_k < 1:
        raise ValidationError({"overlap_k": "at least 1 annotator per item"})
    if annotators and overlap_k > len(annotators):
        raise ValidationError(
            {
                "overlap_k": f"{overlap_k} annotators per item, but only "
                f"{len(annotators)} annotator(s) chosen"
            }
        )
    if queue_policy not in Audit.QueuePolicy.values:
        raise ValidationError(
            {"queue_policy": f"{queue_policy!r}: use {' or '.join(Audit.QueuePolicy.values)}"}
        )
    hold = hold_seconds if hold_seconds is not None else settings.ANNOTATION_HOLD_SECONDS
    if hold < 10:
        raise ValidationError({"hold_seconds": "a hold lasts at least 10 seconds"})
    margin = thresholds.get("margin")
    if margin is not None:
        try:
            margin = float(margin)
        except (TypeError, ValueError) as exc:
            raise ValidationError({"thresholds": f"margin {margin!r} is not a number"}) from exc
        if margin < 0:
            raise ValidationError({"thresholds": "margin threshold must not be negative"})
    criteria_names = _clean_criteria(criteria)
    drift = _drift_pair(drift_judges, quotas)

    signals = selectors.pair_signals(
        dataset=dataset,
        judges=judges,
        margin_threshold=margin,
        classifier=classifier,
        drift=drift,
    )
    if not signals:
        raise ValidationError({"dataset": f"{dataset.name} has no pairs yet"})
    strata = sampling.partition(signals)
    available = sampling.pools(strata, drift=bool(drift))
    try:
        resolved = sampling.resolve_quotas(size=size, quotas=quotas, available=available)
    except sampling.SelectionError as exc:
        raise ValidationError({exc.field: exc.message}) from exc
    if not drift:
        resolved.pop(sampling.DRIFT, None)  # no such stratum in this audit (quota 0 checked)
    drawn = sampling.draw(strata, resolved, seed=seed)

    with transaction.atomic():
        audit = Audit.objects.create(
            name=name[:200],
            dataset=dataset,
            created_by=created_by,
            target_size=size,
            overlap_k=overlap_k,
            allow_both_bad=allow_both_bad,
            allow_strength=allow_strength,
            criteria=criteria_names,
            guidelines=guidelines,
            seed=seed,
            hold_seconds=hold,
            queue_policy=queue_policy,
            blind_adjudication=blind_adjudication,
            ask_response_classes=ask_response_classes,
            selection={
                "quotas": resolved,
                "available": available,
                "thresholds": {"margin": margin, "ethics_probability": sampling.ETHICS_PROBABILITY},
                "priority": list(sampling.STRATUM_PRIORITY),
                "judges": [judge.pk for judge in judges],
                "drift_judges": [judge.pk for judge in drift],
                "classifier": classifier,
                "design": "strata partition the dataset; pi = quota / pool",
            },
        )
        audit.judges.set(judges)
        if annotators:
            audit.annotators.set(annotators)
        _items_create(audit, drawn)
    return audit


def _drift_pair(drift_judges: Sequence[Judge], quotas: Mapping[str, int | None]) -> list[Judge]:
    """The (before, after) judge versions of the drift stratum, checked: two different ones,
    or none (then the stratum is empty and may have no quota)."""
    drift = list(drift_judges)
    if drift and len(drift) != 2:
        raise ValidationError(
            {"drift_judges": f"choose two judge versions, before and after ({len(drift)} given)"}
        )
    if drift and drift[0].pk == drift[1].pk:
        raise ValidationError({"drift_judges": "choose two different judge versions"})
    if not drift and (quotas.get(sampling.DRIFT) or 0) > 0:
        raise ValidationError(
            {
                sampling.DRIFT: "the drift stratum needs two judge versions (before, after) "
                "whose changed verdicts it draws"
            }
        )
    return drift


def _items_create(audit: Audit, drawn: Iterable[sampling.Drawn]) -> None:
    AuditItem.objects.bulk_create(
        [
            AuditItem(
                audit=audit,
                pair_id=row.pair_id,
                stratum=row.stratum,
                inclusion_probability=row.inclusion_probability,
                position=row.position,
            )
            for row in drawn
        ],
        batch_size=2000,
    )


def audit_annotators_set(*, audit: Audit, annotators: Sequence[Any]) -> Audit:
    """Replace who labels this audit. Labels already given stay; removed people lose access."""
    if len(annotators) < audit.overlap_k:
        raise ValidationError(
            {
                "annotators": f"this audit needs {audit.overlap_k} annotators per item; "
                f"{len(annotators)} chosen"
            }
        )
    with transaction.atomic():
        audit.annotators.set(annotators)
    return audit


@dataclass(frozen=True)
class Rejudge:
    """A re-judge of an audit's calibration set: the run, and the version it is compared with."""

    run: JudgeRun
    baseline: Judge | None


def audit_rejudge(*, audit: Audit, judge: Judge, created_by: Any = None) -> Rejudge:
    """Run ``judge`` (a new version) on exactly the pairs people labelled in ``audit``.

    When the audit names its judges, ``judge`` joins them, so the comparison page, the report
    and drift gate rules read its verdicts. The run is enqueued once this commits; when it is
    done, the comparison with ``baseline`` (the newest earlier version of its name) gives its
    agreement with the people's labels: no new label is needed. Raises ``ValidationError``
    (``judge`` for a judge that cannot run, ``audit`` when nobody has labelled yet).
    """
    scope = selectors.audit_labelled_scope(audit)
    if not scope["pair_ids"]:
        raise ValidationError({"audit": f"nobody has labelled a pair of audit {audit.pk} yet"})
    baseline = selectors.audit_rejudge_baseline(audit, judge)
    with transaction.atomic():
        if audit.judges.exists():
            audit.judges.add(judge)
        run = judges_services.judge_run_start(judge=judge, created_by=created_by, **scope)
    return Rejudge(run=run, baseline=baseline)


def audit_status_set(*, audit: Audit, status: str) -> Audit:
    """Open or close an audit. A closed audit serves no items and accepts no labels."""
    if status not in Audit.Status.values:
        raise ValidationError({"status": f"{status!r}: use open or closed"})
    with transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(status=status)
    audit.status = status
    return audit


def audit_options_set(
    *,
    audit: Audit,
    queue_policy: str | None = None,
    blind_adjudication: bool | None = None,
    gold_percent: int | None = None,
    qc_min_seconds: float | None = None,
    qc_min_gold_accuracy: float | None = None,
    ask_response_classes: bool | None = None,
) -> Audit:
    """Change how an audit is run (not what it samples): the queue policy, blind
    adjudication, the gold rate, the quality thresholds and whether annotators say what each
    response did. Arguments left None stay."""
    errors: dict[str, str] = {}
    if queue_policy is not None and queue_policy not in Audit.QueuePolicy.values:
        errors["queue_policy"] = f"{queue_policy!r}: use {' or '.join(Audit.QueuePolicy.values)}"
    if gold_percent is not None and not 0 <= gold_percent <= 50:
        errors["gold_percent"] = f"{gold_percent}: a gold rate is 0 to 50 percent"
    if qc_min_seconds is not None and not (0 <= qc_min_seconds <= 3600):
        errors["qc_min_seconds"] = f"{qc_min_seconds}: use 0 to 3,600 seconds"
    if qc_min_gold_accuracy is not None and not 0 <= qc_min_gold_accuracy <= 1:
        errors["qc_min_gold_accuracy"] = f"{qc_min_gold_accuracy}: use 0 to 1 (e.g. 0.7)"
    if errors:
        raise ValidationError(errors)
    changes = {
        name: value
        for name, value in {
            "queue_policy": queue_policy,
            "blind_adjudication": blind_adjudication,
            "gold_percent": gold_percent,
            "qc_min_seconds": qc_min_seconds,
            "qc_min_gold_accuracy": qc_min_gold_accuracy,
            "ask_response_classes": ask_response_classes,
        }.items()
        if value is not None
    }
    with transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(**changes)
    for name, value in changes.items():
        setattr(audit, name, value)
    return audit


# --- Growing an audit -------------------------------------------------------------------------


def audit_grow(*, audit: Audit, n: int, by: Any, now: datetime | None = None) -> dict[str, int]:
    """Add `n` items to the audit, drawn from its strata, and update every item's inclusion
    probability; returns the items added per stratum.

    The n are split over the strata the audit samples (those with a quota) in proportion to
    their quotas, none beyond the pairs a stratum has left (`sampling.allocate`); each
    stratum's new pairs are a seeded simple random sample of its pairs not yet in the audit,
    so old and new together are a simple random sample of the stratum and every item of it
    gets (n1 + n2) / N (`sampling` explains why). Refused, with nothing written, when the
    strata have fewer than n pairs left, or when the dataset's strata are no longer what they
    were when the audit was built (new pairs, verdicts or refusal classes moved pairs between
    strata: adding to such an audit would mix two designs). The growth is recorded in
    `Audit.selection["growth"]`. Locks: the audit row, then its item rows in id order (the
    queue's module docstring), so growing while people label is safe.
    """
    selection = dict(audit.selection or {})
    judges = list(Judge.objects.filter(pk__in=selection.get("judges", [])))
    if len(judges) != len(selection.get("judges", [])):
        raise ValidationError({"n": "a judge this audit was sampled with no longer exists"})
    drift = list(Judge.objects.filter(pk__in=selection.get("drift_judges", [])))
    if len(drift) != len(selection.get("drift_judges", [])):
        raise ValidationError({"n": "a judge version of the drift stratum no longer exists"})
    drift.sort(key=lambda judge: selection["drift_judges"].index(judge.pk))
    signals = selectors.pair_signals(
        dataset=audit.dataset,
        judges=judges,
        margin_threshold=(selection.get("thresholds") or {}).get("margin"),
        classifier=selection.get("classifier"),
        drift=drift,
    )
    strata = sampling.partition(signals)
    recorded = selection.get("available", {})
    for name in sampling.ALL_STRATA:
        if len(strata[name]) != recorded.get(name, 0):
            raise ValidationError(
                {
                    "n": f"the dataset changed since this audit was built: "
                    f"{Stratum(name).label.lower()} had {recorded.get(name, 0):,} pairs, "
                    f"now {len(strata[name]):,}; build a new audit instead"
                }
            )
    with transaction.atomic():
        locked = Audit.objects.select_for_update().get(pk=audit.pk)
        selection = dict(locked.selection or {})
        quotas = {name: int(value) for name, value in selection.get("quotas", {}).items()}
        drawn: dict[str, list[int]] = {name: [] for name in sampling.ALL_STRATA}
        for pair_id, stratum in (
            AuditItem.objects.sampled().filter(audit=audit).values_list("pair_id", "stratum")
        ):
            drawn[stratum].append(pair_id)
        stratum_of = {member.pair_id: name for name, rows in strata.items() for member in rows}
        moved = [pid for name, ids in drawn.items() for pid in ids if stratum_of.get(pid) != name]
        if moved:
            raise ValidationError(
                {
                    "n": f"{len(moved)} of the audit's pairs are in another stratum now; "
                    "build a new audit instead"
                }
            )
        room = {name: len(strata[name]) - len(drawn[name]) for name in sampling.ALL_STRATA}
        try:
            added = sampling.allocate(n, quotas=quotas, room=room)
        except sampling.SelectionError as exc:
            raise ValidationError({exc.field: exc.message}) from exc
        growth = list(selection.get("growth", []))
        top = AuditItem.objects.filter(audit=audit).aggregate(top=Max("position"))["top"]
        new_items = sampling.draw_more(
            strata,
            drawn=drawn,
            added=added,
            seed=locked.seed,
            round_=len(growth) + 1,
            first_position=(top if top is not None else -1) + 1,
        )
        for name, count in added.items():
            quotas[name] = quotas.get(name, 0) + count
        probabilities = sampling.grown_probabilities(
            {name: len(strata[name]) for name in sampling.ALL_STRATA}, quotas
        )
        list(
            AuditItem.objects.filter(audit=audit, stratum__in=list(added))
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        for name in added:
            AuditItem.objects.filter(audit=audit, stratum=name).update(
                inclusion_probability=probabilities[name]
            )
        _items_create(audit, new_items)
        growth.append(
            {
                "round": len(growth) + 1,
                "added": added,
                "by": getattr(by, "username", str(by)),
                "at": (now or timezone.now()).isoformat(),
            }
        )
        selection.update({"quotas": quotas, "growth": growth})
        target = locked.target_size + sum(added.values())
        Audit.objects.filter(pk=audit.pk).update(selection=selection, target_size=target)
        audit.selection, audit.target_size = selection, target
        audit_labels_changed.send(sender=Audit, audit=audit)
    return added


def audit_overlap_set(*, audit: Audit, overlap_k: int) -> Audit:
    """Raise k, the labels each item gets. Items with fewer labels are served again (complete
    first, by default). Lowering k is refused: labels already given would exceed it."""
    with transaction.atomic():
        locked = Audit.objects.select_for_update().get(pk=audit.pk)
        people = locked.annotators.count()
        if overlap_k < locked.overlap_k:
            raise ValidationError(
                {"overlap_k": f"k is {locked.overlap_k}; it can be raised, not lowered"}
            )
        if overlap_k > people:
            raise ValidationError(
                {
                    "overlap_k": f"k = {overlap_k} needs {overlap_k} annotators; this audit has "
                    f"{people}"
                }
            )
        Audit.objects.filter(pk=audit.pk).update(overlap_k=overlap_k)
    audit.overlap_k = overlap_k
    return audit


# --- Gold items and annotators set aside ------------------------------------------------------

_GOLD_ANSWERS = {
    "a": Outcome.A,
    "b": Outcome.B,
    "tie": Outcome.TIE,
    "both_bad": Outcome.BOTH_BAD,
    "both bad": Outcome.BOTH_BAD,
}


@dataclass(frozen=True)
class GoldLine:
    source_key: str
    outcome: str
    note: str


def parse_gold_lines(text: str) -> list[GoldLine]:
    """Lines of "source key, answer[, note]" (answer A, B, tie or both bad), as a lead pastes
    them. Raises ValidationError keyed "gold" naming the line at fault."""
    lines: list[GoldLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in re.split(r"[,\t]", raw, maxsplit=2)]
        if len(parts) < 2 or not parts[0]:
            raise ValidationError(
                {"gold": f"line {number}: write the pair's source key, a comma and the answer"}
            )
        answer = _GOLD_ANSWERS.get(parts[1].lower())
        if answer is None:
            raise ValidationError(
                {"gold": f"line {number}: {parts[1]!r} is not an answer; use A, B, tie or both bad"}
            )
        lines.append(GoldLine(parts[0], answer, parts[2] if len(parts) > 2 else ""))
    if not lines:
        raise ValidationError({"gold": "no gold pair given"})
    return lines


def gold_add(*, audit: Audit, lines: Sequence[GoldLine]) -> list[AuditItem]:
    """Add gold items: pairs of the audit's dataset with a known answer, outside the sample.
    A pair already in the audit (sampled or gold) is refused: an annotator would meet it
    twice. All or nothing; errors name the line's source key."""
    keys = [line.source_key for line in lines]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValidationError({"gold": f"{repeated[0]}: listed twice"})
    pairs = {
        pair.source_key: pair
        for pair in Pair.objects.filter(dataset=audit.dataset, source_key__in=keys)
    }
    for line in lines:
        if line.source_key not in pairs:
            raise ValidationError(
                {"gold": f"{line.source_key}: no pair with this source key in {audit.dataset.name}"}
            )
        if line.outcome == Outcome.BOTH_BAD and not audit.allow_both_bad:
            raise ValidationError(
                {"gold": f"{line.source_key}: this audit does not offer 'both bad'"}
            )
    with transaction.atomic():
        Audit.objects.select_for_update().get(pk=audit.pk)
        taken = set(
            AuditItem.objects.filter(
                audit=audit, pair__in=[pairs[key] for key in keys]
            ).values_list("pair__source_key", flat=True)
        )
        if taken:
            raise ValidationError(
                {"gold": f"{sorted(taken)[0]}: this pair is in the audit already"}
            )
        top = AuditItem.objects.filter(audit=audit).aggregate(top=Max("position"))["top"]
        start = (top if top is not None else -1) + 1
        items = AuditItem.objects.bulk_create(
            [
                AuditItem(
                    audit=audit,
                    pair=pairs[line.source_key],
                    stratum=Stratum.GOLD,
                    inclusion_probability=1.0,
                    position=start + offset,
                    gold_outcome=line.outcome,
                    gold_note=line.note[:2000],
                )
                for offset, line in enumerate(lines)
            ]
        )
    return items


def gold_remove(*, audit: Audit, item_id: int) -> None:
    """Take a gold item out of the queue. Refused once someone answered it: the answers are
    evidence of the annotators' accuracy and stay."""
    with transaction.atomic():
        item = AuditItem.objects.gold().select_for_update().filter(audit=audit, pk=item_id).first()
        if item is None:
            raise ValidationError({"gold": "no such gold item in this audit"})
        if Label.objects.filter(item=item).exists():
            raise ValidationError(
                {"gold": "this gold item has answers; set the rate to 0 to stop serving gold"}
            )
        Assignment.objects.filter(item=item).delete()
        item.delete()


def annotator_set_aside(
    *, audit: Audit, annotator: Any, by: Any, reason: str = "", now: datetime | None = None
) -> AnnotatorExclusion:
    """Set an annotator's labels in this audit aside: kept, not deleted, but no longer counted
    in the figures (`Label.objects.counted()`) nor towards an item's k, so the items they
    labelled are served to others again; they are served nothing more, and their live holds
    are released. Locks: the audit row, then the items they touched in id order, then the
    rows under them (the queue's locking contract)."""
    with transaction.atomic():
        Audit.objects.select_for_update().get(pk=audit.pk)
        exclusion, _ = AnnotatorExclusion.objects.get_or_create(
            audit=audit,
            annotator=annotator,
            defaults={"excluded_by": by, "excluded_at": now or timezone.now(), "reason": reason},
        )
        _recount(audit, annotator)
        Assignment.objects.filter(
            item__audit=audit, annotator=annotator, status=Assignment.Status.HELD
        ).delete()
        audit_labels_changed.send(sender=Audit, audit=audit)
    return exclusion


def annotator_count_again(*, audit: Audit, annotator: Any) -> None:
    """Undo annotator_set_aside: their labels count again (an item can then have more than k
    labels, if others labelled it meanwhile; nothing is dropped)."""
    with transaction.atomic():
        Audit.objects.select_for_update().get(pk=audit.pk)
        AnnotatorExclusion.objects.filter(audit=audit, annotator=annotator).delete()
        _recount(audit, annotator)
        audit_labels_changed.send(sender=Audit, audit=audit)


def _recount(audit: Audit, annotator: Any) -> None:
    """label_count of the items `annotator` touched = their labels that count. Call holding
    the audit row lock; takes the item row locks in id order."""
    ids = set(
        Assignment.objects.filter(item__audit=audit, annotator=annotator).values_list(
            "item_id", flat=True
        )
    )
    touched = list(
        AuditItem.objects.filter(pk__in=ids)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )
    counted = selectors.counts_by(Label.objects.counted().filter(item_id__in=touched), "item_id")
    for item_id in touched:
        AuditItem.objects.filter(pk=item_id).update(label_count=counted.get(item_id, 0))


# --- Adjudication -----------------------------------------------------------------------------


def adjudication_decide(
    *,
    item: AuditItem,
    lead: Any,
    outcome: str,
    note: str = "",
    reference_judge: Judge | None = None,
) -> Adjudication:
    """Record the lead's final label for an item. A second decision is refused (two leads
    deciding at once: one wins, the other is told); changing it is `adjudication_revise`.

    Call without holding locks; takes the item row lock (the queue's lock order: item first).
    """
    _check_outcome(item, outcome)
    with transaction.atomic():
        AuditItem.objects.select_for_update().filter(pk=item.pk).first()
        if Adjudication.objects.filter(item=item).exists():
            raise AlreadyAdjudicated("This item has already been decided.")
        adjudication = _adjudication_create(item, lead, outcome, note.strip(), reference_judge)
        audit_labels_changed.send(sender=Audit, audit=item.audit)
        return adjudication


def adjudication_revise(
    *,
    item: AuditItem,
    lead: Any,
    outcome: str,
    note: str = "",
    expected: int | None = None,
    reference_judge: Judge | None = None,
    now: datetime | None = None,
) -> Adjudication:
    """Change an item's adjudication. The row is replaced by a new one (a new id, so readers
    that watch ids see the change) and the change is appended to AdjudicationRevision (who,
    when, before, after). `expected` is the adjudication id the lead was looking at: if
    another lead changed it since, the revision is refused (AdjudicationChanged) rather than
    silently overwriting theirs. An unchanged decision writes nothing. Locks: the item row.
    """
    _check_outcome(item, outcome)
    note = note.strip()
    with transaction.atomic():
        AuditItem.objects.select_for_update().filter(pk=item.pk).first()
        current = Adjudication.objects.filter(item=item).select_related("reference_judge").first()
        if current is None:
            raise AdjudicationChanged("This item has no decision to revise; decide it first.")
        if expected is not None and current.pk != expected:
            raise AdjudicationChanged(
                "Another decision was recorded while you were reading; see it below and "
                "revise again if needed."
            )
        if (current.outcome, current.note) == (outcome, note):
            return current
        before = _adjudication_state(current)
        current.delete()
        revised = _adjudication_create(item, lead, outcome, note, reference_judge)
        AdjudicationRevision.objects.create(
            item=item,
            changed_by=lead,
            changed_at=now or timezone.now(),
            before=before,
            after=_adjudication_state(revised),
        )
        audit_labels_changed.send(sender=Audit, audit=item.audit)
        return revised


def _adjudication_create(
    item: AuditItem, lead: Any, outcome: str, note: str, reference_judge: Judge | None
) -> Adjudication:
    """The item's decision row, written by `adjudication_decide` and `adjudication_revise`
    (both hold the item row lock)."""
    return Adjudication.objects.create(
        item=item, lead=lead, outcome=outcome, note=note, reference_judge=reference_judge
    )


def _check_outcome(item: AuditItem, outcome: str) -> None:
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": f"{outcome!r}: choose A, B, tie or both bad"})
    if outcome == Outcome.BOTH_BAD and not item.audit.allow_both_bad:
        raise ValidationError({"outcome": "this audit does not allow 'both bad'"})


def _adjudication_state(adjudication: Adjudication) -> dict[str, Any]:
    return {
        "adjudication": adjudication.pk,
        "outcome": adjudication.outcome,
        "note": adjudication.note,
        "lead": adjudication.lead.get_username(),
        "reference_judge": adjudication.reference_judge_id,
        "decided_at": adjudication.created_at.isoformat() if adjudication.created_at else None,
    }


def class_adjudicate(
    *,
    item: AuditItem,
    side: str,
    response_class: str,
    lead: Any,
    now: datetime | None = None,
) -> ResponseClassAdjudication:
    """A lead's final class for one response ("A"/"B") of an item. Deciding again changes it
    and appends the previous class to the row's `history` (who, when, before); the same
    class again writes nothing. Takes the item row lock (the queue's lock order)."""
    if side not in ("A", "B"):
        raise ValidationError({"side": f"{side!r}: use A or B"})
    if response_class not in ResponseClass.values:
        raise ValidationError(
            {"response_class": f"{response_class!r}: use one of {', '.join(ResponseClass.values)}"}
        )
    now = now or timezone.now()
    with transaction.atomic():
        AuditItem.objects.select_for_update().filter(pk=item.pk).first()
        current = ResponseClassAdjudication.objects.filter(item=item, side=side).first()
        if current is None:
            decided = ResponseClassAdjudication.objects.create(
                item=item, side=side, response_class=response_class, lead=lead
            )
        elif current.response_class == response_class:
            return current
        else:
            current.history = [
                *current.history,
                {
                    "changed_at": now.isoformat(),
                    "changed_by": getattr(lead, "username", str(lead)),
                    "before": current.response_class,
                    "before_lead": current.lead.get_username(),
                },
            ]
            current.response_class = response_class
            current.lead = lead
            current.save(update_fields=["response_class", "lead", "history", "updated_at"])
            decided = current
        audit_labels_changed.send(sender=Audit, audit=item.audit)
        return decided
