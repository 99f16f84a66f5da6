"""Calibration-set export: one row per audited pair, in one of two layouts.

- `flat` (the default; `analysis.export_flat`): one plain value per cell (the final label and
  whether it was adjudicated, each annotator's label, each judge version's verdicts, classes,
  stratum and inclusion probability), for pandas and spreadsheets;
- `generic`: Tribunal's import schema with the nested detail, described below; its columns
  and nested keys are `corpus.importers.schema`'s, the list the `generic` importer accepts.

Only what the figures count: the sampled items (`AuditItem.objects.sampled()`, no gold items)
and the labels that count (`Label.objects.counted()`, nobody a lead set aside).

A generic row holds the pair's texts, every human label (under a pseudonymous annotator id) and
imported human vote, every judge verdict in both orders with the judge's fingerprint, and in
`meta` the stratum, inclusion probability and weight, the side order each annotator saw and
the time they spent, the adjudicated or consensus label, and the responses' refusal classes
and text features. Because it is the `generic` schema, an exported file imports back into
Tribunal as a dataset with human votes and verdicts (`import_pairs --format generic`).

Memory stays bounded at any size: pairs are read in chunks of ids, each chunk's labels,
votes and verdicts with one query per table, and rows are written as they are built (JSON
lines and CSV line by line, Parquet one row group per chunk). The manifest beside the data
file records the counts, the judges' fingerprints, the tie policy, the file's sha256, the
Tribunal version and, under ``drift``, how each version of a judge differs from the previous
version of the same name on the audit (:func:`manifest_drift`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from itertools import pairwise
from pathlib import Path
from typing import IO, Any, Literal, cast

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from analysis import compare, selectors
from analysis.export_flat import JUDGE_PARTS, FlatPlan
from analysis.refusal_instrument import people_classes
from analysis.snapshot import Result
from annotation.models import Adjudication, Audit, AuditItem, Label
from corpus.importers import schema
from corpus.models import HumanVote, Outcome, Pair
from judges.class_files import FEATURES  # a response's measured features, by name
from judges.models import ResponseClassification, ResponseFeatures, Verdict

ExportFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet")
Layout = Literal["flat", "generic"]
LAYOUTS: tuple[Layout, ...] = ("flat", "generic")  # the first is the default
LAYOUT_HELP = (
    "flat: one row per pair, one plain value per cell (final label, each annotator's label, "
    "each judge's verdicts, classes, stratum and probability); generic: Tribunal's import "
    "schema with nested detail, imports back unchanged"
)
CONTENT_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
CHUNK_PAIRS = 2000
# A verdict row's pair and judge (`ExportStats.verdict_of` counts it): both layouts read these.
_VERDICT_JUDGE = (
    "pair_id",
    "judge__name",
    "judge__version",
    "judge__model_id",
    "judge__fingerprint",
    "judge__tie_policy",
    "judge__provider",
)
TIE_POLICY = (
    "consensus = majority of the human labels; a shared top count is a tie; "
    "an adjudication overrides the consensus"
)


class ExportError(ValueError):
    """A request to export that cannot be served (unknown format, no such audit)."""


def tribunal_version() -> str:
    try:
        return metadata.version("tribunal")
    except metadata.PackageNotFoundError:
        return str(getattr(settings, "SPECTACULAR_SETTINGS", {}).get("VERSION", "unknown"))


def pseudonym(user_id: int, *, secret: str) -> str:
    """A stable pseudonymous annotator id: the same person in every export of this site."""
    digest = hashlib.sha256(f"{secret}:annotator:{user_id}".encode()).hexdigest()
    return f"annotator-{digest[:12]}"


def consensus(outcomes: Sequence[str]) -> str | None:
    """Majority of the labels; a shared top count is a tie (the manifest's tie policy)."""
    if not outcomes:
        return None
    if len(outcomes) == 2:  # the common case, without a Counter
        return outcomes[0] if outcomes[0] == outcomes[1] else str(Outcome.TIE)
    counts = Counter(outcomes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return str(Outcome.TIE)
    return counts[0][0]


@dataclass
class ExportStats:
    pairs: int = 0
    labels: int = 0
    imported_votes: int = 0
    verdicts: int = 0
    adjudicated: int = 0
    judges: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> info
    strata: Counter[str] = field(default_factory=Counter)

    def verdict_of(self, verdict: dict[str, Any]) -> str:
        """Count a verdict row (`_VERDICT_JUDGE` values) under its judge; its fingerprint."""
        fingerprint: str = verdict["judge__fingerprint"]
        judge = self.judges.get(fingerprint)
        if judge is None:
            judge = self.judges[fingerprint] = {
                "name": verdict["judge__name"],
                "version": verdict["judge__version"],
                "model_id": verdict["judge__model_id"],
                "provider": verdict["judge__provider"],
                "tie_policy": verdict["judge__tie_policy"],
                "verdicts": 0,
            }
        judge["verdicts"] += 1
        return fingerprint

    def item_of(self, item: dict[str, Any], adjudicated: bool, labels: int) -> None:
        """Count an audit item (with its stratum), its adjudication and its labels."""
        self.strata[item["stratum"]] += 1
        self.adjudicated += adjudicated
        self.labels += labels


class Pseudonyms(dict[int, str]):
    """Each annotator's pseudonym (:func:`pseudonym`), computed once: ``voters[user_id]``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def __missing__(self, user_id: int) -> str:
        voter = self[user_id] = pseudonym(user_id, secret=self.secret)
        return voter


@dataclass(frozen=True)
class _Chunk:
    """One chunk of pairs and what both layouts read for it (by pair, item or response id):
    the row builders' common input."""

    pairs: list[dict[str, Any]]
    items: dict[int, list[dict[str, Any]]]
    labels: dict[int, list[dict[str, Any]]]
    adjudications: dict[int, dict[str, Any]]
    imported: dict[int, list[dict[str, Any]]]
    verdicts: Any  # the chunk's Verdict query, each layout reads its columns
    stats: ExportStats
    voters: Pseudonyms
    qualify: bool  # pair ids qualified by dataset (the audits' datasets differ)
    response_tables: bool  # anything classified or measured on this site

    @property
    def response_ids(self) -> list[int]:
        return [p["response_a_id"] for p in self.pairs] + [p["response_b_id"] for p in self.pairs]


try:  # orjson is several times faster; the output is the same compact JSON
    import orjson

    def _dumps_bytes(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - the standard library does the same, slower

    def _dumps_bytes(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _dumps(value: Any) -> str:
    return _dumps_bytes(value).decode()


def _json(text: str | None) -> Any:
    """A JSON column read as text: most are empty, and skipping their parse is much faster."""
    if text is None or text == "{}":
        return {}
    value = json.loads(text)
    # PostgreSQL's jsonb::text is the JSON; a JSON string in SQLite may come back quoted twice.
    return json.loads(value) if isinstance(value, str) else value


def _fetch(values: Any) -> list[dict[str, Any]]:
    """A `.values()` query's rows, read through the cursor without Django's per-row converters.

    Much faster for large exports; the callers convert what the backend returns differently
    (SQLite gives booleans as 0/1 and datetimes as text, JSON is read as text by a Cast).
    """
    query = values.query
    names = list(values._fields)  # Django 6 selects them in the order values() names them
    try:
        sql, params = query.sql_with_params()
    except EmptyResultSet:  # an empty `__in` list: nothing to read
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _when(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value).replace(" ", "T")


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    chunk: list[int] = []
    for pk in ids:
        chunk.append(pk)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def audits_get(audit_ids: Sequence[int]) -> list[Audit]:
    """The audits to export, in the order given; an unknown id is an ExportError."""
    if not audit_ids:
        raise ExportError("name at least one audit")
    found = {a.pk: a for a in Audit.objects.filter(pk__in=audit_ids)}
    missing = [str(pk) for pk in audit_ids if pk not in found]
    if missing:
        raise ExportError(f"no audit with id {', '.join(missing)}")
    return [found[pk] for pk in dict.fromkeys(audit_ids)]


def export_rows(
    audit_ids: Sequence[int],
    *,
    stats: ExportStats | None = None,
    secret: str | None = None,
    chunk_size: int = CHUNK_PAIRS,
    plan: FlatPlan | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per pair in the audits (a pair in several audits is one row), ordered by id.

    Rows in the generic layout, or with ``plan`` (see ``flat_plan``) in the flat one."""
    stats = stats if stats is not None else ExportStats()
    secret = settings.SECRET_KEY if secret is None else secret
    audit_ids = list(audit_ids)
    datasets = set(Audit.objects.filter(pk__in=audit_ids).values_list("dataset__name", flat=True))
    qualify = len(datasets) > 1  # keys are unique per dataset only
    pair_ids = (
        AuditItem.objects.sampled()
        .filter(audit_id__in=audit_ids)
        .order_by("pair_id")
        .values_list("pair_id", flat=True)
        .distinct()
        .iterator(chunk_size=chunk_size)
    )
    response_tables = ResponseClassification.objects.exists() or ResponseFeatures.objects.exists()
    for chunk in _chunks(pair_ids, chunk_size):
        yield from _rows_for(chunk, audit_ids, stats, secret, qualify, response_tables, plan)


def _rows_for(
    pair_ids: list[int],
    audit_ids: list[int],
    stats: ExportStats,
    secret: str,
    qualify: bool,
    response_tables: bool,
    plan: FlatPlan | None = None,
) -> Iterator[dict[str, Any]]:
    # Ids are filtered by range (an index scan, no long IN list), then trimmed to the chunk.
    wanted = set(pair_ids)
    lo, hi = pair_ids[0], pair_ids[-1]
    pairs = [
        pair
        for pair in _fetch(
            Pair.objects.filter(pk__gte=lo, pk__lte=hi)
            .order_by("pk")
            .annotate(meta_text=Cast("meta", TextField()))
            .values(
                "pk",
                "source_key",
                "dataset__name",
                "turn",
                "category",
                "meta_text",
                "prompt__text",
                "prompt__category",
                "response_a_id",
                "response_b_id",
                "response_a__text",
                "response_b__text",
                "response_a__model_name",
                "response_b__model_name",
                "response_a__has_text",
                "response_b__has_text",
            )
        )
        if pair["pk"] in wanted
    ]
    items: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in _fetch(
        AuditItem.objects.sampled()
        .filter(pair_id__gte=lo, pair_id__lte=hi, audit_id__in=audit_ids)
        .order_by("audit_id")
        .values("pk", "pair_id", "audit_id", "stratum", "inclusion_probability")
    ):
        items[item["pair_id"]].append(item)
    item_ids = [item["pk"] for group in items.values() for item in group]

    labels: dict[int, list[dict[str, Any]]] = defaultdict(list)
    label_rows = Label.objects.counted().filter(item_id__in=item_ids).order_by("created_at", "pk")
    if plan is not None:  # the flat layout reads only the answer
        label_values = label_rows.values("item_id", "annotator_id", "outcome")
    else:
        label_values = label_rows.annotate(criteria_text=Cast("criteria", TextField())).values(
            "item_id",
            "annotator_id",
            "outcome",
            "strength",
            "chose_left",
            "criteria_text",
            "time_spent_ms",
            "created_at",
            "assignment__a_on_left",
        )
    for label in _fetch(label_values):
        labels[label["item_id"]].append(label)
    imported: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for imported_vote in _fetch(
        HumanVote.objects.filter(pair_id__gte=lo, pair_id__lte=hi)
        .order_by("pk")
        .values("pair_id", "voter_id", "outcome", "strength", "source")
    ):
        imported[imported_vote["pair_id"]].append(imported_vote)
    chunk = _Chunk(
        pairs=pairs,
        items=items,
        labels=labels,
        adjudications={
            row["item_id"]: row
            for row in _fetch(
                Adjudication.objects.filter(item_id__in=item_ids).values(
                    "item_id", "outcome", "reference_judge__fingerprint"
                )
            )
        },
        imported=imported,
        verdicts=Verdict.objects.filter(pair_id__gte=lo, pair_id__lte=hi).order_by(
            "judge__name", "judge__version"
        ),
        stats=stats,
        voters=Pseudonyms(secret),
        qualify=qualify,
        response_tables=response_tables,
    )
    return _flat_rows(chunk, plan) if plan is not None else _generic_rows(chunk)


def _pair_columns(pair: dict[str, Any], qualify: bool, *, keys: bool) -> dict[str, Any]:
    """A row's pair columns in both layouts: its id (qualified by dataset when the audits'
    datasets differ), with ``keys`` its dataset and source key, the texts (None where a
    response has no text), models, category and turn."""
    has_text = bool(pair["response_a__has_text"] and pair["response_b__has_text"])
    source_key = pair["source_key"]
    columns: dict[str, Any] = {
        "pair_id": f"{pair['dataset__name']}:{source_key}" if qualify else source_key
    }
    if keys:
        columns["dataset"] = pair["dataset__name"]
        columns["source_key"] = source_key
    columns["prompt"] = pair["prompt__text"] if has_text else None
    columns["response_a"] = pair["response_a__text"] if has_text else None
    columns["response_b"] = pair["response_b__text"] if has_text else None
    columns["has_text"] = has_text
    columns["model_a"] = pair["response_a__model_name"]
    columns["model_b"] = pair["response_b__model_name"]
    columns["category"] = pair["category"] or pair["prompt__category"]
    columns["turn"] = pair["turn"]
    return columns


def _flat_rows(chunk: _Chunk, plan: FlatPlan) -> Iterator[dict[str, Any]]:
    """Flat rows straight from the chunk's reads (no nested row on the way: this is the
    default export and the one timed in bench/export_bench.py)."""
    pairs, items, labels, stats = chunk.pairs, chunk.items, chunk.labels, chunk.stats
    verdicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for verdict in _fetch(
        chunk.verdicts.values(
            *_VERDICT_JUDGE,
            "outcome",
            "outcome_ab",
            "outcome_ba",
            "margin",
            "consistent",
        )
    ):
        verdicts[verdict["pair_id"]].append(verdict)
    people = plan.people
    classes: dict[int, str] = {}
    if chunk.response_tables and plan.classifier:
        classes = {
            row["response_id"]: row["label"]
            for row in _fetch(
                ResponseClassification.objects.filter(
                    response_id__in=chunk.response_ids, classifier=plan.classifier
                ).values("response_id", "label")
            )
        }
    judge_columns = {
        fingerprint: tuple(f"{prefix}_{suffix}" for suffix, _, _ in JUDGE_PARTS)
        for fingerprint, prefix in plan.judges.items()
    }
    empty = dict.fromkeys(plan.annotators.values())
    for names in judge_columns.values():
        empty.update(dict.fromkeys(names))
    adjudications, voters = chunk.adjudications, chunk.voters
    for pair in pairs:
        pk = pair["pk"]
        row: dict[str, Any] = {
            **_pair_columns(pair, chunk.qualify, keys=True),
            "audit_id": None,
            "stratum": None,
            "inclusion_probability": None,
            "weight": None,
            "final_label": None,
            "adjudicated": False,
            "consensus": None,
            "label_count": 0,
            **empty,
        }
        for index, item in enumerate(items[pk]):
            item_labels = labels[item["pk"]]
            adjudication = adjudications.get(item["pk"])
            stats.item_of(item, adjudication is not None, len(item_labels))
            if index:  # a pair in several audits: the first audit's design and labels
                continue
            agreed = consensus([label["outcome"] for label in item_labels])
            probability = item["inclusion_probability"]
            row["audit_id"] = item["audit_id"]
            row["stratum"] = item["stratum"]
            row["inclusion_probability"] = probability
            row["weight"] = 1.0 / probability
            row["final_label"] = adjudication["outcome"] if adjudication else agreed
            row["adjudicated"] = adjudication is not None
            row["consensus"] = agreed
            row["label_count"] = len(item_labels)
            for label in item_labels:
                row[plan.annotators[voters[label["annotator_id"]]]] = label["outcome"]
        stats.imported_votes += len(chunk.imported.get(pk, ()))
        for verdict in verdicts.get(pk, ()):
            fingerprint = stats.verdict_of(verdict)
            stats.verdicts += 1
            ab, ba, combined, margin, consistent = judge_columns[fingerprint]
            row[ab] = verdict["outcome_ab"] or None
            row[ba] = verdict["outcome_ba"] or None
            row[combined] = verdict["outcome"] or None
            row[margin] = None if verdict["margin"] is None else float(verdict["margin"])
            row[consistent] = _flag(verdict["consistent"])
        row["class_a"] = classes.get(pair["response_a_id"])
        row["class_b"] = classes.get(pair["response_b_id"])
        row["people_class_a"] = people.get(pair["response_a_id"])
        row["people_class_b"] = people.get(pair["response_b_id"])
        stats.pairs += 1
        yield row


def _generic_rows(chunk: _Chunk) -> Iterator[dict[str, Any]]:
    pairs, items, labels, stats = chunk.pairs, chunk.items, chunk.labels, chunk.stats
    adjudications, imported, voters = chunk.adjudications, chunk.imported, chunk.voters
    verdicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for verdict in _fetch(
        chunk.verdicts.annotate(
            criteria_ab_text=Cast("criteria_ab", TextField()),
            criteria_ba_text=Cast("criteria_ba", TextField()),
        ).values(
            *_VERDICT_JUDGE,
            *schema.VERDICT_PLAIN_KEYS,
            "consistent",
            "criteria_ab_text",
            "criteria_ba_text",
        )
    ):
        verdicts[verdict["pair_id"]].append(verdict)
    # nothing classified or measured on this site: skip the look-ups
    response_ids = chunk.response_ids if chunk.response_tables else []
    classes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    features: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in _fetch(
        ResponseClassification.objects.filter(response_id__in=response_ids)
        .order_by("classifier")
        .values("response_id", "classifier", "label", "score")
    ):
        classes[row.pop("response_id")].append(row)
    for row in _fetch(
        ResponseFeatures.objects.filter(response_id__in=response_ids)
        .order_by("extractor")
        .values("response_id", "extractor", *FEATURES)
    ):
        features[row.pop("response_id")].append(row)

    for pair in pairs:
        pk = pair["pk"]
        votes: list[dict[str, Any]] = []
        audits_meta: list[dict[str, Any]] = []
        labels_meta: list[dict[str, Any]] = []
        for item in items[pk]:
            item_labels = labels[item["pk"]]
            outcomes = [label["outcome"] for label in item_labels]
            adjudication = adjudications.get(item["pk"])
            probability = item["inclusion_probability"]
            agreed = consensus(outcomes)
            audits_meta.append(
                {
                    "audit_id": item["audit_id"],
                    "stratum": item["stratum"],
                    "inclusion_probability": probability,
                    "weight": 1.0 / probability,
                    "consensus": agreed,
                    "adjudicated": adjudication["outcome"] if adjudication else None,
                    "label": adjudication["outcome"] if adjudication else agreed,
                    "labels": len(item_labels),
                }
            )
            stats.item_of(item, adjudication is not None, len(item_labels))
            for label in item_labels:
                voter = voters[label["annotator_id"]]
                vote: dict[str, Any] = {
                    "voter_id": voter,
                    "outcome": label["outcome"],
                    "source": HumanVote.Source.CALIBRATION.value,
                }
                if label["strength"] is not None:
                    vote["strength"] = label["strength"]
                votes.append(vote)
                a_on_left = bool(label["assignment__a_on_left"])
                labels_meta.append(
                    {
                        "audit_id": item["audit_id"],
                        "voter_id": voter,
                        "outcome": label["outcome"],
                        "strength": label["strength"],
                        "side_order": "A left" if a_on_left else "B left",
                        "a_on_left": a_on_left,
                        "chose_left": _flag(label["chose_left"]),
                        "time_spent_ms": label["time_spent_ms"],
                        "criteria": _json(label["criteria_text"]),
                        "labelled_at": _when(label["created_at"]),
                    }
                )
        for vote_row in imported.get(pk, ()):
            vote = {
                "voter_id": vote_row["voter_id"],
                "outcome": vote_row["outcome"],
                "source": vote_row["source"],
            }
            if vote_row["strength"] is not None:
                vote["strength"] = vote_row["strength"]
            votes.append(vote)
        stats.imported_votes += len(imported[pk])

        verdict_rows: list[dict[str, Any]] = []
        for verdict in verdicts[pk]:
            fingerprint = stats.verdict_of(verdict)
            verdict_row: dict[str, Any] = {
                "judge": verdict["judge__name"],
                "model_id": verdict["judge__model_id"],
                "fingerprint": fingerprint,
            }
            for key in schema.VERDICT_PLAIN_KEYS:
                value = verdict[key]
                if value is not None and value != "":
                    verdict_row[key] = value
            for key in schema.VERDICT_CRITERIA_KEYS:
                criteria = _json(verdict[key + "_text"])
                if criteria:
                    verdict_row[key] = criteria
            if verdict["consistent"] is not None:
                verdict_row["consistent"] = bool(verdict["consistent"])
            verdict_rows.append(verdict_row)
        stats.verdicts += len(verdict_rows)

        first = audits_meta[0] if audits_meta else {}
        meta = {
            **(_json(pair["meta_text"]) or {}),
            "tribunal_export": {
                "dataset": pair["dataset__name"],
                "source_key": pair["source_key"],
                "stratum": first.get("stratum"),
                "inclusion_probability": first.get("inclusion_probability"),
                "weight": first.get("weight"),
                "label": first.get("label"),
                "audits": audits_meta,
                "labels": labels_meta,
                "response_a": {
                    "classes": classes.get(pair["response_a_id"], []),
                    "features": features.get(pair["response_a_id"], []),
                },
                "response_b": {
                    "classes": classes.get(pair["response_b_id"], []),
                    "features": features.get(pair["response_b_id"], []),
                },
            },
        }
        stats.pairs += 1
        row = {
            **_pair_columns(pair, chunk.qualify, keys=False),
            "meta": meta,
            "votes": votes,
            "verdicts": verdict_rows,
        }
        yield row


def flat_plan(audit_ids: Sequence[int], *, secret: str | None = None) -> FlatPlan:
    """The flat layout's columns for these audits: their annotators, judges and classifier."""
    secret = settings.SECRET_KEY if secret is None else secret
    annotators = (
        Label.objects.filter(item__audit_id__in=audit_ids)
        .values_list("annotator_id", flat=True)
        .distinct()
    )
    judges = (
        Verdict.objects.filter(pair__audit_items__audit_id__in=audit_ids)
        .values_list("judge__fingerprint", "judge__name", "judge__version")
        .distinct()
    )
    datasets = Audit.objects.filter(pk__in=audit_ids).values("dataset_id")
    classifier = (
        ResponseClassification.objects.filter(response__prompt__dataset_id__in=datasets)
        .order_by("-created_at", "-pk")
        .values_list("classifier", flat=True)
        .first()
    )
    plan = FlatPlan.build(
        pseudonyms=[pseudonym(pk, secret=secret) for pk in set(annotators)],
        judges=list(set(judges)),
        classifier=classifier,
    )
    # People's classes of the responses, once per export (a later audit's decision wins).
    for audit in Audit.objects.filter(pk__in=audit_ids).order_by("created_at", "pk"):
        plan.people.update(people_classes(audit=audit)[0])
    return plan


# Writers: each takes the rows and a binary stream, and writes as the rows come -------------


@dataclass(frozen=True)
class Table:
    """A layout's columns, their Arrow types, and which hold JSON text in CSV and Parquet."""

    columns: tuple[str, ...]
    types: dict[str, str]
    structured: frozenset[str] = frozenset()


GENERIC = Table(schema.COLUMNS, dict(schema.COLUMN_TYPES), frozenset(schema.STRUCTURED))


def table_for(plan: FlatPlan | None) -> Table:
    if plan is None:
        return GENERIC
    return Table(plan.columns(), dict(plan.schema()))


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    pending: list[bytes] = []
    for row in rows:
        pending.append(_dumps_bytes(row))
        if len(pending) >= 256:
            out.write(b"\n".join(pending) + b"\n")
            pending.clear()
    if pending:
        out.write(b"\n".join(pending) + b"\n")


def write_csv(rows: Iterable[dict[str, Any]], out: IO[bytes], *, table: Table = GENERIC) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(table.columns)
        for row in rows:
            writer.writerow(_cells(row, table, csv_text=True))
    finally:
        text.detach()  # leave `out` open for the caller


def _cells(row: dict[str, Any], table: Table, *, csv_text: bool) -> list[Any]:
    cells: list[Any] = []
    for name in table.columns:
        value = row[name]
        if name in table.structured:
            value = _dumps(value)
        elif csv_text and isinstance(value, bool):
            value = "true" if value else "false"
        elif csv_text and value is None:
            value = ""
        cells.append(value)
    return cells


def _parquet_schema(table: Table = GENERIC) -> Any:
    import pyarrow as pa

    kinds = {
        "string": pa.string(),
        "bool": pa.bool_(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
    }
    return pa.schema([(name, kinds[table.types.get(name, "string")]) for name in table.columns])


class _Columns:
    """Rows gathered column by column into Arrow tables of one row group each."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.schema = _parquet_schema(table)
        self.values: dict[str, list[Any]] = {name: [] for name in table.columns}
        self.size = 0

    def add(self, row: dict[str, Any]) -> None:
        if self.table.structured:
            cells = _cells(row, self.table, csv_text=False)
            for values, value in zip(self.values.values(), cells, strict=True):
                values.append(value)
        else:
            for name, values in self.values.items():
                values.append(row[name])
        self.size += 1

    def take(self) -> Any:
        import pyarrow as pa

        arrow = pa.table(self.values, schema=self.schema)
        for values in self.values.values():
            values.clear()
        self.size = 0
        return arrow


def write_parquet(
    rows: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    row_group: int = CHUNK_PAIRS,
    table: Table = GENERIC,
) -> None:
    for _ in parquet_row_groups(rows, out, row_group=row_group, table=table):
        pass


def parquet_row_groups(
    rows: Iterable[dict[str, Any]],
    out: IO[bytes],
    *,
    row_group: int = CHUNK_PAIRS,
    table: Table = GENERIC,
) -> Iterator[None]:
    """Write ``rows`` to ``out`` as Parquet, one row group per ``row_group`` rows; yields after
    each full row group is written (a stream sends what ``out`` holds), and returns when the
    file is closed."""
    import pyarrow.parquet as pq

    columns = _Columns(table)
    writer = pq.ParquetWriter(out, columns.schema, compression="zstd")
    try:
        for row in rows:
            columns.add(row)
            if columns.size >= row_group:
                writer.write_table(columns.take())
                yield
        if columns.size:
            writer.write_table(columns.take())
    finally:
        writer.close()


class _Hashing(io.RawIOBase):
    """A binary sink that hashes and counts what passes through to `target`."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)


def manifest(
    audits: Sequence[Audit],
    fmt: str,
    stats: ExportStats,
    *,
    sha256: str,
    size: int,
    name: str,
    plan: FlatPlan | None = None,
) -> dict[str, Any]:
    result = {
        "kind": "tribunal-calibration-set",
        "tribunal_version": tribunal_version(),
        "created_at": timezone.now().isoformat(),
        "format": fmt,
        "schema": "generic" if plan is None else "flat",
        "file": name,
        "sha256": sha256,
        "bytes": size,
        "audits": [
            {"id": a.pk, "name": a.name, "dataset": a.dataset.name, "status": a.status}
            for a in audits
        ],
        "counts": {
            "pairs": stats.pairs,
            "labels": stats.labels,
            "imported_votes": stats.imported_votes,
            "verdicts": stats.verdicts,
            "adjudicated": stats.adjudicated,
            "strata": dict(sorted(stats.strata.items())),
        },
        "judges": [{"fingerprint": fp, **info} for fp, info in sorted(stats.judges.items())],
        "tie_policy": TIE_POLICY,
        "annotator_ids": "pseudonymous: sha256 of the site's secret key and the user id",
    }
    result["drift"] = manifest_drift(audits)
    if plan is not None:
        result["columns"] = plan.describe()
        result["generic"] = "the nested layout that imports back: ask for layout=generic"
    return result


def manifest_drift(audits: Sequence[Audit], *, n_boot: int = 1000) -> list[dict[str, Any]]:
    """For each audit, each judge version against the previous version of the same name
    among the audit's judges (v1 -> v2, v2 -> v3): the flip rate with its interval and the
    paired change in Cohen's kappa with the people's labels, as the comparison page and
    ``judge_compare`` compute them (:func:`analysis.compare.judges_compare`)."""
    out: list[dict[str, Any]] = []
    for audit in audits:
        by_name: dict[str, list[Any]] = defaultdict(list)
        for judge in selectors.audit_judges(audit):
            by_name[judge.name].append(judge)
        for versions in by_name.values():
            versions.sort(key=lambda j: (j.version, j.pk))
            for first, second in pairwise(versions):
                data = compare.judges_compare(
                    first=first, second=second, audit=audit, n_boot=n_boot
                )
                figures = data.figures
                flip = figures.flip_rate
                kappa = figures.agreement.kinds.get("cohen_kappa") if figures.agreement else None
                delta = kappa.delta if kappa else None
                out.append(
                    {
                        "audit": audit.pk,
                        "judge": first.name,
                        "baseline": {"version": first.version, "fingerprint": first.fingerprint},
                        "candidate": {
                            "version": second.version,
                            "fingerprint": second.fingerprint,
                        },
                        "pairs_compared": data.pairs_compared,
                        "pairs_labelled": data.pairs_labelled,
                        "flip_rate": _value_and_ci(flip),
                        "delta_cohen_kappa": _value_and_ci(delta) if delta else None,
                        "level": figures.settings.level,
                    }
                )
    return out


def _value_and_ci(result: Result) -> dict[str, Any]:
    ci = result.ci
    return {"value": result.value, "ci": list(ci) if ci is not None else None}


def _check(fmt: str, layout: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if layout not in LAYOUTS:
        raise ExportError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def export_to_stream(
    *,
    audit_ids: Sequence[int],
    fmt: str,
    out: IO[bytes],
    name: str = "",
    chunk_size: int = CHUNK_PAIRS,
    layout: str = "flat",
) -> dict[str, Any]:
    """Write the calibration set to `out` and return its manifest."""
    _check(fmt, layout)
    audits = audits_get(list(audit_ids))
    ids = [a.pk for a in audits]
    plan = flat_plan(ids) if layout == "flat" else None
    table = table_for(plan)
    stats = ExportStats()
    sink: Any = _Hashing(out)  # a binary file for the writers
    rows = export_rows(ids, stats=stats, chunk_size=chunk_size, plan=plan)
    if fmt == "parquet":
        write_parquet(rows, sink, row_group=chunk_size, table=table)
    elif fmt == "csv":
        write_csv(rows, sink, table=table)
    else:
        write_jsonl(rows, sink)
    return manifest(
        audits,
        fmt,
        stats,
        sha256=sink.sha256.hexdigest(),
        size=sink.size,
        name=name or f"calibration.{fmt}",
        plan=plan,
    )


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def export_to_file(
    *,
    audit_ids: Sequence[int],
    fmt: str,
    path: Path | str,
    chunk_size: int = CHUNK_PAIRS,
    layout: str = "flat",
) -> dict[str, Any]:
    """Write the calibration set to `path` and its manifest to `<path>.manifest.json`."""
    path = Path(path)
    with open(path, "wb") as handle:
        result = export_to_stream(
            audit_ids=audit_ids,
            fmt=fmt,
            out=handle,
            name=path.name,
            chunk_size=chunk_size,
            layout=layout,
        )
    manifest_path(path).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


class StreamBuffer(io.RawIOBase):
    """A sink whose written bytes a generator takes out piece by piece (for streaming)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def export_chunks(
    *, audit_ids: Sequence[int], fmt: str, chunk_size: int = CHUNK_PAIRS, layout: str = "flat"
) -> Iterator[bytes]:
    """The calibration set as a stream of byte chunks (for a streaming HTTP response).

    Validates first (raises ExportError before any byte), then yields as rows are written.
    """
    _check(fmt, layout)
    audits = audits_get(list(audit_ids))
    return _stream(audits, fmt, chunk_size, layout)


def _stream(audits: list[Audit], fmt: str, chunk_size: int, layout: str) -> Iterator[bytes]:
    buffer = StreamBuffer()
    ids = [a.pk for a in audits]
    plan = flat_plan(ids) if layout == "flat" else None
    table = table_for(plan)
    rows = export_rows(ids, chunk_size=chunk_size, plan=plan)

    if fmt == "parquet":
        sink = cast(IO[bytes], buffer)
        for _ in parquet_row_groups(rows, sink, row_group=chunk_size, table=table):
            yield buffer.take()
        yield buffer.take()
        return
    if fmt == "csv":
        text = io.StringIO()
        writer_csv = csv.writer(text)
        writer_csv.writerow(table.columns)
        for row in rows:
            writer_csv.writerow(_cells(row, table, csv_text=True))
            if text.tell() > 1 << 16:
                yield text.getvalue().encode()
                text.seek(0)
                text.truncate()
        yield text.getvalue().encode()
        return
    pending: list[bytes] = []
    size = 0
    for row in rows:
        line = _dumps_bytes(row) + b"\n"
        pending.append(line)
        size += len(line)
        if size > 1 << 16:
            yield b"".join(pending)
            pending, size = [], 0
    yield b"".join(pending)
