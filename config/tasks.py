"""How work leaves a request: the only way (services never call ``delay``, threads or timers).

``enqueue(task, *args, countdown=None, coalesce=None, **kwargs)`` runs ``task(*args,
**kwargs)`` after the current transaction commits (at once outside one). Where it runs:

- **With a broker** (``CELERY_BROKER_URL``): published to Celery (``apply_async``, with the
  countdown). Publishing never retries and connects with a short timeout (settings:
  ``CELERY_TASK_PUBLISH_RETRY``, ``CELERY_BROKER_TRANSPORT_OPTIONS``), so an unreachable
  broker costs the caller one refused connection, never an exception. The task is then
  kept in this process's *outbox* (one entry per coalescing key) and the broker is left
  alone for ``TRIBUNAL_TASKS_RETRY_SECONDS``: later requests go straight to the outbox. The
  outbox is sent by the next request that finds the broker healthy, by a retry thread of
  this process every ``TRIBUNAL_TASKS_RETRY_SECONDS`` while it holds anything, and by the
  workers' periodic sweep (``config.leases``), so the work catches up when the broker
  returns. The outbox lives in memory: a process that dies with a full outbox loses it, and
  the next request for the same subject schedules the work again.
- **Without a broker** (the embedded default): in this process, in a daemon thread after
  ``countdown`` seconds (a ``threading.Timer``; pages stay responsive and progress can be
  polled), or inline and at once when ``TRIBUNAL_TASKS_INLINE`` is on (management commands,
  tests that opt in with the ``tasks_inline`` fixture).

``coalesce=key`` makes a burst of requests one run. On commit the request sets a *pending*
flag for ``key`` with ``cache.add``; only the request that creates it sends the task, the
others return (a run is on its way and has not read the data yet). The task body calls
:func:`coalesce_release` with the same key *before* it reads, so a request that commits
after the read finds no flag and sends the next run. The flag expires after
``COALESCE_SECONDS`` in case a run never starts. The cache must be one every process shares
(with a broker the settings default it to the broker's Redis): with a broker and a
local-memory cache, flags are not used and every request is sent. A cache that fails is
logged and the task sent anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.db import close_old_connections, connections, transaction

from config.celery import app as celery_app
from config.leases import sweep_register

log = logging.getLogger(__name__)

COALESCE_SECONDS = 60  # a pending flag whose run never started frees its key after this long


def task_named(name: str) -> Task:
    """The registered Celery task called `name` (e.g. "judges.judge_run").

    Services enqueue their app's tasks by name, so a task module may import the services it
    calls without the services importing it back. The apps' `tasks` modules are loaded on the
    first look-up (Celery's autodiscovery), as a worker loads them at start.
    """
    task = celery_app.tasks.get(name)
    if task is None:
        celery_app.loader.import_default_modules()
        task = celery_app.tasks.get(name)
    if task is None:
        raise LookupError(f"no Celery task named {name!r}")
    return task


def enqueue(
    task: Task | str,
    *args: Any,
    countdown: float | None = None,
    coalesce: str | None = None,
    **kwargs: Any,
) -> None:
    """Run `task` (a task or its name) with `args`/`kwargs` after the transaction commits.

    `countdown`: seconds to wait before running (gathers a burst; ignored inline).
    `coalesce`: a key; of the requests made while one with this key is pending, only the
    first is sent, and the task body must call ``coalesce_release(key)`` before it reads.
    See the module docstring for where the task runs and what a broker outage does.
    """
    name = task if isinstance(task, str) else task.name
    transaction.on_commit(lambda: _send(Job(name, args, kwargs, countdown, coalesce)))


def coalesce_release(key: str) -> None:
    """Free `key`: the next request for it sends a new run (call before reading the data)."""
    flags = _flags()
    if flags is None:
        return
    try:
        flags.delete(_flag(key))
    except Exception:
        log.exception("tasks: could not clear the pending flag %s", key)


def coalesce_pending(key: str) -> bool:
    """True while a run for `key` has been requested and has not started reading."""
    try:
        return bool(cache.get(_flag(key)))
    except Exception:
        return False


# --- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    countdown: float | None
    coalesce: str | None

    @property
    def key(self) -> Hashable:
        if self.coalesce is not None:
            return (self.name, self.coalesce)
        return (self.name, repr(self.args), repr(sorted(self.kwargs.items())))


def _flag(key: str) -> str:
    return f"tasks:pending:{key}"


def _flags() -> BaseCache | None:
    """The cache that holds pending flags, or None when it cannot be shared with workers."""
    if not settings.CELERY_BROKER_URL:
        return cache  # everything runs in this process
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    if backend.endswith(("LocMemCache", "DummyCache")):
        return None
    return cache


def _send(job: Job) -> None:
    if job.coalesce is not None:
        flags = _flags()
        if flags is not None:
            try:
                if not flags.add(_flag(job.coalesce), time.time(), timeout=COALESCE_SECONDS):
                    return  # a run is already on its way and has not read the data yet
            except Exception:
                log.exception("tasks: the cache failed; sending %s anyway", job.name)
    if settings.CELERY_BROKER_URL:
        _publish(job)
    else:
        _run_here(job)


def _run_here(job: Job) -> None:
    """Run a task in this process: inline, or in a timer thread (tests replace this)."""
    if getattr(settings, "TRIBUNAL_TASKS_INLINE", False):
        task_named(job.name).apply(args=job.args, kwargs=job.kwargs, throw=True)
        return
    timer = threading.Timer(job.countdown or 0.0, _run_in_thread, args=(job,))
    timer.daemon = True
    timer.name = job.name
    timer.start()


def _run_in_thread(job: Job) -> None:
    close_old_connections()
    try:
        task_named(job.name).apply(args=job.args, kwargs=job.kwargs, throw=True)
    except Exception:
        log.exception("in-process task %s failed", job.name)
    finally:
        connections.close_all()


# --- the broker and the outbox ---------------------------------------------------------------

_outbox: dict[Hashable, Job] = {}
_outbox_lock = threading.Lock()
_broker_down_until = 0.0
_retry_thread: threading.Thread | None = None


def _retry_seconds() -> float:
    return max(0.0, float(getattr(settings, "TRIBUNAL_TASKS_RETRY_SECONDS", 5)))


def _apply_async(job: Job) -> None:
    # By name, without the task object: looking it up would import every app's tasks module,
    # and with them the services, pandas and scipy, into a web process that only publishes.
    # The worker runs the task from its own registry (the options that matter on a crash,
    # acks_late and the rest, are the worker's).
    celery_app.send_task(
        job.name, args=job.args, kwargs=job.kwargs, countdown=job.countdown, retry=False
    )


def _publish(job: Job) -> None:
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        _keep(job)  # the broker failed moments ago: do not make this request wait for it
        return
    try:
        _apply_async(job)
    except Exception as exc:
        log.warning("tasks: the broker refused %s (%s); kept for later", job.name, exc)
        _broker_down_until = time.monotonic() + _retry_seconds()
        _keep(job)
        return
    outbox_flush()  # the broker works: send what waited for it


def _keep(job: Job) -> None:
    global _retry_thread
    with _outbox_lock:
        _outbox.setdefault(job.key, job)
        if _retry_thread is None:
            _retry_thread = threading.Thread(target=_retry_loop, name="tasks-outbox", daemon=True)
            _retry_thread.start()


def _retry_loop() -> None:
    global _retry_thread
    while True:
        time.sleep(max(_retry_seconds(), 0.05))
        outbox_flush()
        with _outbox_lock:
            if not _outbox:
                _retry_thread = None
                return


def outbox_size() -> int:
    """How many tasks of this process wait for the broker."""
    with _outbox_lock:
        return len(_outbox)


def outbox_flush() -> int:
    """Send this process's tasks that waited for the broker; return how many still wait.

    Stops at the first failure (the broker is still down) and keeps the rest. A periodic
    sweep (`config.leases`) and the retry thread call this; so does every healthy publish.
    """
    global _broker_down_until
    with _outbox_lock:
        waiting = list(_outbox.items())
    for key, job in waiting:
        try:
            _apply_async(job)
        except Exception:
            _broker_down_until = time.monotonic() + _retry_seconds()
            break
        with _outbox_lock:
            _outbox.pop(key, None)
    else:
        _broker_down_until = 0.0
    return outbox_size()


# Celery workers run the sweeps now and then: a worker's own outbox (tasks that its tasks
# enqueued while the broker was away) is sent from there.
sweep_register("config.tasks.outbox", outbox_flush)
