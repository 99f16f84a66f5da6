"""Leases on background jobs, so a job whose worker died is noticed and finished.

A job row (an import, a judge run, a classification run) that a worker is running names its
worker (`lease_owner`: host, process, a random token) and carries a heartbeat
(`heartbeat_at`), which a thread of that worker refreshes every quarter of the lease while
the job runs. A running job whose heartbeat is older than the lease
(`TRIBUNAL_JOB_LEASE_SECONDS`), or whose owner is a process of this machine that no longer
exists, has lost its worker:

- a task delivered for a job that another live worker holds returns at once (a Redis
  redelivery of a long task, a sweep's re-queue that crossed the original);
- each app registers a *sweep* (`sweep_register`) that finishes such jobs: judge and
  classification runs are queued again and resume from what they stored; an import, which
  wrote nothing (its transaction rolled back), is marked failed with the reason;
- Celery workers run the sweeps every half lease (`sweeper_start`, from `config.celery`),
  and the services run their own app's check where a person acts (a new run, Stop), so the
  embedded default, which has no worker, is covered where it matters.

A job whose worker dies `TRIBUNAL_JOB_MAX_ATTEMPTS` times is failed rather than retried
forever (a file or a model that kills its worker every time).

Plumbing: no app is imported here; apps pass their models and register their sweeps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Model
from django.utils import timezone

log = logging.getLogger(__name__)

_HOST = socket.gethostname()
_SWEEPS: dict[str, Callable[[], object]] = {}

# Why a job ended or was queued again when its worker died (messages add how often, what next).
WORKER_LOST: Final = "its worker stopped (killed or restarted) while it ran"


def lease_seconds() -> float:
    return float(settings.TRIBUNAL_JOB_LEASE_SECONDS)


def max_attempts() -> int:
    return int(settings.TRIBUNAL_JOB_MAX_ATTEMPTS)


def lease_owner_new() -> str:
    """A name for this worker's hold on one job: `host:pid:token`."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_dead(owner: str) -> bool:
    """Whether `owner` was a process on this machine that no longer runs (no waiting for
    the lease when a worker's child was killed and the main process requeued its task)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_expired(
    *, heartbeat_at: datetime | None, owner: str, now: datetime | None = None
) -> bool:
    """Whether a running job has lost its worker (see the module docstring)."""
    if heartbeat_at is None:
        return True
    now = now or timezone.now()
    if now - heartbeat_at > timedelta(seconds=lease_seconds()):
        return True
    return bool(owner) and _owner_dead(owner)


def lease_take(job: Any, *, running: str, also_save: Sequence[str] = ()) -> str | None:
    """Start or resume a job under a new owner (returned), counting the attempt; call holding
    its row lock.

    None, with nothing saved, when this attempt is one too many (its workers died
    `TRIBUNAL_JOB_MAX_ATTEMPTS` times): the caller ends the job. `job` is a run row with
    `status`, `started_at`, `error`, `attempts` and the lease fields; `also_save` names fields
    to save with them (`updated_at`, where the model has one)."""
    job.attempts += 1
    if job.attempts > max_attempts():
        return None
    job.status = running
    job.started_at = job.started_at or timezone.now()
    job.error = ""
    job.lease_owner, job.heartbeat_at = lease_owner_new(), timezone.now()
    job.save(
        update_fields=[
            *("status", "started_at", "error", "lease_owner", "heartbeat_at", "attempts"),
            *also_save,
        ]
    )
    return str(job.lease_owner)


def stale_before(now: datetime | None = None) -> datetime:
    """Heartbeats older than this have expired."""
    return (now or timezone.now()) - timedelta(seconds=lease_seconds())


class Heartbeat:
    """Keeps one job's lease fresh from a thread while the job runs.

    `lost` is set when the row names another owner: a sweep or another worker took the job
    over (this worker was presumed dead); the job should stop without writing its result.
    `write=False` keeps the beat out of the database (an import on SQLite holds the only
    write lock for its whole transaction).
    """

    def __init__(
        self,
        model: type[Model],
        pk: int,
        owner: str,
        *,
        write: bool = True,
        every: float | None = None,
    ) -> None:
        self.model, self.pk, self.owner, self.write = model, pk, owner, write
        self.every = every if every is not None else lease_seconds() / 4
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Refresh the lease once (the thread calls this every `every` seconds)."""
        if not self.write:
            return
        manager = self.model._default_manager
        try:
            updated = manager.filter(pk=self.pk, lease_owner=self.owner).update(
                heartbeat_at=timezone.now()
            )
            if not updated:
                holder = manager.filter(pk=self.pk).values_list("lease_owner", flat=True).first()
                if holder is not None and holder != self.owner:
                    log.warning(
                        "%s %s: lease taken over by %s", self.model.__name__, self.pk, holder
                    )
                    self.lost.set()
        except DatabaseError:
            log.warning("%s %s: heartbeat not written", self.model.__name__, self.pk, exc_info=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self.beat()
        finally:
            connections.close_all()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self.model.__name__}-{self.pk}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# --- sweeps ------------------------------------------------------------------------------------


def sweep_register(name: str, sweep: Callable[[], object]) -> None:
    """Register an app's sweep (finishes that app's jobs whose worker died)."""
    _SWEEPS[name] = sweep


def sweeps_run() -> None:
    """Run every registered sweep once; one failing sweep does not stop the others."""
    close_old_connections()
    try:
        for name, sweep in list(_SWEEPS.items()):
            try:
                sweep()
            except Exception:
                log.exception("job sweep %s failed", name)
    finally:
        connections.close_all()


def sweeper_start(*, every: float | None = None, **_: Any) -> threading.Thread:
    """Run the sweeps now and then every half lease, in a daemon thread (a Celery worker
    starts one when it is ready)."""
    interval = every if every is not None else lease_seconds() / 2
    stop = threading.Event()

    def loop() -> None:
        while True:
            with contextlib.suppress(Exception):
                sweeps_run()
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name="job-sweeper", daemon=True)
    thread.start()
    return thread
