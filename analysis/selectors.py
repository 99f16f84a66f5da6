"""Reads for the analysis: votes as long tables, snapshots and their history.

A vote table has one row per (item, rater, value), the shape every function of
:mod:`analysis.metrics` takes, plus the columns that slice it. An *item* is a pair (its id);
the raters are

- people: ``h:<voter id>`` for votes imported with a dataset, ``u:<user id>`` for the
  annotators' labels in an audit (the labels that count, ``labels_counted``, on the sampled
  items, ``AuditItem.objects.sampled()``: gold items and annotators set aside never count);
- judges: ``j:<judge id>``, one per judge *version*, with the verdict's combined outcome
  (MT-Bench's rule: a verdict that flips when the sides are swapped is a tie);
- ``human_majority``: the people's majority per item (no majority: tie), overridden by the
  lead's adjudication where one exists.

Slice columns: ``prompt`` (the bootstrap's cluster: one prompt may yield several pairs),
``dataset``, ``category``, ``turn``, ``model_pair``, ``response_class`` (the two sides'
refusal classes, unordered) and, in audits, ``stratum``. Everything is read with a few flat
``values_list`` queries: no model instances (50,000 pairs with 300,000 votes and verdicts
load in about two seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, F, FilteredRelation, Max, Q, QuerySet
from django.db.models.functions import Length

from analysis.metrics import S1, majority_vote
from analysis.models import MetricSnapshot
from analysis.vote_table import MAJORITY, JudgeInfo, VoteTable
from annotation.models import Adjudication, AnnotatorExclusion, Audit, AuditItem
from annotation.selectors import labels_counted
from corpus.models import Dataset, HumanVote, Pair, Response
from judges.models import (
    Judge,
    JudgeFamily,
    ModelFamily,
    ResponseClassification,
    ResponseFeatures,
    Verdict,
)

ITEM_COLUMNS = [
    "item",
    "prompt",
    "dataset",
    "category",
    "turn",
    "model_a",
    "model_b",
    "model_pair",
    "response_class",
    "stratum",
]
_CHUNK = 10_000


# --- watermarks: has anything changed since the last snapshot? -----------------------------


def _stamp(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def audit_judges(audit: Audit) -> list[Judge]:
    """The audit's chosen judges, or every judge with a verdict on its items."""
    chosen = list(audit.judges.all())
    if chosen:
        return chosen
    return list(
        Judge.objects.filter(verdicts__pair__audit_items__audit=audit)
        .distinct()
        .order_by("name", "version")
    )


class JudgeNotOnAudit(LookupError):
    """A judge reference that names none of an audit's judges; the message lists them."""


def judge_in(judges: Sequence[Judge], text: str) -> Judge | None:
    """A judge among ``judges`` by id, by its display name (`name vN`, as every page shows it),
    by its bare name (the newest version) or by a unique beginning of its name
    ("gpt-3.5-turbo" for "gpt-3.5-turbo · pandalm"); None when none matches."""
    text = text.strip()
    found = [j for j in judges if str(j.pk) == text or str(j) == text]
    if not found:
        found = sorted((j for j in judges if j.name == text), key=lambda j: -j.version)
    if not found:
        named = {j.name for j in judges if j.name.lower().startswith(text.lower())}
        if len(named) == 1:
            found = sorted((j for j in judges if j.name in named), key=lambda j: -j.version)
    return found[0] if found else None


def judges_listed(judges: Sequence[Judge]) -> str:
    """The judges as pages show them, for a message about a name that matched none."""
    return ", ".join(sorted(str(j) for j in judges)) or "none"


def audit_judge_named(audit: Audit, text: str) -> Judge:
    """A judge of the audit as `judge_in` reads it. Raises JudgeNotOnAudit naming the audit's
    judges."""
    judges = audit_judges(audit)
    found = judge_in(judges, text)
    if found is None:
        raise JudgeNotOnAudit(
            f"{text.strip()!r} is not a judge of audit {audit.pk} (judges: {judges_listed(judges)})"
        )
    return found


def _sampled(audit: Audit) -> QuerySet[AuditItem]:
    """The audit's items that the figures use: the stratified sample, never gold items."""
    return AuditItem.objects.sampled().filter(audit=audit)


def _sampled_pairs(audit: Audit) -> QuerySet[AuditItem, Any]:
    """The pair ids of :func:`_sampled`, a subquery for ``pair_id__in``: an audit holds a pair
    once, so it keeps the same verdicts as a join through ``pair__audit_items``, which SQLite
    plans as a scan of every verdict of the judges (62 ms against 1.4 ms on the bench's
    300-item audit, bench/analysis_bench.py)."""
    return _sampled(audit).values("pair_id")


def audit_watermark(audit: Audit) -> dict[str, Any]:
    """Counts and latest ids/times of everything an audit snapshot reads.

    Read it *before* the data: a label committed in between then makes the next request
    recompute instead of being claimed by a snapshot that does not contain it.
    """
    judges = audit_judges(audit)
    sampled = _sampled(audit)
    labels = labels_counted(audit).aggregate(n=Count("pk"), last=Max("pk"))
    adjudications = Adjudication.objects.filter(item__in=sampled).aggregate(
        n=Count("pk"), last=Max("pk")
    )
    verdicts = Verdict.objects.filter(
        pair_id__in=_sampled_pairs(audit), judge__in=[j.pk for j in judges]
    ).aggregate(n=Count("pk"), last=Max("updated_at"))
    return {
        "items": sampled.count(),
        "labels": labels["n"],
        # Setting an annotator aside (or back) changes what counts: a new snapshot.
        "set_aside": sorted(
            AnnotatorExclusion.objects.filter(audit=audit).values_list("annotator_id", flat=True)
        ),
        "label_last": labels["last"],
        "adjudications": adjudications["n"],
        "adjudication_last": adjudications["last"],
        "judges": sorted(j.pk for j in judges),
        "verdicts": verdicts["n"],
        "verdict_last": _stamp(verdicts["last"]),
        "classifications": _classification_stamp(audit.dataset_id),
        "families": _families_stamp(),
    }


def dataset_watermark(dataset: Dataset) -> dict[str, Any]:
    votes = HumanVote.objects.filter(pair__dataset=dataset).aggregate(n=Count("pk"), last=Max("pk"))
    verdicts = Verdict.objects.filter(pair__dataset=dataset).aggregate(
        n=Count("pk"), last=Max("updated_at")
    )
    return {
        "pairs": Pair.objects.filter(dataset=dataset).count(),
        "votes": votes["n"],
        "vote_last": votes["last"],
        "verdicts": verdicts["n"],
        "verdict_last": _stamp(verdicts["last"]),
        "classifications": _classification_stamp(dataset.pk),
        "families": _families_stamp(),
    }


def _families_stamp() -> list[Any]:
    """A lead's families changed (set, changed or cleared): the self-family figure moves."""
    stamps = []
    for model in (ModelFamily, JudgeFamily):
        found = model.objects.aggregate(n=Count("pk"), last=Max("updated_at"))
        stamps += [found["n"], _stamp(found["last"])]
    return stamps


def _classification_stamp(dataset_id: int) -> Any:
    found = ResponseClassification.objects.filter(response__prompt__dataset_id=dataset_id)
    return _stamp(found.aggregate(last=Max("created_at"))["last"])


# --- items ---------------------------------------------------------------------------------


def _latest_name(
    model: type[ResponseClassification | ResponseFeatures], field: str, dataset_id: int
) -> str | None:
    """``field`` of the dataset's newest ``model`` row: the classifier (or extractor) in use."""
    return (
        model.objects.filter(response__prompt__dataset_id=dataset_id)
        .order_by("-created_at", "-pk")
        .values_list(field, flat=True)
        .first()
    )


def latest_classifier(dataset_id: int) -> str | None:
    return _latest_name(ResponseClassification, "classifier", dataset_id)


def _response_classes(dataset_id: int, classifier: str | None = None) -> dict[int, str]:
    """Response id -> refusal class, from ``classifier`` (default: the most recently used
    one; a caller that has looked it up already passes it, saving the query)."""
    if classifier is None:
        classifier = latest_classifier(dataset_id)
    if classifier is None:
        return {}
    rows = ResponseClassification.objects.filter(
        response__prompt__dataset_id=dataset_id, classifier=classifier
    ).values_list("response_id", "label")
    return dict(rows.iterator(chunk_size=_CHUNK))


def _frame(rows: QuerySet[Any], columns: Mapping[str, str]) -> pd.DataFrame:
    """The fields ``columns`` names (keys: ORM paths; values: column names) of each row,
    read in chunks."""
    values = rows.values_list(*columns).iterator(chunk_size=_CHUNK)
    return pd.DataFrame.from_records(list(values), columns=list(columns.values()))


_PAIR_SIDES = {
    "response_a_id": "response_a",
    "response_b_id": "response_b",
    "response_a__model_name": "model_a",
    "response_b__model_name": "model_b",
}


def _items_frame(pairs: QuerySet[Pair], dataset_id: int) -> pd.DataFrame:
    columns = {
        "id": "item",
        "prompt_id": "prompt",
        "dataset__name": "dataset",
        "category": "category",
        "turn": "turn",
        **_PAIR_SIDES,
    }
    frame = _frame(pairs, columns)
    frame["category"] = frame["category"].where(frame["category"].astype(bool), None)
    frame["model_pair"] = _unordered(frame["model_a"], frame["model_b"], " vs ")
    classes = _response_classes(dataset_id)
    if classes:
        frame["response_class"] = _unordered(
            frame["response_a"].map(classes), frame["response_b"].map(classes), " / "
        )
    else:
        frame["response_class"] = None
    frame["stratum"] = None
    return frame.drop(columns=["response_a", "response_b"])


def _unordered(first: pd.Series, second: pd.Series, joiner: str) -> pd.Series:
    """``"x vs y"`` with the two names in sorted order; None where either is missing."""
    a = first.to_numpy(dtype=object, na_value=None)
    b = second.to_numpy(dtype=object, na_value=None)
    known = np.array([bool(x) and bool(y) for x, y in zip(a, b, strict=True)], dtype=bool)
    a, b = np.where(known, a, ""), np.where(known, b, "")
    low, high = np.where(a <= b, a, b), np.where(a <= b, b, a)
    joined = np.char.add(np.char.add(low.astype(str), joiner), high.astype(str))
    missing = np.full(len(a), None, dtype=object)
    return pd.Series(
        np.where(known, joined.astype(object), missing), index=first.index, dtype=object
    )


def _slices(items: pd.DataFrame, candidates: Sequence[str]) -> tuple[str, ...]:
    """Slice columns worth a table: at least two distinct values."""
    return tuple(c for c in candidates if items[c].dropna().nunique() >= 2)


# --- votes ---------------------------------------------------------------------------------

_VOTE_COLUMNS = ["item", "rater", "value", "kind"]


def _judge_votes(
    pair_filter: dict[str, Any], judges: Iterable[Judge], prompts: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, JudgeInfo]]:
    judges = list(judges)
    infos: dict[str, JudgeInfo] = {}
    # In the order SQLite read them through the judge index before (judge, then id): the
    # row order decides the bootstrap's cluster order, and so its draws.
    verdicts = Verdict.objects.filter(**pair_filter, judge__in=[j.pk for j in judges]).order_by(
        "judge_id", "pk"
    )
    frame = _frame(
        verdicts,
        {
            "pair_id": "item",
            "judge_id": "judge",
            "outcome": "value",
            "outcome_ab": "outcome_ab",
            "outcome_ba": "outcome_ba",
            "consistent": "consistent",
        },
    )
    frame = frame[frame["item"].isin(prompts.index)]
    frame["rater"] = "j:" + frame["judge"].astype(str)
    per_judge = frame.groupby("judge")["value"].agg(["count", "size"])
    for judge in judges:
        rater = f"j:{judge.pk}"
        done = int(per_judge["count"].get(judge.pk, 0))
        total = int(per_judge["size"].get(judge.pk, 0))
        infos[rater] = JudgeInfo(
            id=rater,
            judge_id=judge.pk,
            name=judge.name,
            version=judge.version,
            model_id=judge.model_id,
            verdicts=done,
            unparsed=total - done,
        )
    frame["prompt"] = frame["item"].map(prompts)
    orders = frame[["item", "rater", "outcome_ab", "outcome_ba", "consistent", "prompt"]]
    votes = frame[frame["value"].notna()].assign(kind="judge")[_VOTE_COLUMNS]
    return votes, orders.reset_index(drop=True), infos


def with_majority(votes: pd.DataFrame, adjudicated: pd.Series) -> pd.DataFrame:
    """Append the people's majority per item as rater ``human_majority``.

    Majority vote under S1 (``both_bad`` counts as a tie); no strict majority means ``tie``;
    the lead's adjudication, where one exists, overrides it.
    """
    people = votes[votes["kind"] == "human"]
    if people.empty and adjudicated.empty:
        return votes
    adjudicated = adjudicated.mask(adjudicated.eq("both_bad"), "tie")
    majority = majority_vote(
        people[["item", "rater", "value"]], policy=S1, tie_break="tie", adjudicated=adjudicated
    )
    extra = adjudicated[~adjudicated.index.isin(majority.index)]
    labels = pd.concat([majority["label"], extra])
    rows = pd.DataFrame(
        {"item": labels.index, "rater": MAJORITY, "value": labels.to_numpy(), "kind": "majority"}
    )
    return pd.concat([votes, rows[rows["value"].notna()]], ignore_index=True)


def _finish(
    subject: dict[str, Any],
    items: pd.DataFrame,
    human_votes: pd.DataFrame,
    humans: dict[str, str],
    pair_filter: dict[str, Any],
    judges: list[Judge],
    adjudicated: pd.Series,
    sides: pd.DataFrame,
    slice_candidates: Sequence[str],
) -> VoteTable:
    prompts = items.set_index("item")["prompt"]
    judge_votes, orders, infos = _judge_votes(pair_filter, judges, prompts)
    votes = pd.concat([human_votes[_VOTE_COLUMNS], judge_votes], ignore_index=True)
    votes = with_majority(votes, adjudicated)
    votes = votes.merge(items, on="item", how="left", validate="many_to_one")
    counts = {
        "items": len(items),
        "prompts": int(items["prompt"].nunique()),
        "human_votes": len(human_votes),
        "humans": len(humans),
        "judges": len(infos),
        "verdicts": int(sum(j.verdicts for j in infos.values())),
        "unparsed_verdicts": int(sum(j.unparsed for j in infos.values())),
        "adjudications": len(adjudicated),
        "items_with_human_votes": int(human_votes["item"].nunique()),
    }
    return VoteTable(
        subject=subject,
        votes=votes,
        items=items,
        humans=humans,
        judges=infos,
        orders=orders,
        sides=sides,
        adjudicated=adjudicated,
        counts=counts,
        slices=_slices(items, slice_candidates),
    )


def _unique_voters(frame: pd.DataFrame) -> pd.DataFrame:
    """A voter who voted twice on one item becomes ``voter#2`` for the second vote.

    FastChat's MT-Bench agreement pools every expert vote on an item; the metrics here
    refuse two votes of one rater on one item, so a repeat counts as another voter.
    """
    repeat = frame.groupby(["item", "rater"]).cumcount()
    frame = frame.copy()
    frame.loc[repeat > 0, "rater"] = (
        frame.loc[repeat > 0, "rater"] + "#" + (repeat[repeat > 0] + 1).astype(str)
    )
    return frame


def dataset_votes(dataset: Dataset) -> VoteTable:
    """Imported human votes and every judge's verdicts on a dataset's pairs."""
    items = _items_frame(Pair.objects.filter(dataset=dataset).order_by("pk"), dataset.pk)
    rows = (
        HumanVote.objects.filter(pair__dataset=dataset)
        .order_by("pk")
        .values_list("pair_id", "voter_id", "outcome")
    )
    human_votes = pd.DataFrame.from_records(
        list(rows.iterator(chunk_size=_CHUNK)), columns=["item", "rater", "value"]
    )
    human_votes["rater"] = "h:" + human_votes["rater"].astype(str)
    human_votes = _unique_voters(human_votes).assign(kind="human")
    humans = {r: r.removeprefix("h:") for r in sorted(human_votes["rater"].unique())}
    judges = list(
        Judge.objects.filter(verdicts__pair__dataset=dataset).distinct().order_by("name", "version")
    )
    table = _finish(
        {"kind": "dataset", "id": dataset.pk, "name": dataset.name},
        items,
        human_votes,
        humans,
        {"pair__dataset": dataset},
        judges,
        pd.Series(dtype=object),
        pd.DataFrame(columns=["rater", "value", "left"]),
        ["turn", "category", "model_pair", "response_class"],
    )
    table.progress.update(
        {
            "pairs": len(items),
            "pairs_with_votes": table.counts["items_with_human_votes"],
            "votes": len(human_votes),
            "voters": len(humans),
            "verdicts": table.counts["verdicts"],
        }
    )
    return table


def audit_votes(audit: Audit) -> VoteTable:
    """The annotators' labels, the lead's adjudications and the audit's judges' verdicts."""
    audit_items = pd.DataFrame.from_records(
        list(_sampled(audit).values_list("pair_id", "stratum", "inclusion_probability")),
        columns=["item", "stratum", "inclusion_probability"],
    )
    pairs = Pair.objects.filter(audit_items__in=_sampled(audit)).order_by("pk")
    items = _items_frame(pairs, audit.dataset_id).drop(columns=["stratum"])
    items = items.merge(audit_items[["item", "stratum"]], on="item", how="left")
    labels = _frame(
        labels_counted(audit).order_by("pk"),
        {
            "item__pair_id": "item",
            "annotator_id": "user",
            "annotator__username": "username",
            "outcome": "value",
            "assignment__a_on_left": "a_on_left",
        },
    )
    labels["rater"] = "u:" + labels["user"].astype(str)
    humans = dict(sorted(zip(labels["rater"], labels["username"], strict=True)))
    sides = pd.DataFrame(
        {
            "rater": labels["rater"],
            "value": labels["value"],
            "left": labels["a_on_left"].map({True: "A", False: "B"}),
        }
    )
    adjudicated = pd.Series(
        dict(
            Adjudication.objects.filter(item__in=_sampled(audit)).values_list(
                "item__pair_id", "outcome"
            )
        ),
        dtype=object,
    )
    table = _finish(
        {"kind": "audit", "id": audit.pk, "name": audit.name, "dataset": audit.dataset.name},
        items,
        labels.assign(kind="human"),
        humans,
        {"pair_id__in": _sampled_pairs(audit)},
        audit_judges(audit),
        adjudicated,
        sides,
        ["stratum", "turn", "category", "model_pair", "response_class"],
    )
    per_item = labels.groupby("item").size()
    k = audit.overlap_k
    strata = []
    for stratum, group in items.groupby("stratum", sort=True):
        labelled = per_item.reindex(group["item"]).fillna(0)
        strata.append(
            {
                "stratum": stratum,
                "items": len(group),
                "labels": int(labelled.sum()),
                "complete": int((labelled >= k).sum()),
            }
        )
    table.progress.update(
        {
            "items": len(items),
            "overlap_k": k,
            "labels": len(labels),
            "labels_needed": len(items) * k,
            "items_labelled": int(per_item.size),
            "items_complete": int((per_item >= k).sum()),
            "adjudicated": len(adjudicated),
            "annotators": len(humans),
            "strata": strata,
        }
    )
    return table


# --- snapshots -----------------------------------------------------------------------------


def snapshots_for(*, audit: Audit | None = None, dataset: Dataset | None = None) -> QuerySet[Any]:
    if (audit is None) == (dataset is None):
        raise ValueError("give an audit or a dataset")
    if audit is not None:
        return MetricSnapshot.objects.filter(audit=audit)
    return MetricSnapshot.objects.filter(dataset=dataset)


def snapshot_latest(
    *, audit: Audit | None = None, dataset: Dataset | None = None
) -> MetricSnapshot | None:
    return snapshots_for(audit=audit, dataset=dataset).order_by("-created_at", "-pk").first()


def snapshot_history(
    *, audit: Audit | None = None, dataset: Dataset | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The compact trend record of the latest ``limit`` snapshots, oldest first.

    Only each snapshot's ``metrics["trend"]`` is read (a JSON key lookup in the database),
    not the full figures.
    """
    rows = (
        snapshots_for(audit=audit, dataset=dataset)
        .order_by("-created_at", "-pk")
        .values("pk", "created_at", "label_count", "metrics__trend")[:limit]
    )
    history = []
    for row in reversed(list(rows)):
        trend = row["metrics__trend"]
        if not isinstance(trend, dict):
            continue
        history.append(
            {
                "id": row["pk"],
                "created_at": row["created_at"],
                "label_count": row["label_count"],
                **trend,
            }
        )
    return history


# --- pairs' responses, criteria and the population: the inputs of analysis.studies ----------

DETAIL_COLUMNS = [
    "pair_id",
    "model_a",
    "model_b",
    "class_a",
    "class_b",
    "tokens_a",
    "tokens_b",
    "sim_a",
    "sim_b",
    "headers_a",
    "headers_b",
    "lists_a",
    "lists_b",
    "bold_a",
    "bold_b",
]


@dataclass(frozen=True)
class PairDetails:
    """Per pair: both responses' models, refusal classes and text features.

    ``frame`` has :data:`DETAIL_COLUMNS`; ``class_*`` is None where no classifier has seen the
    response, ``sim_*`` and the markdown counts are NaN where no features were computed.
    ``length_unit`` is ``"tokens"`` when features exist (MiniLM WordPiece tokens), else
    ``"characters"`` (read from the texts), so a refusal gap can still control for length.
    """

    frame: pd.DataFrame
    classifier: str | None
    extractor: str | None
    length_unit: str


def pair_details(pairs: QuerySet[Pair], dataset_id: int) -> PairDetails:
    """Models, classes and features of both responses of each pair in ``pairs``."""
    frame = _frame(pairs.order_by("pk"), {"id": "pair_id", **_PAIR_SIDES})
    classifier = latest_classifier(dataset_id)
    classes = _response_classes(dataset_id, classifier) if classifier is not None else {}
    for side in ("a", "b"):
        found_class = frame[f"response_{side}"].map(classes).astype(object)
        frame[f"class_{side}"] = found_class.where(found_class.notna(), None)
    extractor = _latest_name(ResponseFeatures, "extractor", dataset_id)
    names = ("tokens", "sim", "headers", "lists", "bold")
    if extractor is not None:
        found = ResponseFeatures.objects.filter(
            response__prompt__dataset_id=dataset_id, extractor=extractor
        ).values_list(
            "response_id", "length_tokens", "prompt_similarity", "headers", "list_items", "bold"
        )
        features = pd.DataFrame.from_records(
            list(found.iterator(chunk_size=_CHUNK)), columns=["response", *names]
        ).set_index("response")
        unit = "tokens"
    else:
        lengths = (
            Response.objects.filter(prompt__dataset_id=dataset_id)
            .annotate(n=Length("text"))
            .values_list("id", "n")
        )
        features = pd.DataFrame.from_records(
            list(lengths.iterator(chunk_size=_CHUNK)), columns=["response", "tokens"]
        ).set_index("response")
        for name in names[1:]:
            features[name] = np.nan
        unit = "characters"
    for side in ("a", "b"):
        joined = features.reindex(frame[f"response_{side}"].to_numpy())
        for name in names:
            frame[f"{name}_{side}"] = pd.to_numeric(joined[name], errors="coerce").to_numpy()
    return PairDetails(
        frame=frame[DETAIL_COLUMNS],
        classifier=classifier if classes else None,
        extractor=extractor,
        length_unit=unit,
    )


def judge_criteria(pair_filter: dict[str, Any], judge_ids: Sequence[int]) -> pd.DataFrame:
    """Per-criterion verdicts (SOS-Bench style) of the judges, one row per (pair, judge).

    Columns ``pair_id``, ``rater`` (``j:<id>``), ``criterion``, ``score``: the graded verdict
    on the pair's labelling (A>>B +2 ... B>>A -2), the mean of the two orders where both ran.
    """
    rows = (
        Verdict.objects.filter(**pair_filter, judge__in=list(judge_ids))
        .exclude(criteria_ab={}, criteria_ba={})
        .values_list("pair_id", "judge_id", "criteria_ab", "criteria_ba")
    )
    records = []
    for pair_id, judge_id, *orders in rows.iterator(chunk_size=_CHUNK):
        scores: dict[str, list[float]] = {}
        for criteria in orders:
            for name, entry in (criteria or {}).items():
                score = _criterion_score(entry)
                if score is not None:
                    scores.setdefault(str(name), []).append(score)
        for name, values in scores.items():
            records.append((pair_id, f"j:{judge_id}", name, sum(values) / len(values)))
    return pd.DataFrame.from_records(records, columns=["pair_id", "rater", "criterion", "score"])


def _criterion_score(entry: Any) -> float | None:
    """+2 / +1 / 0 / -1 / -2 from a stored criterion verdict (outcome and strength)."""
    if not isinstance(entry, dict):
        return None
    outcome = entry.get("outcome")
    strength = entry.get("strength") or 1
    if outcome == "A":
        return float(min(int(strength), 2))
    if outcome == "B":
        return -float(min(int(strength), 2))
    if outcome in ("tie", "both_bad"):
        return 0.0
    return None


def population_groups(dataset_id: int, judge_ids: Sequence[int]) -> pd.DataFrame:
    """How each judge's verdicts on a whole dataset fall on each model and response class.

    One row per (``rater`` ``j:<id>``, ``by`` ``model`` or ``class``, ``group``) with the
    ``wins``, ``ties`` and ``losses`` of that group's responses under the judge's combined
    verdicts (a response wins when its side is chosen; both sides of a pair count). Counted by
    the database, so a large dataset is summarised without reading its verdicts one by one:
    the judge-only half of a prediction-powered estimate needs only these counts.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Judges that also judged larger datasets: PostgreSQL's default random_page_cost (4,
            # a spinning disk's) makes it read all their verdicts and hash-join them with the
            # dataset's pairs rather than look each pair's verdicts up in `verdict_pair_judge`.
            # A 600-pair audit pool beside a 50,000-pair dataset: 34 ms a query against 2.4 ms;
            # the 50,000-pair dataset itself: 95 ms either way. SSD's value, this transaction only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL random_page_cost = 1.1")
        return _population_groups(dataset_id, judge_ids)


def _population_groups(dataset_id: int, judge_ids: Sequence[int]) -> pd.DataFrame:
    base = Verdict.objects.filter(
        pair__dataset_id=dataset_id, judge__in=list(judge_ids), outcome__isnull=False
    ).order_by()
    classifier = latest_classifier(dataset_id)
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    for side, win, loss in (("a", "A", "B"), ("b", "B", "A")):
        queries = {
            "model": base.annotate(group=F(f"pair__response_{side}__model_name")),
        }
        if classifier is not None:
            # A join on the classifier's rows (at most one per response: `classification_once`),
            # not a subquery per verdict: on 20,000 pairs, 25 ms against 170 ms in PostgreSQL.
            classes = f"pair__response_{side}__classes"
            queries["class"] = base.annotate(
                side_class=FilteredRelation(
                    classes, condition=Q(**{f"{classes}__classifier": classifier})
                )
            ).annotate(group=F("side_class__label"))
        for by, query in queries.items():
            rows = query.values("judge_id", "group", "outcome").annotate(n=Count("pk"))
            for row in rows:
                if not row["group"]:
                    continue
                key = (f"j:{row['judge_id']}", by, str(row["group"]))
                entry = counts.setdefault(key, {"wins": 0, "ties": 0, "losses": 0})
                outcome = row["outcome"]
                kind = "wins" if outcome == win else "losses" if outcome == loss else "ties"
                entry[kind] += int(row["n"])
    return pd.DataFrame(
        [(*key, v["wins"], v["ties"], v["losses"]) for key, v in sorted(counts.items())],
        columns=["rater", "by", "group", "wins", "ties", "losses"],
    )


def audit_design(audit: Audit) -> pd.DataFrame:
    """The audit's sampling design: ``pair_id``, ``stratum``, ``inclusion_probability``."""
    rows = _sampled(audit).values_list("pair_id", "stratum", "inclusion_probability")
    return pd.DataFrame.from_records(
        list(rows), columns=["pair_id", "stratum", "inclusion_probability"]
    )


def audit_label_sequence(audit: Audit) -> pd.DataFrame:
    """The audit's labels in the order they were given: ``item`` (pair id), ``value``."""
    rows = (
        labels_counted(audit).order_by("created_at", "pk").values_list("item__pair_id", "outcome")
    )
    return pd.DataFrame.from_records(list(rows), columns=["item", "value"])
