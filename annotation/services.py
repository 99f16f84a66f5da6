"""Writes for audits and adjudication. Views, the API and commands all call these.

The labelling queue (serve, submit, skip, undo) lives in annotation.queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation import sampling, selectors
from annotation.models import Adjudication, Audit, AuditItem
from annotation.queue import QueueError
from annotation.signals import audit_labels_changed
from corpus.models import Dataset, Outcome
from judges.models import Judge


class AlreadyAdjudicated(QueueError):
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
) -> Audit:
    """Select a stratified sample of the dataset's pairs and create the audit with its items.

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

    signals = selectors.pair_signals(
        dataset=dataset, judges=judges, margin_threshold=margin, classifier=classifier
    )
    if not signals:
        raise ValidationError({"dataset": f"{dataset.name} has no pairs yet"})
    strata = sampling.partition(signals)
    available = {stratum: len(members) for stratum, members in strata.items()}
    try:
        resolved = sampling.resolve_quotas(size=size, quotas=quotas, available=available)
    except sampling.SelectionError as exc:
        raise ValidationError({exc.field: exc.message}) from exc
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
            selection={
                "quotas": resolved,
                "available": available,
                "thresholds": {"margin": margin},
                "priority": list(sampling.STRATUM_PRIORITY),
                "judges": [judge.pk for judge in judges],
                "classifier": classifier,
                "design": "strata partition the dataset; pi = quota / pool",
            },
        )
        audit.judges.set(judges)
        if annotators:
            audit.annotators.set(annotators)
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
    return audit


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


def audit_status_set(*, audit: Audit, status: str) -> Audit:
    """Open or close an audit. A closed audit serves no items and accepts no labels."""
    if status not in Audit.Status.values:
        raise ValidationError({"status": f"{status!r}: use open or closed"})
    with transaction.atomic():
        Audit.objects.filter(pk=audit.pk).update(status=status)
    audit.status = status
    return audit


def adjudication_decide(
    *,
    item: AuditItem,
    lead: Any,
    outcome: str,
    note: str = "",
    reference_judge: Judge | None = None,
) -> Adjudication:
    """Record the lead's final label for an item. Final: a second decision is refused.

    Call without holding locks; takes the item row lock (the queue's lock order: item first)
    so two leads deciding at once produce one adjudication and one clear refusal.
    """
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": f"{outcome!r}: choose A, B, tie or both bad"})
    if outcome == Outcome.BOTH_BAD and not item.audit.allow_both_bad:
        raise ValidationError({"outcome": "this audit does not allow 'both bad'"})
    with transaction.atomic():
        AuditItem.objects.select_for_update().filter(pk=item.pk).first()
        if Adjudication.objects.filter(item=item).exists():
            raise AlreadyAdjudicated("This item has already been decided.")
        adjudication = Adjudication.objects.create(
            item=item,
            lead=lead,
            outcome=outcome,
            note=note.strip(),
            reference_judge=reference_judge,
        )
        audit_labels_changed.send(sender=Audit, audit=item.audit)
        return adjudication
