"""Calibration-set export: one row per audited pair, in Tribunal's `generic` import schema.

Only what the figures count: the sampled items (`AuditItem.objects.sampled()`, no gold items)
and the labels that count (`Label.objects.counted()`, nobody a lead set aside).

A row holds the pair's texts, every human label (under a pseudonymous annotator id) and
imported human vote, every judge verdict in both orders with the judge's fingerprint, and in
`meta` the stratum, inclusion probability and weight, the side order each annotator saw and
the time they spent, the adjudicated or consensus label, and the responses' refusal classes
and text features. Because it is the `generic` schema, an exported file imports back into
Tribunal as a dataset with human votes and verdicts (`import_pairs --format generic`).

Memory stays bounded at any size: pairs are read in chunks of ids, each chunk's labels,
votes and verdicts with one query per table, and rows are written as they are built (JSON
lines and CSV line by line, Parquet one row group per chunk). The manifest beside the data
file records the counts, the judges' fingerprints, the tie policy, the file's sha256 and the
Tribunal version.
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
from pathlib import Path
from typing import IO, Any, Literal

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from annotation.models import Adjudication, Audit, AuditItem, Label
from corpus.models import HumanVote, Outcome, Pair
from judges.models import ResponseClassification, ResponseFeatures, Verdict

ExportFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet")
CONTENT_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS: tuple[str, ...] = (
    "pair_id",
    "prompt",
    "response_a",
    "response_b",
    "has_text",
    "model_a",
    "model_b",
    "category",
    "turn",
    "meta",
    "votes",
    "verdicts",
)
STRUCTURED = ("meta", "votes", "verdicts")  # JSON text in CSV and Parquet cells
CHUNK_PAIRS = 2000
VERDICT_PLAIN = (  # verdict fields copied as they are (when set)
    "outcome_ab",
    "outcome_ba",
    "status_ab",
    "status_ba",
    "margin",
    "margin_ab",
    "margin_ba",
    "strength",
    "raw_ab",
    "raw_ba",
    "outcome",
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
) -> Iterator[dict[str, Any]]:
    """One dict per pair in the audits (a pair in several audits is one row), ordered by id."""
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
        yield from _rows_for(chunk, audit_ids, stats, secret, qualify, response_tables)


def _rows_for(
    pair_ids: list[int],
    audit_ids: list[int],
    stats: ExportStats,
    secret: str,
    qualify: bool,
    response_tables: bool,
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
    for label in _fetch(
        Label.objects.counted()
        .filter(item_id__in=item_ids)
        .order_by("created_at", "pk")
        .annotate(criteria_text=Cast("criteria", TextField()))
        .values(
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
    ):
        labels[label["item_id"]].append(label)
    adjudications = {
        row["item_id"]: row
        for row in _fetch(
            Adjudication.objects.filter(item_id__in=item_ids).values(
                "item_id", "outcome", "reference_judge__fingerprint"
            )
        )
    }
    imported: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for imported_vote in _fetch(
        HumanVote.objects.filter(pair_id__gte=lo, pair_id__lte=hi)
        .order_by("pk")
        .values("pair_id", "voter_id", "outcome", "strength", "source")
    ):
        imported[imported_vote["pair_id"]].append(imported_vote)
    verdicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for verdict in _fetch(
        Verdict.objects.filter(pair_id__gte=lo, pair_id__lte=hi)
        .order_by("judge__name", "judge__version")
        .annotate(
            criteria_ab_text=Cast("criteria_ab", TextField()),
            criteria_ba_text=Cast("criteria_ba", TextField()),
        )
        .values(
            "pair_id",
            "judge__name",
            "judge__version",
            "judge__model_id",
            "judge__fingerprint",
            "judge__tie_policy",
            "judge__provider",
            "outcome",
            "consistent",
            "strength",
            "margin",
            "margin_ab",
            "margin_ba",
            "outcome_ab",
            "outcome_ba",
            "status_ab",
            "status_ba",
            "raw_ab",
            "raw_ba",
            "criteria_ab_text",
            "criteria_ba_text",
        )
    ):
        verdicts[verdict["pair_id"]].append(verdict)
    response_ids = [p["response_a_id"] for p in pairs] + [p["response_b_id"] for p in pairs]
    classes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    features: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not response_tables:
        response_ids = []  # nothing classified or measured on this site: skip the look-ups
    for row in _fetch(
        ResponseClassification.objects.filter(response_id__in=response_ids)
        .order_by("classifier")
        .values("response_id", "classifier", "label", "score")
    ):
        classes[row.pop("response_id")].append(row)
    for row in _fetch(
        ResponseFeatures.objects.filter(response_id__in=response_ids)
        .order_by("extractor")
        .values(
            "response_id",
            "extractor",
            "length_chars",
            "length_tokens",
            "headers",
            "list_items",
            "bold",
            "prompt_similarity",
        )
    ):
        features[row.pop("response_id")].append(row)

    voters: dict[int, str] = {}
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
            stats.strata[item["stratum"]] += 1
            stats.adjudicated += adjudication is not None
            for label in item_labels:
                voter = voters.get(label["annotator_id"])
                if voter is None:
                    voter = voters[label["annotator_id"]] = pseudonym(
                        label["annotator_id"], secret=secret
                    )
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
            stats.labels += len(item_labels)
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
            fingerprint = verdict["judge__fingerprint"]
            stats.judges.setdefault(
                fingerprint,
                {
                    "name": verdict["judge__name"],
                    "version": verdict["judge__version"],
                    "model_id": verdict["judge__model_id"],
                    "provider": verdict["judge__provider"],
                    "tie_policy": verdict["judge__tie_policy"],
                    "verdicts": 0,
                },
            )["verdicts"] += 1
            verdict_row: dict[str, Any] = {
                "judge": verdict["judge__name"],
                "model_id": verdict["judge__model_id"],
                "fingerprint": fingerprint,
            }
            for key in VERDICT_PLAIN:
                value = verdict[key]
                if value is not None and value != "":
                    verdict_row[key] = value
            for key in ("criteria_ab", "criteria_ba"):
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
        has_text = bool(pair["response_a__has_text"] and pair["response_b__has_text"])
        stats.pairs += 1
        yield {
            "pair_id": (
                f"{pair['dataset__name']}:{pair['source_key']}" if qualify else pair["source_key"]
            ),
            "prompt": pair["prompt__text"] if has_text else None,
            "response_a": pair["response_a__text"] if has_text else None,
            "response_b": pair["response_b__text"] if has_text else None,
            "has_text": has_text,
            "model_a": pair["response_a__model_name"],
            "model_b": pair["response_b__model_name"],
            "category": pair["category"] or pair["prompt__category"],
            "turn": pair["turn"],
            "meta": meta,
            "votes": votes,
            "verdicts": verdict_rows,
        }


# Writers: each takes the rows and a binary stream, and writes as the rows come -------------


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    pending: list[bytes] = []
    for row in rows:
        pending.append(_dumps_bytes(row))
        if len(pending) >= 256:
            out.write(b"\n".join(pending) + b"\n")
            pending.clear()
    if pending:
        out.write(b"\n".join(pending) + b"\n")


def write_csv(rows: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(_cells(row, csv_text=True))
    finally:
        text.detach()  # leave `out` open for the caller


def _cells(row: dict[str, Any], *, csv_text: bool) -> list[Any]:
    cells: list[Any] = []
    for name in COLUMNS:
        value = row[name]
        if name in STRUCTURED:
            value = _dumps(value)
        elif csv_text and name == "has_text":
            value = "true" if value else "false"
        elif csv_text and value is None:
            value = ""
        cells.append(value)
    return cells


def _parquet_schema() -> Any:
    import pyarrow as pa

    types = {"has_text": pa.bool_(), "turn": pa.int32()}
    return pa.schema([(name, types.get(name, pa.string())) for name in COLUMNS])


def write_parquet(
    rows: Iterable[dict[str, Any]], out: IO[bytes], *, row_group: int = CHUNK_PAIRS
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    writer = pq.ParquetWriter(out, schema, compression="zstd")

    def flush() -> None:
        writer.write_table(pa.table(columns, schema=schema))
        for values in columns.values():
            values.clear()

    try:
        for row in rows:
            for name, value in zip(COLUMNS, _cells(row, csv_text=False), strict=True):
                columns[name].append(value)
            if len(columns["pair_id"]) >= row_group:
                flush()
        if columns["pair_id"]:
            flush()
    finally:
        writer.close()


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}


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
    audits: Sequence[Audit], fmt: str, stats: ExportStats, *, sha256: str, size: int, name: str
) -> dict[str, Any]:
    return {
        "kind": "tribunal-calibration-set",
        "tribunal_version": tribunal_version(),
        "created_at": timezone.now().isoformat(),
        "format": fmt,
        "schema": "generic",
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


def export_to_stream(
    *,
    audit_ids: Sequence[int],
    fmt: str,
    out: IO[bytes],
    name: str = "",
    chunk_size: int = CHUNK_PAIRS,
) -> dict[str, Any]:
    """Write the calibration set to `out` and return its manifest."""
    if fmt not in WRITERS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    audits = audits_get(list(audit_ids))
    stats = ExportStats()
    sink: Any = _Hashing(out)  # a binary file for the writers
    rows = export_rows([a.pk for a in audits], stats=stats, chunk_size=chunk_size)
    if fmt == "parquet":
        write_parquet(rows, sink, row_group=chunk_size)
    elif fmt == "csv":
        write_csv(rows, sink)
    else:
        write_jsonl(rows, sink)
    return manifest(
        audits,
        fmt,
        stats,
        sha256=sink.sha256.hexdigest(),
        size=sink.size,
        name=name or f"calibration.{fmt}",
    )


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def export_to_file(
    *, audit_ids: Sequence[int], fmt: str, path: Path | str, chunk_size: int = CHUNK_PAIRS
) -> dict[str, Any]:
    """Write the calibration set to `path` and its manifest to `<path>.manifest.json`."""
    path = Path(path)
    with open(path, "wb") as handle:
        result = export_to_stream(
            audit_ids=audit_ids, fmt=fmt, out=handle, name=path.name, chunk_size=chunk_size
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
    *, audit_ids: Sequence[int], fmt: str, chunk_size: int = CHUNK_PAIRS
) -> Iterator[bytes]:
    """The calibration set as a stream of byte chunks (for a streaming HTTP response).

    Validates first (raises ExportError before any byte), then yields as rows are written.
    """
    if fmt not in WRITERS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    audits = audits_get(list(audit_ids))
    return _stream(audits, fmt, chunk_size)


def _stream(audits: list[Audit], fmt: str, chunk_size: int) -> Iterator[bytes]:
    buffer = StreamBuffer()
    rows = export_rows([a.pk for a in audits], chunk_size=chunk_size)

    if fmt == "parquet":
        # ParquetWriter needs to be driven by rows; run it through a generator of row groups.
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _parquet_schema()
        writer = pq.ParquetWriter(buffer, schema, compression="zstd")
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        try:
            for row in rows:
                for name, value in zip(COLUMNS, _cells(row, csv_text=False), strict=True):
                    columns[name].append(value)
                if len(columns["pair_id"]) >= chunk_size:
                    writer.write_table(pa.table(columns, schema=schema))
                    for values in columns.values():
                        values.clear()
                    yield buffer.take()
            if columns["pair_id"]:
                writer.write_table(pa.table(columns, schema=schema))
        finally:
            writer.close()
        yield buffer.take()
        return
    if fmt == "csv":
        text = io.StringIO()
        writer_csv = csv.writer(text)
        writer_csv.writerow(COLUMNS)
        for row in rows:
            writer_csv.writerow(_cells(row, csv_text=True))
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
