"""Writing parsed rows into one dataset, fast.

Rows arrive in chunks. For each chunk the writer first decides everything (which pair keys
exist, which prompts, responses, votes and verdicts are new, which rows conflict with what is
stored) with a few bulk look-ups by key and content hash, and only then writes the new rows:
with COPY on PostgreSQL and executemany on SQLite, under ids taken from the tables' own
sequences. Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, models
from django.db.models.functions import Length

from corpus.importers.records import (
    PreparedPair,
    Row,
    RowError,
    canonical_json,
    clean_json,
)
from corpus.models import Dataset, HumanVote, Pair, Prompt, Response

# Look-ups by a list of values: SQLite allows 32,766 parameters per statement.
_LOOKUP_BATCH = 5000


@dataclass(slots=True)
class _Known:
    """What the writer knows of a pair that exists (or is being created) in the dataset."""

    id: int
    content_sha: str
    prompt_sha: str
    prompt_has_text: bool
    sha_a: str
    has_a: bool
    sha_b: str
    has_b: bool
    model_a: str
    model_b: str
    turn: int
    line: int  # 0 when it was imported before this file
    before: bool  # existed before this import (so it may already have votes and verdicts)


def lookup_batches(values: Sequence[Any], size: int = _LOOKUP_BATCH) -> Iterator[Sequence[Any]]:
    """`values` in slices small enough for one `IN (...)` look-up on every database."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


# The columns a writer fills, in the order of its rows (bench/browse_bench.py writes the same).
PROMPT_COLUMNS = ("id", "dataset", "text", "content_hash", "source_key", "category", "meta")
RESPONSE_COLUMNS = ("id", "prompt", "model_name", "text", "has_text", "content_hash")
PAIR_COLUMNS = (
    "id",
    "dataset",
    "source_key",
    "prompt",
    "response_a",
    "response_b",
    "turn",
    "category",
    "content_hash",
    "meta",
)
_VOTE = (
    "id",
    "pair",
    "source",
    "voter_id",
    "outcome",
    "strength",
    "row_hash",
    "import_job",
)


class RowPart(Protocol):
    """What a later stage reads from import rows besides pairs and votes: the judges app's
    verdicts (`judges.importing.VerdictPart`). One per writer, made by a registered factory.

    `decide` sees each chunk before anything of it is written and returns the rows' problems
    (then nothing of the chunk is written); `write` writes what the last `decide` found new,
    after the pairs, in the same transaction, through `writer.table`.
    """

    def decide(self, rows: list[Row]) -> list[RowError]: ...

    def write(self) -> None: ...


_ROW_PARTS: list[Callable[[PairWriter], RowPart]] = []


def row_part_register(factory: Callable[[PairWriter], RowPart]) -> None:
    """Let a later app read its records from import rows (called from its `AppConfig.ready`):
    the corpus comes first in the flow and import no other app, so the apps come to it."""
    if factory not in _ROW_PARTS:
        _ROW_PARTS.append(factory)


class TableWriter:
    """Inserts rows with explicit ids: COPY on PostgreSQL, executemany elsewhere.

    On PostgreSQL the COPYs run in a thread, in order, on the import's own connection (and so
    in its transaction), while the caller prepares the next rows; ids come from a second
    connection, since sequences are not transactional. Call `sync()` before querying through
    the import's connection and `close()` before leaving the transaction.

    Columns the importer does not set are filled with the model field's default (and `now`
    for auto_now fields), so a column added to a model later does not break imports.
    """

    def __init__(self, now: datetime) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.now = connection.ops.adapt_datetimefield_value(now)
        self._sequences: dict[str, str] = {}
        self._copies: _CopyThread | None = None
        self._ids: Any = None
        if self.postgres:
            connection.ensure_connection()
            self._copies = _CopyThread(connection.connection)
            try:
                self._ids = psycopg.connect(**connection.get_connection_params(), autocommit=True)
            except psycopg.Error:
                self._ids = None  # allocate through the import's connection instead

    def sync(self) -> None:
        """Wait for the queued COPYs (and raise what failed in them)."""
        if self._copies is not None:
            self._copies.sync()

    def close(self) -> None:
        if self._copies is not None:
            self._copies.close()
            self._copies = None
        if self._ids is not None:
            self._ids.close()
            self._ids = None

    def allocate(self, model: type[models.Model], count: int) -> list[int]:
        """`count` fresh ids for `model`'s table.

        PostgreSQL: from the table's own sequence, so concurrent writers never collide.
        SQLite: after the highest id ever used; safe because the caller's transaction holds
        SQLite's single write lock (BEGIN IMMEDIATE, see settings).
        """
        if count == 0:
            return []
        table = model._meta.db_table
        if self.postgres:
            if self._ids is None:
                self.sync()
            with self._ids.cursor() if self._ids is not None else connection.cursor() as cursor:
                sequence = self._sequences.get(table)
                if sequence is None:
                    # Resolved once: as an argument of nextval() it would be looked up per row.
                    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                    sequence = self._sequences[table] = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT array_agg(nextval(%s::regclass)) FROM generate_series(1, %s)",
                    [sequence, count],
                )
                return list(cursor.fetchone()[0])
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{table}"')
            highest = cursor.fetchone()[0]
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            found = cursor.fetchone()
            start = max(highest, found[0] if found else 0) + 1
            return list(range(start, start + count))

    def _defaults(
        self, model: type[models.Model], fields: Sequence[str]
    ) -> tuple[list[models.Field[Any, Any]], tuple[Any, ...]]:
        """The fields not given, and the values to store in them."""
        missing, values = [], []
        for f in model._meta.concrete_fields:
            if f.name in fields:
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value: Any = self.now
            elif f.has_default():
                value = f.get_default()
            elif f.null:
                value = None
            else:
                raise ImproperlyConfigured(
                    f"{model.__name__}.{f.name} has no default; the importer must set it"
                )
            missing.append(f)
            values.append(value)
        return missing, tuple(values)

    def insert(
        self, model: type[models.Model], fields: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Insert `rows` (values in the order of `fields`; JSON columns as Python values).

        Raw COPY rather than the ORM's `bulk_create`, because it is measured faster: the
        arena import of 10,000 pairs on PostgreSQL 15 (a shared, loaded 2-core machine, the
        two alternated twice) ran at 635 and 916 pairs/s using 0.8 CPU-s with COPY, at 499
        and 456 pairs/s using 2.6 and 3.1 CPU-s with `bulk_create(batch_size=1000)` in its
        place. (Most of the server's time is the full-text trigger; see
        bench/import_bench.py, whose floor loads the same file with SQL only.)
        """
        if not rows:
            return
        table = model._meta.db_table
        missing, extra = self._defaults(model, fields)
        all_fields = [model._meta.get_field(name) for name in fields] + missing
        names = ", ".join(f'"{f.column}"' for f in all_fields)  # type: ignore[union-attr]
        if self._copies is not None:
            types = [_copy_type(f) for f in all_fields]  # type: ignore[arg-type]
            # Binary COPY: no escaping of kilobytes of text on either side.
            sql = f'COPY "{table}" ({names}) FROM STDIN (FORMAT BINARY)'
            self._copies.submit(sql, types, rows, extra)
            return
        with connection.cursor() as cursor:
            json_at = [i for i, f in enumerate(all_fields) if isinstance(f, models.JSONField)]
            marks = ", ".join(["%s"] * len(all_fields))
            values = [list(row + extra) for row in rows]
            for value in values:
                for i in json_at:
                    value[i] = canonical_json(value[i])
            cursor.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)


class _CopyThread:
    """Runs COPYs one after another on a psycopg connection, from a queue."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.jobs: queue.Queue[Any] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="import-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                if self.error is None:
                    sql, types, rows, extra = job
                    with self.raw.cursor() as cursor, cursor.copy(sql) as copy:
                        copy.set_types(types)
                        for row in rows:
                            copy.write_row(row + extra if extra else row)
            except BaseException as exc:  # handed to the importing thread by sync()
                self.error = exc
            finally:
                self.jobs.task_done()
        self.jobs.task_done()

    def submit(
        self, sql: str, types: list[str], rows: Sequence[Any], extra: tuple[Any, ...]
    ) -> None:
        self._raise()
        self.jobs.put((sql, types, rows, extra))

    def sync(self) -> None:
        self.jobs.join()
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            if isinstance(error, psycopg.Error):
                raise DatabaseError(str(error)) from error
            raise error

    def close(self) -> None:
        if self.thread.is_alive():
            self.jobs.put(None)
            self.thread.join()
        self._raise()


_PG_TYPES = {
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "text": "text",
    "jsonb": "jsonb",
    "boolean": "bool",
    "double precision": "float8",
    "timestamp with time zone": "timestamptz",
    "uuid": "uuid",
}


def _copy_type(field: models.Field[Any, Any]) -> str:
    """The PostgreSQL type name psycopg needs to send a column in binary COPY."""
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    db_type = (field.db_type(connection) or "").split("(")[0].strip()
    if db_type.startswith("varchar"):
        return "text"
    try:
        return _PG_TYPES[db_type]
    except KeyError:
        raise ImproperlyConfigured(f"import writer: no COPY type for {field} ({db_type})") from None


class PairWriter:
    """Writes parsed, prepared rows (see `records.prepare_row`) of one file into `dataset`.

    Call inside `transaction.atomic()` while holding the dataset's row lock
    (`select_for_update`): the look-ups assume nobody else adds pairs to the dataset meanwhile.
    """

    def __init__(self, dataset: Dataset, *, file: str, job_id: int | None, now: datetime) -> None:
        self.dataset = dataset
        self.file = file
        self.job_id = job_id
        # A dataset without prompts holds nothing to look up: its first (and largest) import
        # skips every look-up.
        self.fresh = not Prompt.objects.filter(dataset=dataset).exists()
        self.table = TableWriter(now)
        self.pairs: dict[str, _Known] = {}
        self.prompts: dict[str, int] = {}
        self.new_prompts: set[int] = set()
        self.responses: dict[tuple[int, str, str], int] = {}
        self.votes_seen: set[str] = set()
        self.keys_matched: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.parts = [factory(self) for factory in _ROW_PARTS]

    def error(self, row: Row, field: str, problem: str) -> RowError:
        return RowError(self.file, row.line, field, problem)

    # Deciding -------------------------------------------------------------------------------

    def _load_pairs(self, keys: list[str]) -> None:
        fields = (
            "source_key",
            "id",
            "content_hash",
            "prompt__content_hash",
            "prompt_length",
            "response_a__content_hash",
            "response_a__has_text",
            "response_b__content_hash",
            "response_b__has_text",
            "response_a__model_name",
            "response_b__model_name",
            "turn",
        )
        for batch in lookup_batches(keys):
            found = (
                Pair.objects.filter(dataset=self.dataset, source_key__in=batch)
                .annotate(prompt_length=Length("prompt__text"))
                .values_list(*fields)
            )
            for key, pk, sha, p_sha, p_len, a_sha, a_has, b_sha, b_has, m_a, m_b, turn in found:
                self.pairs[key] = _Known(
                    pk, sha, p_sha, p_len > 0, a_sha, a_has, b_sha, b_has, m_a, m_b, turn, 0, True
                )

    @staticmethod
    def _conflict(known: _Known, row: Row, prepared: PreparedPair) -> str | None:
        """Why a row's pair cannot be the stored pair of the same key, or None if it can.

        A text missing on either side matches any text: MT-Bench verdicts without answers and
        the same pairs with answers are one pair.
        """
        pair = row.pair
        assert pair is not None
        if prepared.content_sha == known.content_sha:
            return None
        where = f"line {known.line}" if known.line else "imported before"
        if (pair.model_a, pair.model_b, pair.turn) != (known.model_a, known.model_b, known.turn):
            return f"pair {row.key!r} exists with other models or turn ({where})"
        for part, mine, has_mine, theirs, has_theirs in (
            (
                "prompt",
                prepared.prompt_sha,
                prepared.prompt_has_text,
                known.prompt_sha,
                known.prompt_has_text,
            ),
            ("response_a", prepared.sha_a, prepared.has_a, known.sha_a, known.has_a),
            ("response_b", prepared.sha_b, prepared.has_b, known.sha_b, known.has_b),
        ):
            if mine != theirs and has_mine and has_theirs:
                return f"pair {row.key!r} exists with a different {part} ({where})"
        return None

    def close(self) -> None:
        """Finish the queued writes (raising what failed); call before leaving the transaction."""
        self.table.close()

    def write(self, rows: list[Row]) -> list[RowError]:
        """Write one chunk; returns the rows' problems, and writes nothing if there are any."""
        errors: list[RowError] = []
        if not self.fresh:
            self.table.sync()  # the look-ups below must see every row written so far
            unknown = list({row.key for row in rows if row.key not in self.pairs})
            self._load_pairs(unknown)
            self.keys_matched.update(k for k in unknown if k in self.pairs)
        created: list[Row] = []
        for row in rows:
            known = self.pairs.get(row.key)
            prepared = row.prepared
            if known is not None:
                problem = self._conflict(known, row, prepared) if prepared else None
                if problem:
                    errors.append(self.error(row, row.key_field, problem))
            elif prepared is None:
                errors.append(
                    self.error(
                        row,
                        row.key_field,
                        f"no pair {row.key!r} in dataset {self.dataset.name!r}: import the "
                        "file with the pairs first (or name it in the same command)",
                    )
                )
            else:
                pair = row.pair
                assert pair is not None
                self.counts["texts_repaired"] += prepared.repaired
                self.pairs[row.key] = _Known(
                    0,
                    prepared.content_sha,
                    prepared.prompt_sha,
                    prepared.prompt_has_text,
                    prepared.sha_a,
                    prepared.has_a,
                    prepared.sha_b,
                    prepared.has_b,
                    pair.model_a,
                    pair.model_b,
                    pair.turn,
                    row.line,
                    False,
                )
                created.append(row)
        if errors:
            return errors
        new_votes = self._decide_votes(rows)
        errors = [error for part in self.parts for error in part.decide(rows)]
        if not self.parts:
            errors = [
                self.error(row, "judge", "this installation takes no judge verdicts")
                for row in rows
                if row.verdicts
            ]
        if errors:
            return errors
        self._create_pairs(created)
        self._create_votes(new_votes)
        for part in self.parts:
            part.write()
        return []

    def _decide_votes(self, rows: list[Row]) -> list[tuple[Row, int]]:
        """New votes as (row, index); duplicates (same content) are counted, not written."""
        stored: set[str] = set()
        if not self.fresh:
            # Pairs hold a handful of votes: fetching them by pair beats asking SQLite's
            # planner for (pair IN …) AND (hash IN …).
            pair_ids = list(
                {self.pairs[r.key].id for r in rows if r.votes and self.pairs[r.key].before}
            )
            for batch in lookup_batches(pair_ids):
                stored.update(
                    HumanVote.objects.filter(pair_id__in=batch).values_list("row_hash", flat=True)
                )
        new = []
        seen = self.votes_seen
        for row in rows:
            for i, digest in enumerate(row.vote_shas):
                if digest in seen or digest in stored:
                    self.counts["votes_duplicate"] += 1
                    continue
                seen.add(digest)
                new.append((row, i))
        return new

    # Writing --------------------------------------------------------------------------------

    def _create_prompts(self, created: list[Row]) -> None:
        prompts = self.prompts
        if not self.fresh:
            shas = {r.prepared.prompt_sha for r in created if r.prepared is not None}
            missing = [sha for sha in shas if sha not in prompts]
            for batch in lookup_batches(missing):
                prompts.update(
                    Prompt.objects.filter(dataset=self.dataset, content_hash__in=batch).values_list(
                        "content_hash", "id"
                    )
                )
        new = []
        for row in created:
            sha = row.prepared.prompt_sha  # type: ignore[union-attr]
            if sha not in prompts:
                prompts[sha] = 0
                new.append(row)
        ids = self.table.allocate(Prompt, len(new))
        values = []
        dataset_id = self.dataset.pk
        for pk, row in zip(ids, new, strict=True):
            prepared = row.prepared
            assert prepared is not None and row.pair is not None
            prompts[prepared.prompt_sha] = pk
            values.append(
                (
                    pk,
                    dataset_id,
                    prepared.prompt,
                    prepared.prompt_sha,
                    row.key,
                    row.pair.category,
                    "{}",
                )
            )
        self.new_prompts.update(ids)
        self.table.insert(Prompt, PROMPT_COLUMNS, values)
        self.counts["prompts_created"] += len(values)

    def _create_responses(self, created: list[Row]) -> None:
        responses = self.responses
        wanted: dict[tuple[int, str, str], tuple[str, bool]] = {}
        for row in created:
            prepared, pair = row.prepared, row.pair
            assert prepared is not None and pair is not None
            prompt_id = self.prompts[prepared.prompt_sha]
            slot = (prompt_id, pair.model_a, prepared.sha_a)
            if slot not in responses:
                wanted[slot] = (prepared.response_a, prepared.has_a)
            slot = (prompt_id, pair.model_b, prepared.sha_b)
            if slot not in responses:
                wanted[slot] = (prepared.response_b, prepared.has_b)
        lookup = [] if self.fresh else [s for s in wanted if s[0] not in self.new_prompts]
        for batch in lookup_batches(lookup):
            prompt_ids = list({s[0] for s in batch})
            hashes = list({s[2] for s in batch})
            found = Response.objects.filter(prompt_id__in=prompt_ids, content_hash__in=hashes)
            for prompt_id, model, sha, pk in found.values_list(
                "prompt_id", "model_name", "content_hash", "id"
            ):
                if wanted.pop((prompt_id, model, sha), None) is not None:
                    responses[(prompt_id, model, sha)] = pk
        ids = self.table.allocate(Response, len(wanted))
        values = []
        for pk, (slot, (text, has_text)) in zip(ids, wanted.items(), strict=True):
            responses[slot] = pk
            values.append((pk, slot[0], slot[1], text, has_text, slot[2]))
        self.table.insert(Response, RESPONSE_COLUMNS, values)
        self.counts["responses_created"] += len(values)

    def _create_pairs(self, created: list[Row]) -> None:
        if not created:
            return
        self._create_prompts(created)
        self._create_responses(created)
        ids = self.table.allocate(Pair, len(created))
        values = []
        dataset_id = self.dataset.pk
        prompts, responses, known = self.prompts, self.responses, self.pairs
        for pk, row in zip(ids, created, strict=True):
            pair, prepared = row.pair, row.prepared
            assert pair is not None and prepared is not None
            prompt_id = prompts[prepared.prompt_sha]
            known[row.key].id = pk
            values.append(
                (
                    pk,
                    dataset_id,
                    row.key,
                    prompt_id,
                    responses[(prompt_id, pair.model_a, prepared.sha_a)],
                    responses[(prompt_id, pair.model_b, prepared.sha_b)],
                    pair.turn,
                    pair.category,
                    prepared.content_sha,
                    clean_json(pair.meta) if pair.meta else {},
                )
            )
        self.table.insert(Pair, PAIR_COLUMNS, values)
        self.counts["pairs_created"] += len(values)

    def _create_votes(self, new: list[tuple[Row, int]]) -> None:
        ids = self.table.allocate(HumanVote, len(new))
        values = []
        for pk, (row, i) in zip(ids, new, strict=True):
            vote = row.votes[i]
            values.append(
                (
                    pk,
                    self.pairs[row.key].id,
                    vote.source,
                    vote.voter_id,
                    vote.outcome,
                    vote.strength,
                    row.vote_shas[i],
                    self.job_id,
                )
            )
        self.table.insert(HumanVote, _VOTE, values)
        self.counts["votes_created"] += len(values)

    def summary(self) -> dict[str, int]:
        counts = dict(self.counts)
        counts["pairs_matched"] = len(self.keys_matched)
        return counts
