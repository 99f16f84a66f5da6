"""Importing files of pairs, votes and verdicts: the one code path behind the command, the
upload page, the API, the Celery task and the benchmark.

Each file is all-or-nothing: it is parsed and written in one transaction, and if any row is
bad (a parse error, or a conflict with what the dataset holds) the transaction is rolled back
and the job records the first errors as `file:line: field: problem`.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_slug
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from config.leases import Heartbeat, lease_expired, lease_owner_new, max_attempts
from config.tasks import enqueue
from corpus.importers.formats import FORMATS, Format, ParseContext, ParseOptions
from corpus.importers.progress import ImportProgress, ProgressCallback
from corpus.importers.readers import MIB, ReadLimits, RecordFile
from corpus.importers.records import Row, RowError, prepare_row, printable
from corpus.importers.writer import PairWriter
from corpus.models import Dataset, ImportJob

log = logging.getLogger(__name__)

ERRORS_SHOWN = 20
CHUNK_ROWS = 5000  # rows the writer decides and writes at once
BATCH_ROWS = 1000  # rows the parser thread hands over at once


class ImportRequestError(ValueError):
    """A request to import that cannot start (unknown format, bad dataset name)."""


@dataclass
class SideFiles:
    """Answers and questions files (MT-Bench, Arena-Hard-Auto): (path, name shown in
    messages); and Arena-Hard-Auto's baseline model."""

    answers: list[tuple[Path, str]] = field(default_factory=list)
    questions: list[tuple[Path, str]] = field(default_factory=list)
    baseline: str = ""

    def options(self) -> ParseOptions:
        limits = read_limits()
        return ParseOptions(
            answers=[RecordFile(path, name, limits=limits) for path, name in self.answers],
            questions=[RecordFile(path, name, limits=limits) for path, name in self.questions],
            baseline=self.baseline,
        )


def read_limits() -> ReadLimits:
    """What one file may make an import read (settings TRIBUNAL_IMPORT_*, in MiB)."""
    return ReadLimits(
        file_bytes=settings.TRIBUNAL_IMPORT_MAX_FILE_MB * MIB,
        row_bytes=settings.TRIBUNAL_IMPORT_MAX_ROW_MB * MIB,
        json_array_bytes=settings.TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB * MIB,
    )


def format_get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ImportRequestError(
            f"unknown format {name!r}; expected one of {', '.join(FORMATS)}"
        ) from None


def dataset_for_import(*, name: str, user: Any = None) -> Dataset:
    """The dataset called `name`, created if new."""
    try:
        validate_slug(name)
    except ValidationError:
        raise ImportRequestError(
            f"dataset name {name!r}: use letters, numbers, hyphens and underscores"
        ) from None
    if len(name) > 100:
        raise ImportRequestError(f"dataset name {name!r}: at most 100 characters")
    dataset, _ = Dataset.objects.get_or_create(
        name=name, defaults={"created_by": user if getattr(user, "pk", None) else None}
    )
    return dataset


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    *,
    dataset: Dataset,
    fmt: str,
    path: Path | str,
    name: str | None = None,
    side_files: SideFiles | None = None,
    job: ImportJob | None = None,
    user: Any = None,
    on_progress: ProgressCallback | None = None,
) -> ImportJob:
    """Import one file into `dataset` and return its finished ImportJob (done or failed).

    Never raises for a bad file: the job's `errors` say what is wrong and where. Pass `job`
    to run an ImportJob created earlier (the upload page does); otherwise one is created.
    """
    spec = format_get(fmt)
    path = Path(path)
    source = RecordFile(path, name, limits=read_limits())
    if job is None:
        job = ImportJob.objects.create(
            dataset=dataset,
            format=fmt,
            filename=printable(source.name)[:500],
            created_by=user if getattr(user, "pk", None) else None,
        )
    job.status = ImportJob.Status.RUNNING
    try:
        job.file_sha256 = file_sha256(path)
    except OSError:
        job.file_sha256 = ""  # the reader reports why the file cannot be read
    job.rows_done = job.rows_total = 0
    job.counts, job.errors = {}, []
    owner = job.lease_owner = job.lease_owner or lease_owner_new()
    job.heartbeat_at = timezone.now()
    job.save(
        update_fields=[
            *("status", "file_sha256", "rows_done", "rows_total", "counts", "errors"),
            *("lease_owner", "heartbeat_at"),
        ]
    )

    progress = ImportProgress(job, callback=on_progress)
    ctx = ParseContext(source, (side_files or SideFiles()).options())
    started = time.monotonic()
    # On SQLite the import's transaction holds the database's only write lock: no heartbeat.
    beats = connection.vendor != "sqlite" and not connection.in_atomic_block
    try:
        with Heartbeat(ImportJob, job.pk, owner, write=beats):
            rows, counts, errors, error_total = _import(dataset, spec, ctx, job, progress)
    except DatabaseError as exc:  # a database refusal the row checks did not foresee
        log.exception("import of %s into %s failed", source.name, dataset.name)
        rows, counts, error_total = 0, {}, 1
        errors = [RowError(source.name, 0, "database", f"the database refused the file: {exc}")]
    except Exception as exc:  # a bug, not the file's fault: still leave a finished job
        log.exception("import of %s into %s failed", source.name, dataset.name)
        rows, counts, error_total = 0, {}, 1
        errors = [RowError(source.name, 0, "import", f"internal error ({exc!r}); see the log")]
    finally:
        progress.close()
    seconds = time.monotonic() - started

    summary: dict[str, Any] = {**counts, **ctx.stats, "rows": rows}
    summary["seconds"] = round(seconds, 3)
    if errors:
        summary["errors"] = error_total
    job.counts = summary
    # str(RowError) writes control characters as escapes: PostgreSQL refuses a NUL in JSON.
    job.errors = [str(e) for e in sorted(errors, key=lambda e: e.line)[:ERRORS_SHOWN]]
    if error_total > ERRORS_SHOWN:
        job.errors.append(f"… and {error_total - ERRORS_SHOWN} more errors")
    job.status = ImportJob.Status.FAILED if errors else ImportJob.Status.DONE
    job.rows_done = job.rows_total = rows
    job.finished_at = timezone.now()
    _job_finish(job)
    return job


def _job_finish(job: ImportJob) -> None:
    """Save a finished job. If the database refuses the record (something in the counts or
    errors it cannot store), the job still ends failed, with the reason, never `running`."""
    try:
        with transaction.atomic():
            job.save()
    except DatabaseError as exc:
        log.exception("import job %s: the result could not be saved", job.pk)
        job.status = ImportJob.Status.FAILED
        job.counts = {}
        job.errors = [
            printable(f"{job.filename}: import: the result could not be saved ({exc})")[:2000]
        ]
        ImportJob.objects.filter(pk=job.pk).update(
            status=job.status, counts=job.counts, errors=job.errors, finished_at=job.finished_at
        )


def _import(
    dataset: Dataset, spec: Format, ctx: ParseContext, job: ImportJob, progress: ImportProgress
) -> tuple[int, dict[str, int], list[RowError], int]:
    """Parse and write in one transaction; roll it back if any row is bad."""
    source = ctx.source
    errors: list[RowError] = []
    error_total = 0
    rows = 0
    with transaction.atomic():
        # Serialises imports into one dataset: the writer's look-ups assume no other writer.
        Dataset.objects.select_for_update().filter(pk=dataset.pk).exists()
        writer = PairWriter(dataset, file=source.name, job_id=job.pk, now=timezone.now())
        try:
            chunk: list[Row] = []
            for batch in _parsed_in_background(spec.parse(ctx), source.name):
                for entry in batch:
                    if isinstance(entry, RowError):
                        error_total += 1
                        if len(errors) < ERRORS_SHOWN:
                            errors.append(entry)
                        continue
                    rows += 1
                    if not errors:
                        chunk.append(entry)
                if errors:
                    chunk = []
                elif len(chunk) >= CHUNK_ROWS:
                    found = writer.write(chunk)
                    errors += found
                    error_total += len(found)
                    chunk = []
                progress.update(rows, source.rows_estimate())
            if chunk and not errors:
                found = writer.write(chunk)
                errors += found
                error_total += len(found)
        finally:
            writer.close()
        if rows == 0 and not errors:
            errors.append(RowError(source.name, 1, "file", "no rows to import"))
            error_total = 1
        if errors:
            transaction.set_rollback(True)
    return rows, writer.summary(), errors, error_total


_DONE = object()


def _parsed_in_background(
    entries: Iterator[Row | RowError], file: str
) -> Iterator[list[Row | RowError]]:
    """Batches of parsed and prepared rows (`records.prepare_row`), produced by a thread.

    Parsing and hashing are Python work; writing mostly waits on the database. Doing the
    first in a thread while the main thread writes the previous batch keeps both busy. The
    thread touches no database connection (parsers are pure).
    """
    batches: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            batch: list[Row | RowError] = []
            for entry in entries:
                if isinstance(entry, Row):
                    problems = prepare_row(entry)
                    if problems:
                        batch += [RowError(file, entry.line, f, p) for f, p in problems]
                        continue
                batch.append(entry)
                if len(batch) >= BATCH_ROWS:
                    if not put(batch):
                        return
                    batch = []
            if put(batch):
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=produce, name="import-parser", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def import_files(
    *,
    dataset: Dataset,
    fmt: str,
    paths: Sequence[Path | str],
    side_files: SideFiles | None = None,
    user: Any = None,
    on_progress: ProgressCallback | None = None,
) -> list[ImportJob]:
    """Import several files, those that create pairs first (a PandaLM judge file's verdicts
    need the test set's pairs), each in its own transaction."""
    spec = format_get(fmt)
    ordered = sorted((Path(p) for p in paths), key=lambda p: not spec.creates_pairs(p, p.name))
    return [
        import_file(
            dataset=dataset,
            fmt=fmt,
            path=path,
            name=spec.display_name(path),
            side_files=side_files,
            user=user,
            on_progress=on_progress,
        )
        for path in ordered
    ]


def import_jobs_create(
    *,
    dataset_name: str,
    fmt: str,
    files: Sequence[UploadedFile],
    answers: Sequence[UploadedFile] = (),
    questions: Sequence[UploadedFile] = (),
    baseline: str = "",
    user: Any = None,
) -> list[ImportJob]:
    """Store uploaded files as pending ImportJobs and queue their import (after commit)."""
    format_get(fmt)
    if not files:
        raise ImportRequestError("choose at least one file")
    with transaction.atomic():
        dataset = dataset_for_import(name=dataset_name, user=user)
        jobs = []
        for upload in files:
            job = ImportJob(
                dataset=dataset,
                format=fmt,
                filename=printable(upload.name or "upload")[:500],
                created_by=user if getattr(user, "pk", None) else None,
            )
            job.upload.save(upload.name or "upload", upload, save=False)
            job.save()
            jobs.append(job)
        side: dict[str, Any] = {
            "answers": [_store_side_file(f) for f in answers],
            "questions": [_store_side_file(f) for f in questions],
        }
        if baseline:
            side["baseline"] = baseline
        enqueue("corpus.import_run", [job.pk for job in jobs], side)
    return jobs


def _store_side_file(upload: UploadedFile) -> tuple[str, str]:
    """Save a side file next to the uploads; returns (storage name, original name)."""
    from django.core.files.storage import default_storage

    stored = default_storage.save(f"imports/side/{upload.name or 'side'}", upload)
    return stored, upload.name or stored


def import_jobs_run(*, job_ids: Sequence[int], side: dict[str, Any] | None = None) -> None:
    """Run upload jobs in order (pair-creating files first). Jobs already done or refused are
    skipped, so a task delivered twice imports once; a job left `running` by a crashed worker
    wrote nothing (its transaction rolled back) and runs again."""
    from django.core.files.storage import default_storage

    side = side or {}
    side_files = SideFiles(
        answers=[(Path(default_storage.path(s)), n) for s, n in side.get("answers", [])],
        questions=[(Path(default_storage.path(s)), n) for s, n in side.get("questions", [])],
        baseline=side.get("baseline", ""),
    )
    jobs = list(ImportJob.objects.filter(pk__in=job_ids).select_related("dataset"))
    finished = (ImportJob.Status.DONE, ImportJob.Status.FAILED)
    jobs = [job for job in jobs if job.status not in finished]

    def creates_pairs(job: ImportJob) -> bool:
        spec = FORMATS.get(job.format)
        return spec is None or spec.creates_pairs(Path(job.upload.path), job.filename)

    for job in sorted(jobs, key=lambda j: (not creates_pairs(j), j.pk)):
        claimed = _job_claim(job.pk)
        if claimed is None:
            continue
        import_file(
            dataset=job.dataset,
            fmt=job.format,
            path=job.upload.path,
            name=job.filename,
            side_files=side_files,
            job=claimed,
        )


_LOST: Final = (
    "the worker importing this file stopped (killed, restarted or out of memory) before it "
    "finished; nothing was written: import the file again"
)


def _job_claim(pk: int) -> ImportJob | None:
    """Take an upload job for this worker: None if it is finished, or held by a live worker
    (a second delivery of the task), or failed here after too many lost workers."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("dataset").get(pk=pk)
        if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
            return None
        if job.status == ImportJob.Status.RUNNING and not lease_expired(
            heartbeat_at=job.heartbeat_at, owner=job.lease_owner
        ):
            return None
        job.attempts += 1
        job.lease_owner, job.heartbeat_at = lease_owner_new(), timezone.now()
        if job.attempts > max_attempts():
            job.status, job.finished_at = ImportJob.Status.FAILED, timezone.now()
            job.errors = [f"{printable(job.filename)}: import: {_LOST} ({job.attempts - 1} times)"]
        job.save(
            update_fields=[
                "attempts",
                "lease_owner",
                "heartbeat_at",
                "status",
                "finished_at",
                "errors",
            ]
        )
        return job if job.status != ImportJob.Status.FAILED else None


def import_jobs_recover() -> list[int]:
    """Fail the running imports whose worker died (the sweep, see config.leases), with the
    reason; their transaction rolled back, so nothing is left half-written. SQLite imports
    write no heartbeat and are left alone. Returns the ids failed."""
    if connection.vendor == "sqlite":
        return []
    failed = []
    running = ImportJob.objects.filter(status=ImportJob.Status.RUNNING)
    for pk in running.values_list("pk", flat=True):
        with transaction.atomic():
            job = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if job is None or not lease_expired(
                heartbeat_at=job.heartbeat_at, owner=job.lease_owner
            ):
                continue
            job.status, job.finished_at = ImportJob.Status.FAILED, timezone.now()
            job.errors = [f"{printable(job.filename)}: import: {_LOST}"]
            job.save(update_fields=["status", "finished_at", "errors"])
            failed.append(pk)
            log.warning("import job %s: %s", pk, _LOST)
    return failed
