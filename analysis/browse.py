"""Reads for the data browser (leads only): a dataset's pairs found by text and filtered by
what every stage knows of them, a page at a time, and one pair with everything Tribunal
holds about it.

It lives in `analysis` because it shows the three earlier apps' data side by side: the
texts and imported votes (corpus), verdicts and response classes (judges), labels and
adjudications (annotation). The text index belongs to corpus (`corpus.search`).

Paging is by key (`pk > after`, `pk < before`, 50 a page), never by offset, and the number
of matches is counted up to `COUNT_CAP` only ("1,000+"): both stay fast at 100,000 pairs.
Every filter is an indexed look-up per pair (`EXISTS` on the verdict, classification and
vote keys), so a page of dense matches reads about a page of pairs.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Substr
from django.utils import timezone

from annotation import selectors as annotation_selectors
from annotation.audit_items import item_state
from annotation.models import Assignment, AuditItem, LabelRevision, ResponseClassLabel
from corpus import search
from corpus.models import Dataset, HumanVote, Outcome, Pair, Response
from judges.models import (
    ClassificationRun,
    Judge,
    ResponseClassification,
    ResponseFeatures,
    Verdict,
)

PAGE_SIZE = 50
COUNT_CAP = 1000
COUNT_MS = 60  # the longest a page waits for its count
SNIPPET_CHARS = 160
FACETS_SECONDS = 120  # the filter menus (categories, models, judges) are cached this long

VERDICT_CHOICES = [
    *Outcome.choices,
    ("inconsistent", "Flips when swapped"),
    ("none", "No verdict"),
]
VOTE_CHOICES = [
    *Outcome.choices,
    ("split", "No majority"),
    ("none", "No votes"),
]
DISAGREEMENT_CHOICES = [
    ("judge_people", "Judge ≠ people's majority"),
    ("judges", "Judges disagree"),
    ("people", "People disagree"),
    ("swap", "Judge flips when swapped"),
]


@dataclass(frozen=True)
class PairFilters:
    """What the lead asked for; empty strings and None mean "any"."""

    q: str = ""
    category: str = ""
    model: str = ""
    response_class: str = ""
    judge: Judge | None = None
    verdict: str = ""
    vote: str = ""
    disagreement: str = ""

    @property
    def active(self) -> bool:
        return any(
            (
                search.search_terms(self.q),
                self.category,
                self.model,
                self.response_class,
                self.judge,
                self.verdict,
                self.vote,
                self.disagreement,
            )
        )


def _table(model: Any) -> str:
    return str(model._meta.db_table)


def _majority_sql() -> str:
    """The people's strict-majority outcome of the outer pair's imported votes (SQL)."""
    votes = _table(HumanVote)
    pairs = _table(Pair)
    return (
        f"(SELECT v.outcome FROM {votes} v WHERE v.pair_id = {pairs}.id GROUP BY v.outcome"
        f" HAVING 2 * COUNT(*) > (SELECT COUNT(*) FROM {votes} w WHERE w.pair_id = {pairs}.id))"
    )


def _distinct_outcomes_sql(model: Any) -> str:
    """How many different outcomes the outer pair's rows of `model` (verdicts, votes) hold."""
    return (
        f"(SELECT COUNT(DISTINCT x.outcome) FROM {_table(model)} x"
        f" WHERE x.pair_id = {_table(Pair)}.id)"
    )


def _where(pairs: QuerySet[Pair], sql: str, *params: Any) -> QuerySet[Pair]:
    """`pairs` where the SQL condition holds. The SQL names the pair table itself, so the
    queryset must stay the outer query (paging, counting and `.exists()` keep it so; do not
    nest it in another query's `pk__in`)."""
    return pairs.filter(RawSQL(sql, list(params), output_field=BooleanField()))


def dataset_classifier(dataset: Dataset) -> str | None:
    """The classifier of the dataset's latest finished classification run (the classes the
    dataset page shows), or None when none ran: then any classifier's class counts."""
    return (
        ClassificationRun.objects.filter(dataset=dataset, status=ClassificationRun.Status.DONE)
        .exclude(classifier="")
        .order_by("-created_at", "-pk")
        .values_list("classifier", flat=True)
        .first()
    )


def pairs_filtered(dataset: Dataset, filters: PairFilters) -> QuerySet[Pair]:
    """The dataset's pairs that match every filter, in import order (by id)."""
    pairs = Pair.objects.filter(dataset=dataset)
    pairs = search.pairs_search(pairs, filters.q)
    if filters.category:
        pairs = pairs.filter(
            Q(category=filters.category) | Q(category="", prompt__category=filters.category)
        )
    if filters.model:
        # A look-up of each side by its key as the pairs are walked (stops with the page),
        # never a join or a hash of the model's responses (their rows are wide: the texts).
        of_model = Response.objects.filter(model_name=filters.model)
        pairs = pairs.filter(
            Exists(of_model.filter(pk=OuterRef("response_a_id")))
            | Exists(of_model.filter(pk=OuterRef("response_b_id")))
        )
    if filters.response_class:
        classes = ResponseClassification.objects.filter(label=filters.response_class)
        classifier = dataset_classifier(dataset)
        if classifier:
            classes = classes.filter(classifier=classifier)
        pairs = pairs.filter(
            Exists(classes.filter(response_id=OuterRef("response_a_id")))
            | Exists(classes.filter(response_id=OuterRef("response_b_id")))
        )
    verdicts = Verdict.objects.filter(pair_id=OuterRef("pk"))
    if filters.judge is not None:
        verdicts = verdicts.filter(judge=filters.judge)
    if filters.verdict == "none":
        pairs = pairs.filter(~Exists(verdicts.exclude(outcome=None)))
    elif filters.verdict == "inconsistent":
        pairs = pairs.filter(Exists(verdicts.filter(consistent=False)))
    elif filters.verdict:
        pairs = pairs.filter(Exists(verdicts.filter(outcome=filters.verdict)))
    elif filters.judge is not None:
        pairs = pairs.filter(Exists(verdicts))
    votes = HumanVote.objects.filter(pair_id=OuterRef("pk"))
    if filters.vote == "none":
        pairs = pairs.filter(~Exists(votes))
    elif filters.vote == "split":
        pairs = _where(pairs.filter(Exists(votes)), f"{_majority_sql()} IS NULL")
    elif filters.vote:
        pairs = _where(pairs, f"{_majority_sql()} = %s", filters.vote)
    if filters.disagreement == "judge_people":
        # A verdict (of the chosen judge, or of any) that is not the people's majority; pairs
        # without a majority never match (`<>` with NULL is not true).
        judge_sql, params = "", []
        if filters.judge is not None:
            judge_sql, params = " AND v.judge_id = %s", [filters.judge.pk]
        pairs = _where(
            pairs,
            f"EXISTS (SELECT 1 FROM {_table(Verdict)} v WHERE v.pair_id = {_table(Pair)}.id"
            f"{judge_sql} AND v.outcome IS NOT NULL AND v.outcome <> {_majority_sql()})",
            *params,
        )
    elif filters.disagreement == "judges":
        pairs = _where(pairs, _distinct_outcomes_sql(Verdict) + " > 1")
    elif filters.disagreement == "people":
        pairs = _where(pairs, _distinct_outcomes_sql(HumanVote) + " > 1")
    elif filters.disagreement == "swap":
        pairs = pairs.filter(Exists(verdicts.filter(consistent=False)))
    return pairs.order_by("pk")


@dataclass
class PairRow:
    """One row of the list: the pair, and what the stages say of it."""

    id: int
    source_key: str
    category: str
    prompt: str
    model_a: str
    model_b: str
    verdicts: list[tuple[str, str | None, bool | None]] = field(default_factory=list)
    votes: Counter[str] = field(default_factory=Counter)
    class_a: str = ""
    class_b: str = ""

    @property
    def vote_counts(self) -> list[tuple[str, int]]:
        """(outcome, votes), most votes first (a Counter's `.items` is a key in templates)."""
        return sorted(self.votes.items(), key=lambda pair: (-pair[1], pair[0]))

    @property
    def votes_text(self) -> str:
        """ "B 2 · A 1": written here, not in the template, which a page renders 50 times."""
        return " · ".join(f"{outcome} {n}" for outcome, n in self.vote_counts)


def _shorten(text: str, chars: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


@dataclass
class PairPage:
    rows: list[PairRow]
    # Counted up to COUNT_CAP + 1; None when counting took longer than COUNT_MS (then at
    # least `len(rows)` match, and more when there is a next page).
    matches: int | None
    next_after: int | None
    previous_before: int | None

    @property
    def one(self) -> bool:
        return self.matches == 1

    @property
    def matches_shown(self) -> str:
        if self.matches is None:
            more = "+" if self.next_after or self.previous_before else ""
            return f"{len(self.rows):,}{more}"
        return f"{COUNT_CAP:,}+" if self.matches > COUNT_CAP else f"{self.matches:,}"


def pair_page(
    dataset: Dataset,
    filters: PairFilters,
    *,
    after: int | None = None,
    before: int | None = None,
    size: int | None = None,
) -> PairPage:
    """One page of the matching pairs: the first `size` after `after`, or the last `size`
    before `before`, or the first page; with links' keys for the pages on either side."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # These queries stop after a page; PostgreSQL's JIT, which their cost estimates
            # (correlated subqueries over 100,000 pairs) switch on, compiles for longer
            # (25 ms and more) than they run. Off for this transaction only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        return _pair_page(dataset, filters, after=after, before=before, size=size or PAGE_SIZE)


def _pair_page(
    dataset: Dataset, filters: PairFilters, *, after: int | None, before: int | None, size: int
) -> PairPage:
    matching = pairs_filtered(dataset, filters)
    found = matching
    if before is not None:
        found = found.filter(pk__lt=before).order_by("-pk")
    elif after is not None:
        found = found.filter(pk__gt=after)
    # The page's ids first (no joins: the filters only), then those rows' details.
    ids = list(found.values_list("pk", flat=True)[: size + 1])
    more = len(ids) > size
    ids = ids[:size]
    details = {
        row[0]: row
        for row in Pair.objects.filter(pk__in=ids)
        .annotate(snippet=Substr("prompt__text", 1, SNIPPET_CHARS))
        .values_list(
            "id",
            "source_key",
            "category",
            "prompt__category",
            "snippet",
            "response_a__model_name",
            "response_b__model_name",
            "response_a_id",
            "response_b_id",
        )
    }
    if before is not None:
        ids.reverse()
    values = [details[pk] for pk in ids]
    rows = [
        PairRow(
            id=pk,
            source_key=key,
            category=category or prompt_category,
            prompt=_shorten(snippet or ""),
            model_a=model_a,
            model_b=model_b,
        )
        for pk, key, category, prompt_category, snippet, model_a, model_b, _, _ in values
    ]
    _fill_rows(dataset, rows, {row[0]: (row[7], row[8]) for row in values})
    next_after = previous_before = None
    if rows:
        first, last = rows[0].id, rows[-1].id
        if before is not None:
            next_after = last if matching.filter(pk__gt=last).exists() else None
            previous_before = first if more else None
        else:
            next_after = last if more else None
            previous_before = (
                first if after is not None and matching.filter(pk__lt=first).exists() else None
            )
    if before is None and after is None and not more:
        matches: int | None = len(rows)  # the first page holds them all
    else:
        matches = _count_bounded(matching)
    return PairPage(
        rows=rows, matches=matches, next_after=next_after, previous_before=previous_before
    )


def _count_bounded(matching: QuerySet[Pair]) -> int | None:
    """The matches, counted up to COUNT_CAP + 1 and for at most COUNT_MS; None if that was
    not enough time (sparse matches under filters that no index answers: the count must walk
    the pairs until it has COUNT_CAP of them)."""
    # No ORDER BY: the count may stop at the cap instead of sorting every match.
    counting = matching.order_by()[: COUNT_CAP + 1]
    try:
        with transaction.atomic():  # a savepoint: a cancelled count leaves the page intact
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(COUNT_MS))}")
                    found = counting.count()
                    cursor.execute("SET LOCAL statement_timeout = 0")
                return found
            return _sqlite_within(COUNT_MS, counting.count)
    except OperationalError:
        return None


def _sqlite_within(ms: float, run: Any) -> Any:
    """`run()` on SQLite, interrupted (OperationalError) after `ms` milliseconds."""
    raw = connection.connection
    deadline = time.monotonic() + ms / 1000
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 200)
    try:
        return run()
    finally:
        raw.set_progress_handler(None, 0)


def _fill_rows(
    dataset: Dataset, rows: list[PairRow], responses: dict[int, tuple[int, int]]
) -> None:
    """Verdicts, votes and classes of one page of pairs: three reads by key."""
    if not rows:
        return
    by_id = {row.id: row for row in rows}
    for pair_id, name, version, outcome, consistent in (
        Verdict.objects.filter(pair_id__in=by_id)
        .order_by("judge__name", "-judge__version")
        .values_list("pair_id", "judge__name", "judge__version", "outcome", "consistent")
    ):
        by_id[pair_id].verdicts.append((f"{name} v{version}", outcome, consistent))
    for pair_id, outcome in HumanVote.objects.filter(pair_id__in=by_id).values_list(
        "pair_id", "outcome"
    ):
        by_id[pair_id].votes[outcome] += 1
    response_ids = {rid for pair in responses.values() for rid in pair}
    classes = ResponseClassification.objects.filter(response_id__in=response_ids)
    classifier = dataset_classifier(dataset)
    if classifier:
        classes = classes.filter(classifier=classifier)
    class_of = dict(classes.order_by("created_at", "pk").values_list("response_id", "label"))
    for pair_id, (response_a, response_b) in responses.items():
        by_id[pair_id].class_a = class_of.get(response_a, "")
        by_id[pair_id].class_b = class_of.get(response_b, "")


@dataclass(frozen=True)
class Facets:
    categories: list[str]
    models: list[str]
    judges: list[Judge]


def facets(dataset: Dataset) -> Facets:
    """The choices of the filter menus: the dataset's categories, models and judge versions
    with verdicts on it. Cached for FACETS_SECONDS: each is a pass over the dataset."""
    key = f"analysis.browse.facets:{dataset.pk}"
    try:
        found = cache.get(key)
    except Exception:  # a cache that is away costs a recomputation, never the page
        found = None
    if found is None:
        categories = sorted(
            {
                *Pair.objects.filter(dataset=dataset)
                .exclude(category="")
                .order_by()
                .values_list("category", flat=True)
                .distinct(),
                *Pair.objects.filter(dataset=dataset, category="")
                .exclude(prompt__category="")
                .order_by()
                .values_list("prompt__category", flat=True)
                .distinct(),
            }
        )
        models = sorted(
            {
                *Pair.objects.filter(dataset=dataset)
                .order_by()
                .values_list("response_a__model_name", flat=True)
                .distinct(),
                *Pair.objects.filter(dataset=dataset)
                .order_by()
                .values_list("response_b__model_name", flat=True)
                .distinct(),
            }
            - {""}
        )
        judge_ids = [
            judge.pk
            for judge in Judge.objects.all()
            if Verdict.objects.filter(judge=judge, pair__dataset=dataset).exists()
        ]
        found = (categories, models, judge_ids)
        with contextlib.suppress(Exception):
            cache.set(key, found, FACETS_SECONDS)
    categories, models, judge_ids = found
    judges = list(Judge.objects.filter(pk__in=judge_ids).order_by("name", "-version"))
    return Facets(categories=categories, models=models, judges=judges)


# --- One pair ---------------------------------------------------------------------------------


@dataclass
class AuditRecord:
    """One audit's item of this pair: its labels, people's classes, adjudication, history."""

    item: AuditItem
    labels: list[Any]
    label_revisions: list[LabelRevision]
    adjudication: Any
    adjudication_history: list[Any]
    classes_given: dict[int, dict[str, str]]  # label id -> side -> class
    state: str


@dataclass
class PairRecord:
    pair: Pair
    verdicts: list[Verdict]
    classes: dict[str, list[ResponseClassification]]  # "A"/"B" -> every classifier's class
    features: dict[str, list[ResponseFeatures]]
    votes: list[HumanVote]
    vote_counts: list[tuple[str, int]]
    audits: list[AuditRecord]
    classifier: str | None


def pair_record(pair: Pair) -> PairRecord:
    """Everything Tribunal knows about one pair (leads only): texts and models, every judge
    version's verdicts in both orders, every classifier's classes with their probabilities,
    text features, the imported votes, and each audit's labels (who, when), people's
    classes, adjudication and the history of both."""
    sides = {"A": pair.response_a_id, "B": pair.response_b_id}
    verdicts = list(
        Verdict.objects.filter(pair=pair)
        .select_related("judge")
        .order_by("judge__name", "-judge__version")
    )
    classes: dict[str, list[ResponseClassification]] = {"A": [], "B": []}
    features: dict[str, list[ResponseFeatures]] = {"A": [], "B": []}
    for side, response_id in sides.items():
        classes[side] = list(
            ResponseClassification.objects.filter(response_id=response_id).order_by(
                "-created_at", "-pk"
            )
        )
        features[side] = list(
            ResponseFeatures.objects.filter(response_id=response_id).order_by("-created_at", "-pk")
        )
    votes = list(HumanVote.objects.filter(pair=pair).order_by("source", "voter_id", "pk"))
    items = (
        AuditItem.objects.filter(pair=pair).select_related("audit").order_by("audit__created_at")
    )
    audits = []
    now = timezone.now()
    for item in items:
        review = annotation_selectors.item_review(item)
        given: dict[int, dict[str, str]] = defaultdict(dict)
        for label_id, side, value in ResponseClassLabel.objects.filter(
            label__item=item
        ).values_list("label_id", "side", "response_class"):
            given[label_id][side] = value
        adjudication = getattr(item, "adjudication", None)
        audits.append(
            AuditRecord(
                item=item,
                labels=review["labels"],
                label_revisions=list(
                    LabelRevision.objects.filter(item=item)
                    .select_related("annotator", "changed_by")
                    .order_by("changed_at", "pk")
                ),
                adjudication=adjudication,
                adjudication_history=review["history"],
                classes_given=dict(given),
                state=item_state(
                    overlap_k=item.audit.overlap_k,
                    outcomes=[label.outcome for label in review["labels"] if not label.set_aside],
                    adjudicated=adjudication is not None,
                    held=Assignment.objects.filter(
                        item=item, status=Assignment.Status.HELD, expires_at__gt=now
                    ).exists(),
                ),
            )
        )
    return PairRecord(
        pair=pair,
        verdicts=verdicts,
        classes=classes,
        features=features,
        votes=votes,
        vote_counts=sorted(
            Counter(vote.outcome for vote in votes).items(), key=lambda pair: (-pair[1], pair[0])
        ),
        audits=audits,
        classifier=dataset_classifier(pair.dataset),
    )
