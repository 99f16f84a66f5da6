"""Reads reused by pages, the API and tasks. Each owns its joins."""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
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
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from annotation import quality, sampling
from annotation.models import (
    Adjudication,
    AdjudicationRevision,
    AnnotatorExclusion,
    Assignment,
    Audit,
    AuditItem,
    Label,
    LabelRevision,
    ResponseClassAdjudication,
    ResponseClassLabel,
    Stratum,
)
from config.model_rows import ModelColumns
from config.roles import is_lead, require_lead
from corpus.models import Dataset, Outcome, Pair
from judges.models import Judge, JudgeRun, ResponseClass, ResponseClassification, Verdict


def pair_signals(
    *,
    dataset: Dataset,
    judges: Iterable[Judge],
    margin_threshold: float | None,
    classifier: str | None = None,
    drift: Sequence[Judge] = (),
) -> list[sampling.PairSignals]:
    """Every pair of the dataset with its refusal and low-margin flags (see annotation.sampling)
    and, with ``drift`` = (before, after) judge versions, whether their verdicts differ.

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

    # Normal responses matter only when the classifier was unsure of them or gave an ethical
    # refusal a probability that reaches the ethics stratum's threshold.
    classes = ResponseClassification.objects.filter(response__prompt__dataset=dataset).filter(
        ~Q(label=ResponseClass.NORMAL)
        | Q(uncertain=True)
        | Q(scores__ethical_refusal__gte=sampling.ETHICS_PROBABILITY)
    )
    if classifier:
        classes = classes.filter(classifier=classifier)
    response_classes: dict[int, list[sampling.ResponseSignal]] = defaultdict(list)
    for response_id, label, scores, uncertain in classes.values_list(
        "response_id", "label", "scores", "uncertain"
    ).iterator(chunk_size=10_000):
        probability = (scores or {}).get("ethical_refusal")
        response_classes[response_id].append(
            sampling.ResponseSignal(
                label=label,
                ethical_refusal_probability=float(probability)
                if isinstance(probability, int | float)
                else None,
                uncertain=bool(uncertain),
            )
        )

    flipped = drift_flips(dataset=dataset, drift=drift) if drift else set()
    signals = []
    rows = Pair.objects.filter(dataset=dataset).values_list(
        "id", "source_key", "response_a_id", "response_b_id"
    )
    for pair_id, source_key, response_a, response_b in rows.iterator(chunk_size=10_000):
        ethics, technical, uncertain = sampling.response_flags(
            [*response_classes.get(response_a, ()), *response_classes.get(response_b, ())]
        )
        low = sampling.is_low_margin(calls.get(pair_id, ()), margin_threshold=margin_threshold)
        signals.append(
            sampling.PairSignals(
                pair_id=pair_id,
                sort_key=source_key,
                ethics=ethics,
                technical=technical,
                low_margin=low,
                uncertain=uncertain,
                flipped=pair_id in flipped,
            )
        )
    return signals


def drift_flips(*, dataset: Dataset, drift: Sequence[Judge]) -> set[int]:
    """The dataset's pairs whose combined verdict differs between the two judge versions
    ``drift`` = (before, after) (`sampling.is_flipped`)."""
    before, after = drift
    outcomes: dict[int, dict[int, str | None]] = defaultdict(dict)
    verdicts = Verdict.objects.filter(pair__dataset=dataset, judge_id__in=[before.pk, after.pk])
    for pair_id, judge_id, outcome in verdicts.values_list(
        "pair_id", "judge_id", "outcome"
    ).iterator(chunk_size=10_000):
        outcomes[pair_id][judge_id] = outcome
    return {
        pair_id
        for pair_id, found in outcomes.items()
        if sampling.is_flipped(found.get(before.pk), found.get(after.pk))
    }


def stratum_availability(
    *,
    dataset: Dataset,
    judges: Iterable[Judge],
    margin_threshold: float | None,
    classifier: str | None = None,
    drift: Sequence[Judge] = (),
) -> dict[str, int]:
    """How many pairs each stratum holds, shown to the lead before an audit is created."""
    strata = sampling.partition(
        pair_signals(
            dataset=dataset,
            judges=judges,
            margin_threshold=margin_threshold,
            classifier=classifier,
            drift=drift,
        )
    )
    return sampling.pools(strata, drift=bool(drift))


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
        AuditItem.objects.sampled()
        .filter(audit=OuterRef("pk"))
        .order_by()
        .values("audit")
        .annotate(n=Sum("label_count"))
        .values("n")
    )
    return audits.annotate(
        item_count=Count("items", filter=~Q(items__stratum=Stratum.GOLD), distinct=True),
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
    left_for_me: int = 0  # items that still need labels and that they have not answered

    @property
    def audit_percent(self) -> int:
        return int(100 * self.labels_done / self.labels_needed) if self.labels_needed else 0

    @property
    def my_percent(self) -> int:
        return min(100, int(100 * self.mine / self.my_share)) if self.my_share else 0


def audit_progress(audit: Audit, annotator: Any | None = None) -> Progress:
    """Labels done against labels needed, complete items; an annotator's "share" is the even
    split of the work, and what is left for them.

    Only counts: nobody's individual answers leave this function. One query (it runs on every
    answer an annotator gives), reading the denormalised label_count of the sampled items.
    """
    k = audit.overlap_k
    q = connection.ops.quote_name
    item_table, label_table = q(AuditItem._meta.db_table), q(Label._meta.db_table)
    assignment_table = q(Assignment._meta.db_table)
    people_table = q(Audit.annotators.through._meta.db_table)
    sql = (
        "SELECT COUNT(*), COALESCE(SUM(i.label_count), 0),"
        " COALESCE(SUM(CASE WHEN i.label_count >= %s THEN 1 ELSE 0 END), 0),"
        f" (SELECT COUNT(*) FROM {label_table} l JOIN {item_table} li ON l.item_id = li.id"
        "  WHERE li.audit_id = %s AND l.annotator_id = %s),"
        f" (SELECT COUNT(*) FROM {people_table} p WHERE p.audit_id = %s),"
        # What is left for them: the items that still need labels, less those of them they
        # answered or skipped (a walk over their own assignments, each item found by its
        # key; label_count stays out of that WHERE so no plan trades the key for the queue's
        # index when the statistics are stale, as right after an audit is built or grown).
        " COALESCE(SUM(CASE WHEN i.label_count < %s THEN 1 ELSE 0 END), 0)"
        " - (SELECT COALESCE(SUM(CASE WHEN r.label_count < %s THEN 1 ELSE 0 END), 0)"
        f"  FROM {assignment_table} d JOIN {item_table} r ON r.id = d.item_id"
        "  WHERE d.annotator_id = %s AND d.status IN (%s, %s) AND r.audit_id = %s"
        "  AND r.stratum <> %s)"
        f" FROM {item_table} i WHERE i.audit_id = %s AND i.stratum <> %s"
    )
    annotator_id = annotator.pk if annotator is not None else None
    done = [Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED]
    params = [k, audit.pk, annotator_id, audit.pk, k, k, annotator_id, *done, audit.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, Stratum.GOLD, audit.pk, Stratum.GOLD])
        items, labels, complete, mine, people, left = cursor.fetchone()
    share = min(items, math.ceil(items * k / max(1, people))) if annotator is not None else 0
    return Progress(
        items=items,
        labels_done=min(labels, items * k),
        labels_needed=items * k,
        items_complete=complete,
        mine=mine,
        my_share=share,
        left_for_me=left if annotator is not None else 0,
    )


def audits_with_membership(user: Any) -> QuerySet[Audit]:
    """Audits annotated with `is_annotator` for this user: one query loads and authorises."""
    membership = Audit.annotators.through.objects.filter(audit_id=OuterRef("pk"), user_id=user.pk)
    return Audit.objects.annotate(is_annotator=Exists(membership))


def audit_run_scope(audit: Audit) -> dict[str, Any]:
    """What a judge run over this audit covers, as `judges.services.judge_run_create`
    arguments: the audit's dataset, its pairs in serving order, and "audit <id>"."""
    pair_ids = list(
        AuditItem.objects.sampled()
        .filter(audit=audit)
        .order_by("position")
        .values_list("pair_id", flat=True)
    )
    return {"dataset": audit.dataset, "pair_ids": pair_ids, "scope": audit_scope_label(audit)}


def audit_scope_label(audit: Audit) -> str:
    """How judge runs over this audit's items are labelled (`JudgeRun.scope`)."""
    return f"audit {audit.pk}"


def audit_labelled_scope(audit: Audit) -> dict[str, Any]:
    """What re-judging the calibration set covers, as `judge_run_create` arguments: exactly
    the audit's pairs people labelled (a submitted label, or the lead's adjudication), in
    serving order, and "audit <id> · labelled pairs". Gold items are left out: their answer
    was written by the lead, not labelled."""
    pair_ids = list(
        AuditItem.objects.sampled()
        .filter(audit=audit)
        .filter(Q(label_count__gte=1) | Q(adjudication__isnull=False))
        .order_by("position")
        .values_list("pair_id", flat=True)
    )
    return {"dataset": audit.dataset, "pair_ids": pair_ids, "scope": audit_rejudge_label(audit)}


def audit_rejudge_label(audit: Audit) -> str:
    """How re-judge runs over an audit's labelled pairs are labelled (`JudgeRun.scope`)."""
    return f"audit {audit.pk} · labelled pairs"


def audit_rejudge_baseline(audit: Audit, judge: Judge) -> Judge | None:
    """The version a re-judged ``judge`` is compared with: the newest earlier version of its
    name among the audit's judges (as a drift gate's default baseline)."""
    chosen = list(audit.judges.all()) or list(
        Judge.objects.filter(verdicts__pair__audit_items__audit=audit).distinct()
    )
    earlier = [j for j in chosen if j.name == judge.name and j.version < judge.version]
    return max(earlier, key=lambda j: (j.version, j.pk), default=None)


def audit_rejudge_runs(audit: Audit) -> list[JudgeRun]:
    """The audit's re-judge runs, newest first, with their judges."""
    return list(
        JudgeRun.objects.filter(dataset=audit.dataset, scope=audit_rejudge_label(audit))
        .select_related("judge")
        .order_by("-created_at", "-pk")
    )


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


def assignment_for_annotator(user: Any, pk: int) -> Assignment:
    """One of `user`'s own assignments with its item and audit, if they are still one of the
    audit's annotators: 404 if it is not theirs, 403 if they were taken off the audit. One
    query (the label and skip calls run it on every answer).

    The query is SQL whose columns come from the models (``config.model_rows``);
    :func:`assignment_for_annotator_orm` is the readable reference, and a test checks both give
    the same objects. Why: `bench/http_load.py`'s profile of `label?next=1` spent 30 % of a web
    worker's CPU building the ORM version's SQL (select_related over three tables and an
    Exists) on every label; the same query from a string costs Python a small part of that.
    """
    low, high = connection.ops.integer_field_range(Assignment._meta.pk.get_internal_type())
    row = None
    if low <= pk <= high:  # a larger id from the URL matches nothing (the ORM's rule)
        with connection.cursor() as cursor:
            cursor.execute(_assignment_sql(), [user.pk, pk, user.pk])
            row = cursor.fetchone()
    if row is None:
        raise Http404("No Assignment matches the given query.")
    (assignment, item, audit), (is_annotator,) = _ASSIGNMENT_COLUMNS.load(row)
    item.audit = audit
    assignment.item = item
    if not is_annotator:
        raise PermissionDenied("You are not an annotator of this audit.")
    return assignment


def assignment_for_annotator_orm(user: Any, pk: int) -> Assignment:
    """The ORM reference for :func:`assignment_for_annotator` (same rows, same errors)."""
    membership = Audit.annotators.through.objects.filter(
        audit_id=OuterRef("item__audit_id"), user_id=user.pk
    )
    assignment = get_object_or_404(
        Assignment.objects.select_related("item__audit").annotate(is_annotator=Exists(membership)),
        pk=pk,
        annotator=user,
    )
    if not assignment.is_annotator:  # type: ignore[attr-defined]  # annotated above
        raise PermissionDenied("You are not an annotator of this audit.")
    return assignment


_ASSIGNMENT_COLUMNS = ModelColumns((Assignment, "s"), (AuditItem, "i"), (Audit, "a"))


@functools.cache
def _assignment_sql() -> str:
    """Params: user id (membership), assignment id, user id (owner)."""
    quote = connection.ops.quote_name
    members = quote(Audit.annotators.through._meta.db_table)
    return (
        f"SELECT {_ASSIGNMENT_COLUMNS.select}, EXISTS (SELECT 1 FROM {members} m "
        f"WHERE m.audit_id = i.audit_id AND m.user_id = %s) "
        f"FROM {quote(Assignment._meta.db_table)} s "
        f"JOIN {quote(AuditItem._meta.db_table)} i ON i.id = s.item_id "
        f"JOIN {quote(Audit._meta.db_table)} a ON a.id = i.audit_id "
        f"WHERE s.id = %s AND s.annotator_id = %s"
    )


def audit_for_member(user: Any, pk: int) -> Audit:
    """The audit, for a lead or one of its annotators: 404 if missing, else 403 for others."""
    audit = get_object_or_404(audits_with_membership(user).select_related("dataset"), pk=pk)
    if not is_lead(user) and not audit.is_annotator:  # type: ignore[attr-defined]
        raise PermissionDenied("You are not an annotator of this audit.")
    return audit


def items_open_to(audit: Audit, annotator: Any) -> int:
    """Items this annotator could still label once other people's holds end."""
    if is_set_aside(audit, annotator):
        return 0
    done = Assignment.objects.filter(
        item=OuterRef("pk"),
        annotator=annotator,
        status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED],
    )
    return (
        AuditItem.objects.sampled()
        .filter(audit=audit, label_count__lt=audit.overlap_k)
        .filter(~Exists(done))
        .count()
    )


def is_set_aside(audit: Audit, annotator: Any) -> bool:
    """Whether a lead has set this annotator's labels in the audit aside."""
    return AnnotatorExclusion.objects.filter(audit=audit, annotator=annotator).exists()


def labels_counted(audit: Audit) -> QuerySet[Label]:
    """The audit's labels that the figures use: sampled items only (no gold), and nobody a
    lead has set aside. Every figure about an audit reads its labels through this (or
    `Label.objects.counted()` for several audits)."""
    return Label.objects.counted().filter(item__audit=audit)


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


def counts_by(rows: QuerySet[Any], field: str) -> dict[Any, int]:
    """How many of `rows` have each value of `field`, in one GROUP BY (a value no row has is
    absent)."""
    return dict(rows.order_by().values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


def strata_summary(audit: Audit) -> list[dict[str, Any]]:
    selected = counts_by(AuditItem.objects.sampled().filter(audit=audit), "stratum")
    available = (audit.selection or {}).get("available", {})
    rows = []
    for name in sampling.ALL_STRATA:
        if name == sampling.DRIFT and name not in available:
            continue  # no drift versions chosen: the stratum does not exist in this audit
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


@dataclass(frozen=True)
class QualityRow:
    """One annotator on the lead's quality table (`quality.AnnotatorQuality` and counts)."""

    user: Any
    listed: bool  # still one of the audit's annotators
    labels: int
    skips: int
    holding: int
    figures: quality.AnnotatorQuality
    set_aside: AnnotatorExclusion | None


_QUALITY_COLUMNS = (
    "item_id",
    "annotator_id",
    "outcome",
    "chose_left",
    "time_spent_ms",
    "item__gold_outcome",
)


def quality_table(audit: Audit) -> list[QualityRow]:
    """Per annotator: labels, skips, holds, median seconds, gold accuracy, agreement with the
    others, left-side preference and flags (`annotation.quality`), and whether a lead set
    them aside. Everyone listed on the audit, and anyone removed who left labels. Leads only:
    this shows who chose what in aggregate."""
    now = timezone.now()
    counts: dict[int, tuple[int, int, int]] = {
        row["annotator"]: (row["labels"], row["skips"], row["holding"])
        for row in Assignment.objects.filter(item__audit=audit)
        .order_by()
        .values("annotator")
        .annotate(
            labels=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)),
            skips=Count("pk", filter=Q(status=Assignment.Status.SKIPPED)),
            holding=Count("pk", filter=Q(status=Assignment.Status.HELD, expires_at__gt=now)),
        )
    }
    rows = [
        quality.LabelRow(
            item=item_id,
            annotator=annotator_id,
            outcome=outcome,
            chose_left=chose_left,
            seconds=ms / 1000,
            gold_outcome=gold or "",
        )
        for item_id, annotator_id, outcome, chose_left, ms, gold in Label.objects.filter(
            item__audit=audit
        ).values_list(*_QUALITY_COLUMNS)
    ]
    listed = set(audit.annotators.values_list("pk", flat=True))
    people = listed | set(counts) | {row.annotator for row in rows}
    figures = quality.annotator_quality(
        rows,
        thresholds=quality.Thresholds(
            min_seconds=audit.qc_min_seconds, min_gold_accuracy=audit.qc_min_gold_accuracy
        ),
        annotators=people,
    )
    set_aside = {
        exclusion.annotator_id: exclusion
        for exclusion in AnnotatorExclusion.objects.filter(audit=audit).select_related(
            "excluded_by"
        )
    }
    User = get_user_model()
    table = []
    for user in User.objects.filter(pk__in=people).order_by("username"):
        labels, skips, holding = counts.get(user.pk, (0, 0, 0))
        table.append(
            QualityRow(
                user=user,
                listed=user.pk in listed,
                labels=labels,
                skips=skips,
                holding=holding,
                figures=figures[user.pk],
                set_aside=set_aside.get(user.pk),
            )
        )
    return table


@dataclass(frozen=True)
class GoldItem:
    item: AuditItem
    right: int
    answers: int


def gold_items(audit: Audit) -> list[GoldItem]:
    """The audit's gold items with how often they were answered right (leads only)."""
    items = list(
        AuditItem.objects.gold().filter(audit=audit).select_related("pair").order_by("position")
    )
    answers = Counter[int]()
    right = Counter[int]()
    for item_id, outcome, gold in Label.objects.filter(item__in=items).values_list(
        "item_id", "outcome", "item__gold_outcome"
    ):
        answers[item_id] += 1
        right[item_id] += outcome == gold
    return [GoldItem(item, right[item.pk], answers[item.pk]) for item in items]


# --- What an audit can still hold -------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """How many labels an audit can still take, and what would make room for more.

    `pairs_left` are the pairs of the audit's strata not yet in it (strata with a quota, as
    recorded when the audit was built or last grown); `annotators` bounds k, since each of an
    item's k labels comes from a different person.
    """

    items: int
    overlap_k: int
    annotators: int
    labels_done: int
    pairs_left: int

    @property
    def labels_possible(self) -> int:
        return self.items * self.overlap_k

    @property
    def labels_left(self) -> int:
        return max(0, self.labels_possible - self.labels_done)

    @property
    def most_labels(self) -> int:
        """Labels the audit could hold with every pair left added and k at its largest."""
        return (self.items + self.pairs_left) * max(self.overlap_k, self.annotators)

    def reach(self, more_labels: int) -> Reach:
        """What gets `more_labels` more labels: nothing (they fit), more items, a larger k,
        both, or nothing can (the most it can hold is said)."""
        if more_labels <= self.labels_left:
            return Reach(more_labels, fits=True, sentence="the audit can hold them as it is")
        k = self.overlap_k
        wanted = self.labels_done + more_labels
        add = math.ceil((wanted - self.labels_possible) / k)
        add_items = add if add <= self.pairs_left else None
        k_needed = math.ceil(wanted / self.items) if self.items else None
        raise_k = k_needed if k_needed is not None and k_needed <= self.annotators else None
        options = []
        if add_items is not None:
            options.append(f"add {add_items} item{'s' if add_items != 1 else ''}")
        if raise_k is not None:
            options.append(f"k = {raise_k}")
        if options:
            return Reach(
                more_labels,
                fits=False,
                add_items=add_items,
                raise_k=raise_k,
                sentence=" or ".join(options),
            )
        most = self.most_labels - self.labels_done
        return Reach(
            more_labels,
            fits=False,
            reachable=False,
            sentence=(
                f"out of reach: at most {max(0, most):,} more labels, with all "
                f"{self.pairs_left:,} pairs left added and k = {max(k, self.annotators)}"
            ),
        )


@dataclass(frozen=True)
class Reach:
    labels: int
    fits: bool
    sentence: str
    reachable: bool = True
    add_items: int | None = None
    raise_k: int | None = None


def audit_capacity(audit: Audit) -> Capacity:
    """What `audit` can still hold (see Capacity); the report's "labels needed" projection
    calls `audit_capacity(audit).reach(n)` to say which action gets there."""
    selection = audit.selection or {}
    quotas, available = selection.get("quotas", {}), selection.get("available", {})
    pairs_left = sum(
        max(0, int(available.get(name, 0)) - int(quota)) for name, quota in quotas.items() if quota
    )
    progress = audit_progress(audit)
    return Capacity(
        items=progress.items,
        overlap_k=audit.overlap_k,
        annotators=audit.annotators.count(),
        labels_done=progress.labels_done,
        pairs_left=pairs_left,
    )


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
        AuditItem.objects.sampled()
        .filter(audit=audit, label_count__gte=1)
        .filter(~Exists(decided))
        .select_related("pair")
        .order_by("position")
    )
    labels: dict[int, list[Label]] = defaultdict(list)
    for label in (
        Label.objects.counted()
        .filter(item__in=[item.pk for item in items])
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


def item_review(item: AuditItem, *, blind: bool = False) -> dict[str, Any]:
    """Everything a lead sees when deciding: labels with names, every judge's verdict, and
    the history of the decision. `blind` (the audit's blind adjudication) leaves the verdicts
    out and the labels anonymous, in an order that says nothing about who answered first;
    the caller leaves the model names out."""
    set_aside = set(
        AnnotatorExclusion.objects.filter(audit_id=item.audit_id).values_list(
            "annotator_id", flat=True
        )
    )
    labels = list(
        Label.objects.filter(item=item)
        .select_related("annotator", "assignment")
        .order_by("created_at", "pk")
    )
    for label in labels:
        label.seconds = label.time_spent_ms / 1000  # type: ignore[attr-defined]
        label.set_aside = label.annotator_id in set_aside  # type: ignore[attr-defined]
    if blind:
        labels.sort(key=lambda label: (label.outcome, label.pk))
        return {"labels": labels, "verdicts": [], "history": adjudication_history(item)}
    verdicts = list(
        Verdict.objects.filter(pair=item.pair).select_related("judge").order_by("judge__name")
    )
    return {"labels": labels, "verdicts": verdicts, "history": adjudication_history(item)}


def adjudication_history(item: AuditItem) -> list[AdjudicationRevision]:
    """Every change to the item's adjudication, oldest first."""
    return list(
        AdjudicationRevision.objects.filter(item=item)
        .select_related("changed_by")
        .order_by("changed_at", "pk")
    )


def label_history(audit: Audit, annotator: Any) -> dict[int, list[LabelRevision]]:
    """item id -> the changes to this annotator's label on it, oldest first (their own)."""
    history: dict[int, list[LabelRevision]] = defaultdict(list)
    for revision in LabelRevision.objects.filter(item__audit=audit, annotator=annotator).order_by(
        "changed_at", "pk"
    ):
        history[revision.item_id].append(revision)
    return history


def final_outcomes(audit: Audit) -> dict[int, tuple[str | None, str]]:
    """item id -> (final outcome, where it came from): the lead's adjudication first, else the
    annotators' strict majority, else None ("unresolved")."""
    result: dict[int, tuple[str | None, str]] = {}
    adjudicated = dict(
        Adjudication.objects.filter(item__audit=audit).values_list("item_id", "outcome")
    )
    labels: dict[int, list[str]] = defaultdict(list)
    for item_id, outcome in labels_counted(audit).values_list("item_id", "outcome"):
        labels[item_id].append(outcome)
    for item_id in AuditItem.objects.sampled().filter(audit=audit).values_list("pk", flat=True):
        if item_id in adjudicated:
            result[item_id] = (adjudicated[item_id], "adjudication")
            continue
        majority = consensus(labels.get(item_id, []))
        result[item_id] = (majority, "labels" if majority else "unresolved")
    return result


# --- Response classes (audits that ask them) --------------------------------------------------


def response_class_votes(audit: Audit) -> dict[tuple[int, str], list[str]]:
    """(item id, "A"/"B") -> the classes the counted labels gave that response, in the order
    the labels were given."""
    votes: dict[tuple[int, str], list[str]] = defaultdict(list)
    rows = (
        ResponseClassLabel.objects.filter(label__in=labels_counted(audit))
        .order_by("label__created_at", "label_id", "side")
        .values_list("label__item_id", "side", "response_class")
    )
    for item_id, side, value in rows:
        votes[(item_id, side)].append(value)
    return votes


def final_response_classes(audit: Audit) -> dict[tuple[int, str], tuple[str | None, str]]:
    """(item id, side) -> (people's final class, where it came from) for every response that
    has one or more classes from people: the lead's class adjudication first, else the
    annotators' strict majority, else None ("unresolved")."""
    adjudicated = {
        (item_id, side): value
        for item_id, side, value in ResponseClassAdjudication.objects.filter(
            item__audit=audit
        ).values_list("item_id", "side", "response_class")
    }
    votes = response_class_votes(audit)
    result: dict[tuple[int, str], tuple[str | None, str]] = {}
    for key in sorted(set(votes) | set(adjudicated)):
        if key in adjudicated:
            result[key] = (adjudicated[key], "adjudication")
            continue
        majority = consensus(votes[key])
        result[key] = (majority, "labels" if majority else "unresolved")
    return result


@dataclass(frozen=True)
class ClassDisagreement:
    item: AuditItem
    side: str
    classes: list[str]  # distinct classes given, sorted


def class_disagreements(audit: Audit) -> list[ClassDisagreement]:
    """Responses whose annotators gave different classes and that no lead has decided."""
    decided = set(
        ResponseClassAdjudication.objects.filter(item__audit=audit).values_list("item_id", "side")
    )
    found = [
        (key, sorted(set(values)))
        for key, values in response_class_votes(audit).items()
        if len(set(values)) > 1 and key not in decided
    ]
    items = AuditItem.objects.in_bulk([key[0] for key, _ in found])
    rows = [ClassDisagreement(items[key[0]], key[1], classes) for key, classes in found]
    return sorted(rows, key=lambda row: (row.item.position, row.side))


def item_response_classes(item: AuditItem, *, blind: bool = False) -> list[dict[str, Any]]:
    """Per response of the item: the classes people gave (counted labels, as counts), the
    lead's class adjudication, and the refusal classifier's class (left out when `blind`: the
    adjudicator then decides from the texts alone)."""
    counted = Label.objects.counted().filter(item=item)
    given: dict[str, Counter[str]] = {"A": Counter(), "B": Counter()}
    for side, value in ResponseClassLabel.objects.filter(label__in=counted).values_list(
        "side", "response_class"
    ):
        given[side][value] += 1
    decided = {
        row.side: row
        for row in ResponseClassAdjudication.objects.filter(item=item).select_related("lead")
    }
    machine: dict[int, str] = {}
    if not blind:
        responses = [item.pair.response_a_id, item.pair.response_b_id]
        for response_id, label in (
            ResponseClassification.objects.filter(response_id__in=responses)
            .order_by("created_at", "pk")
            .values_list("response_id", "label")
        ):
            machine[response_id] = label  # the latest classification wins
    rows = []
    for side, response_id in (("A", item.pair.response_a_id), ("B", item.pair.response_b_id)):
        rows.append(
            {
                "side": side,
                "given": sorted(given[side].items(), key=lambda pair: (-pair[1], pair[0])),
                "disagree": len(given[side]) > 1,
                "adjudication": decided.get(side),
                "classifier": None if blind else machine.get(response_id),
            }
        )
    return rows
