"""An import's progress, visible while its transaction is still open.

An import writes one file in one transaction, so updating the ImportJob row through the same
connection would stay invisible to the page polling it until the very end. Instead:

- on PostgreSQL the figures go through a second, autocommitting connection, with a short lock
  timeout so it can never wait on the import itself (used when the import is the outermost
  transaction, which is how the command, the task and the bench run it);
- otherwise (SQLite allows one writer at a time; or an import nested in a caller's
  transaction) they go to Django's cache. With the default local-memory cache that is seen in
  the same process, which is where the embedded default runs its tasks; deployments with
  Celery workers and SQLite should configure a shared cache.

`read_progress` combines both, so the page does not need to know which was used.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections

from corpus.models import ImportJob

log = logging.getLogger(__name__)

CACHE_SECONDS = 3600
EVERY_ROWS = 5000
EVERY_SECONDS = 1.0
ProgressCallback = Callable[[int, int], None]


def _cache_key(job_id: int) -> str:
    return f"tribunal:import-progress:{job_id}"


def read_progress(job: ImportJob) -> tuple[int, int]:
    """(rows done, rows expected) for a job, from wherever its import publishes them."""
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return job.rows_done, job.rows_total
    cached = cache.get(_cache_key(job.pk))
    if cached and cached[0] >= job.rows_done:
        return int(cached[0]), int(cached[1])
    return job.rows_done, job.rows_total


class ImportProgress:
    """Publishes (rows done, rows expected) every `every` rows or `seconds`, whichever first."""

    def __init__(
        self,
        job: ImportJob,
        *,
        callback: ProgressCallback | None = None,
        every: int | None = None,
        seconds: float | None = None,
    ) -> None:
        self.job_id = job.pk
        self.callback = callback
        self.every = every or EVERY_ROWS
        self.seconds = seconds or EVERY_SECONDS
        self._next_rows = self.every
        self._last = time.monotonic()
        self._side: Any = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            try:
                main = connections[DEFAULT_DB_ALIAS]
                self._side = type(main)(dict(main.settings_dict), DEFAULT_DB_ALIAS)
                with self._side.cursor() as cursor:
                    cursor.execute("SET lock_timeout = '200ms'")
            except DatabaseError:
                log.warning("import progress: no side connection; using the cache")
                self._close_side()

    def update(self, rows: int, estimated_total: int) -> None:
        """Called often; publishes only now and then."""
        if rows < self._next_rows and time.monotonic() - self._last < self.seconds:
            return
        self._next_rows = rows + self.every
        self._last = time.monotonic()
        self.publish(rows, max(estimated_total, rows))

    def publish(self, rows: int, total: int) -> None:
        cache.set(_cache_key(self.job_id), (rows, total), CACHE_SECONDS)
        if self._side is not None:
            try:
                with self._side.cursor() as cursor:
                    cursor.execute(
                        f'UPDATE "{ImportJob._meta.db_table}" '
                        "SET rows_done = %s, rows_total = %s WHERE id = %s",
                        [rows, total, self.job_id],
                    )
            except DatabaseError:
                log.warning("import progress: side connection failed; using the cache")
                self._close_side()
        if self.callback is not None:
            self.callback(rows, total)

    def _close_side(self) -> None:
        if self._side is not None:
            with contextlib.suppress(DatabaseError):
                self._side.close()
            self._side = None

    def close(self) -> None:
        self._close_side()
        cache.delete(_cache_key(self.job_id))
