"""Reads reused by pages, the API and tasks. Each owns its joins."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from annotation import sampling
from annotation.models import Adjudication, Assignment, Audit, AuditItem, Label, Stratum
from config.roles import is_lead, require_lead
from corpus.models import Dataset, Outcome, Pair
from judges.models import Judge, ResponseClass, ResponseClassification, Verdict


def pair_signals(
    *,
    dataset: Dataset,
    judges: Iterable[Judge],
    margin_threshold: float | None,
    classifier: str | None = None,
) -> list[sampling.PairSignals]:
    """Every pair of the dataset with its refusal and low-margin flags (see annotation.sampling).

    Three flat reads (pairs, the chosen judges' verdicts, non-normal refusal classes), joined
    in Python: one pass over 100,000 pairs takes well under a second and keeps the rule itself
    in the pure module.
    """
    judge_ids = [judge.pk for judge in judges]
    calls: dict[int, list[sampling.JudgeCall]] = defaultdict(list)
    if judge_ids:
        verdicts = Verdict.objects.filter(pair__dataset=dataset, judge_id__in=judge_ids)
        for pair_id, outcome, consistent, margin in verdicts.values_list(
            "pair_id", "outcome", "consistent", "margin"
        ).iterator(chunk_size=10_000):
            calls[pair_id].append(sampling.JudgeCall(outcome, consistent, margin))

    classes = ResponseClassification.objects.filter(response__prompt__dataset=dataset).exclude(
        label=ResponseClass.NORMAL
    )
    if classifier:
        classes = classes.filter(classifier=classifier)
    response_classes: dict[int, set[str]] = defaultdict(set)
    for response_id, label in classes.values_list("response_id", "label").iterator(
        chunk_size=10_000
    ):
        response_classes[response_id].add(label)

    signals = []
    rows = Pair.objects.filter(dataset=dataset).values_list(
        "id", "source_key", "response_a_id", "response_b_id"
    )
    for pair_id, source_key, response_a, response_b in rows.iterator(chunk_size=10_000):
        ethics, technical = sampling.refusal_flags(
            response_classes.get(response_a, set()) | response_classes.get(response_b, set())
        )
        low = sampling.is_low_margin(calls.get(pair_id, ()), margin_threshold=margin_threshold)
        signals.append(
            sampling.PairSignals(
                pair_id=pair_id,
                sort_key=source_key,
                ethics=ethics,
                technical=technical,
                low_margin=low,
            )
        )
    return signals


def stratum_availability(
    *,
    dataset: Dataset,
    judges: Iterable[Judge],
    margin_threshold: float | None,
    classifier: str | None = None,
) -> dict[str, int]:
    """How many pairs each stratum holds, shown to the lead before an audit is created."""
    strata = sampling.partition(
        pair_signals(
            dataset=dataset,
            judges=judges,
            margin_threshold=margin_threshold,
            classifier=classifier,
        )
    )
    return {name: len(members) for name, members in strata.items()}


def judges_for_dataset(dataset: Dataset) -> QuerySet[Judge]:
    return Judge.objects.filter(
        Exists(Verdict.objects.filter(judge=OuterRef("pk"), pair__dataset=dataset))
    ).order_by("name", "-version")


# --- Audits and progress ---------------------------------------------------------------------


def audits_visible_to(user: Any) -> QuerySet[Audit]:
    """Leads see every audit; anyone else only the audits they annotate."""
    audits = Audit.objects.select_related("dataset")
    if not is_lead(user):
        audits = audits.filter(annotators=user)
    mine = (
        Label.objects.filter(item__audit=OuterRef("pk"), annotator=user)
        .order_by()
        .values("item__audit")
        .annotate(n=Count("pk"))
        .values("n")
    )
    labels = (
        AuditItem.objects.filter(audit=OuterRef("pk"))
        .order_by()
        .values("audit")
        .annotate(n=Sum("label_count"))
        .values("n")
    )
    return audits.annotate(
        item_count=Count("items", distinct=True),
        labels_done=Coalesce(Subquery(labels, output_field=IntegerField()), 0),
        my_labels=Coalesce(Subquery(mine, output_field=IntegerField()), 0),
    ).order_by("-created_at")


@dataclass(frozen=True)
class Progress:
    items: int
    labels_done: int
    labels_needed: int
    items_complete: int
    mine: int
    my_share: int

    @property
    def audit_percent(self) -> int:
        return int(100 * self.labels_done / self.labels_needed) if self.labels_needed else 0

    @property
    def my_percent(self) -> int:
        return min(100, int(100 * self.mine / self.my_share)) if self.my_share else 0


def audit_progress(audit: Audit, annotator: Any | None = None) -> Progress:
    """Labels done against labels needed; an annotator's "share" is the even split of the work.

    Only counts: nobody's individual answers leave this function. One query (it runs on every
    answer an annotator gives), reading the denormalised label_count of the items.
    """
    k = audit.overlap_k
    item_table = AuditItem._meta.db_table
    label_table = Label._meta.db_table
    people_table = Audit.annotators.through._meta.db_table
    sql = (
        f"SELECT COUNT(*), COALESCE(SUM(i.label_count), 0),"
        f" COALESCE(SUM(CASE WHEN i.label_count >= %s THEN 1 ELSE 0 END), 0),"
        f" (SELECT COUNT(*) FROM {label_table} l JOIN {item_table} li ON l.item_id = li.id"
        f"  WHERE li.audit_id = %s AND l.annotator_id = %s),"
        f" (SELECT COUNT(*) FROM {people_table} p WHERE p.audit_id = %s)"
        f" FROM {item_table} i WHERE i.audit_id = %s"
    )
    annotator_id = annotator.pk if annotator is not None else None
    with connection.cursor() as cursor:
        cursor.execute(sql, [k, audit.pk, annotator_id, audit.pk, audit.pk])
        items, labels, complete, mine, people = cursor.fetchone()
    share = min(items, math.ceil(items * k / max(1, people))) if annotator is not None else 0
    return Progress(
        items=items,
        labels_done=min(labels, items * k),
        labels_needed=items * k,
        items_complete=complete,
        mine=mine,
        my_share=share,
    )


def audits_with_membership(user: Any) -> QuerySet[Audit]:
    """Audits annotated with `is_annotator` for this user: one query loads and authorises."""
    membership = Audit.annotators.through.objects.filter(audit_id=OuterRef("pk"), user_id=user.pk)
    return Audit.objects.annotate(is_annotator=Exists(membership))


def audit_run_scope(audit: Audit) -> dict[str, Any]:
    """What a judge run over this audit covers, as `judges.services.judge_run_create`
    arguments: the audit's dataset, its pairs in serving order, and "audit <id>"."""
    pair_ids = list(audit.items.order_by("position").values_list("pair_id", flat=True))
    return {"dataset": audit.dataset, "pair_ids": pair_ids, "scope": audit_scope_label(audit)}


def audit_scope_label(audit: Audit) -> str:
    """How judge runs over this audit's items are labelled (`JudgeRun.scope`)."""
    return f"audit {audit.pk}"


# --- Access: load an audit and check the user in one call (every page and API) --------------


def audit_for_lead(user: Any, pk: int) -> Audit:
    """The audit, for a lead: 403 for anyone else before the look-up, then 404 if missing."""
    require_lead(user)
    return get_object_or_404(Audit.objects.select_related("dataset"), pk=pk)


def audit_for_annotator(user: Any, pk: int) -> Audit:
    """The audit, if `user` is one of its annotators (a lead too, only when listed): 404 if
    it does not exist, 403 if it does and they are not listed. One query."""
    audit = get_object_or_404(audits_with_membership(user), pk=pk)
    if not audit.is_annotator:  # type: ignore[attr-defined]  # annotated above
        raise PermissionDenied("You are not an annotator of this audit.")
    return audit


def audit_for_member(user: Any, pk: int) -> Audit:
    """The audit, for a lead or one of its annotators: 404 if missing, else 403 for others."""
    audit = get_object_or_404(audits_with_membership(user).select_related("dataset"), pk=pk)
    if not is_lead(user) and not audit.is_annotator:  # type: ignore[attr-defined]
        raise PermissionDenied("You are not an annotator of this audit.")
    return audit


def items_open_to(audit: Audit, annotator: Any) -> int:
    """Items this annotator could still label once other people's holds end."""
    done = Assignment.objects.filter(
        item=OuterRef("pk"),
        annotator=annotator,
        status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED],
    )
    return (
        AuditItem.objects.filter(audit=audit, label_count__lt=audit.overlap_k)
        .filter(~Exists(done))
        .count()
    )


def undoable_label(audit: Audit, annotator: Any, *, now: datetime | None = None) -> Label | None:
    """The annotator's latest label in this audit, while the undo window is still open."""
    now = now or timezone.now()
    window = timedelta(seconds=undo_seconds())
    label = (
        Label.objects.filter(annotator=annotator, item__audit=audit)
        .order_by("-created_at", "-pk")
        .only("pk", "created_at", "item_id", "assignment_id")
        .first()
    )
    if label is None or label.created_at <= now - window:
        return None
    return label


def undo_seconds() -> int:
    return int(getattr(settings, "ANNOTATION_UNDO_SECONDS", 30))


def strata_summary(audit: Audit) -> list[dict[str, Any]]:
    selected = dict(
        AuditItem.objects.filter(audit=audit)
        .order_by()
        .values_list("stratum")
        .annotate(n=Count("pk"))
        .values_list("stratum", "n")
    )
    available = (audit.selection or {}).get("available", {})
    rows = []
    for name in sampling.ALL_STRATA:
        n = selected.get(name, 0)
        pool = available.get(name, 0)
        rows.append(
            {
                "stratum": name,
                "label": Stratum(name).label,
                "selected": n,
                "available": pool,
                "probability": (n / pool) if pool else None,
            }
        )
    return rows


def annotator_stats(audit: Audit) -> list[dict[str, Any]]:
    """Per-annotator counts for the lead's audit page."""
    now = timezone.now()
    rows = []
    for user in audit.annotators.order_by("username"):
        assignments = Assignment.objects.filter(item__audit=audit, annotator=user)
        counts = assignments.aggregate(
            labels=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)),
            skips=Count("pk", filter=Q(status=Assignment.Status.SKIPPED)),
            holding=Count("pk", filter=Q(status=Assignment.Status.HELD, expires_at__gt=now)),
        )
        times = sorted(
            Label.objects.filter(item__audit=audit, annotator=user).values_list(
                "time_spent_ms", flat=True
            )
        )
        median = times[len(times) // 2] / 1000 if times else None
        rows.append({"user": user, **counts, "median_seconds": median})
    return rows


def my_labels(audit: Audit, annotator: Any) -> QuerySet[Label]:
    return (
        Label.objects.filter(item__audit=audit, annotator=annotator)
        .select_related("item", "assignment")
        .order_by("-created_at")
    )


def served_assignment(pk: int) -> Assignment:
    """An assignment with everything the workspace renders, in one query."""
    return Assignment.objects.select_related(
        "item__pair__prompt", "item__pair__response_a", "item__pair__response_b"
    ).get(pk=pk)


# --- Adjudication -----------------------------------------------------------------------------


@dataclass
class ReviewItem:
    item: AuditItem
    labels: list[Label] = field(default_factory=list)
    reason: str = ""
    judge_outcome: str | None = None


def _outcome_name(value: str | None) -> str:
    return dict(Outcome.choices).get(value or "", value or "none")


def consensus(outcomes: Sequence[str]) -> str | None:
    """The strict majority of the labels, or None when there is none."""
    if not outcomes:
        return None
    (top, n), *rest = Counter(outcomes).most_common()
    if rest and rest[0][1] == n:
        return None
    return top if n * 2 > len(outcomes) else None


def adjudication_queue(audit: Audit, *, reference_judge: Judge | None = None) -> list[ReviewItem]:
    """Items a lead should decide: the annotators disagree, or (once all k labels are in) they
    agree with each other but not with the reference judge. Already decided items drop out."""
    decided = Adjudication.objects.filter(item=OuterRef("pk"))
    items = list(
        AuditItem.objects.filter(audit=audit, label_count__gte=1)
        .filter(~Exists(decided))
        .select_related("pair")
        .order_by("position")
    )
    labels: dict[int, list[Label]] = defaultdict(list)
    for label in (
        Label.objects.filter(item__in=[item.pk for item in items])
        .select_related("annotator")
        .order_by("created_at")
    ):
        labels[label.item_id].append(label)
    verdicts: dict[int, str | None] = {}
    if reference_judge is not None:
        verdicts = dict(
            Verdict.objects.filter(
                judge=reference_judge, pair_id__in=[item.pair_id for item in items]
            ).values_list("pair_id", "outcome")
        )
    queue = []
    for item in items:
        item_labels = labels.get(item.pk, [])
        outcomes = [label.outcome for label in item_labels]
        distinct = sorted(set(outcomes))
        judge_outcome = verdicts.get(item.pair_id)
        reason = ""
        if len(distinct) > 1:
            reason = "Annotators disagree: " + ", ".join(_outcome_name(o) for o in distinct)
        elif (
            reference_judge is not None
            and len(outcomes) >= audit.overlap_k
            and judge_outcome
            and distinct
            and judge_outcome != distinct[0]
        ):
            reason = (
                f"Annotators agree on {_outcome_name(distinct[0])}; "
                f"{reference_judge} says {_outcome_name(judge_outcome)}"
            )
        if reason:
            queue.append(ReviewItem(item, item_labels, reason, judge_outcome))
    return queue


def item_review(item: AuditItem) -> dict[str, Any]:
    """Everything a lead sees when deciding: labels with names, and every judge's verdict."""
    labels = list(
        Label.objects.filter(item=item)
        .select_related("annotator", "assignment")
        .order_by("created_at")
    )
    for label in labels:
        label.seconds = label.time_spent_ms / 1000  # type: ignore[attr-defined]
    verdicts = list(
        Verdict.objects.filter(pair=item.pair).select_related("judge").order_by("judge__name")
    )
    return {"labels": labels, "verdicts": verdicts}


def final_outcomes(audit: Audit) -> dict[int, tuple[str | None, str]]:
    """item id -> (final outcome, where it came from): the lead's adjudication first, else the
    annotators' strict majority, else None ("unresolved")."""
    result: dict[int, tuple[str | None, str]] = {}
    adjudicated = dict(
        Adjudication.objects.filter(item__audit=audit).values_list("item_id", "outcome")
    )
    labels: dict[int, list[str]] = defaultdict(list)
    for item_id, outcome in Label.objects.filter(item__audit=audit).values_list(
        "item_id", "outcome"
    ):
        labels[item_id].append(outcome)
    for item_id in AuditItem.objects.filter(audit=audit).values_list("pk", flat=True):
        if item_id in adjudicated:
            result[item_id] = (adjudicated[item_id], "adjudication")
            continue
        majority = consensus(labels.get(item_id, []))
        result[item_id] = (majority, "labels" if majority else "unresolved")
    return result
