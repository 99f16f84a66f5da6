"""How work leaves the request.

With CELERY_BROKER_URL set, tasks go to real Celery workers once the transaction commits.
Without it (the embedded default), the task runs in this process after commit: in a
background thread for the web server, so pages stay responsive and progress can be polled,
or inline when TRIBUNAL_TASKS_INLINE is on (tests, management commands).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections, connections, transaction

from config.celery import app as celery_app

log = logging.getLogger(__name__)


def _run_in_thread(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    close_old_connections()
    try:
        task.apply(args=args, kwargs=kwargs, throw=True)
    except Exception:
        log.exception("in-process task %s failed", task.name)
    finally:
        connections.close_all()


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


def enqueue(task: Task | str, *args: Any, **kwargs: Any) -> None:
    """Run `task` (a task or its name) after the current transaction commits (at once outside
    a transaction)."""
    if isinstance(task, str):
        task = task_named(task)

    def send() -> None:
        if settings.CELERY_BROKER_URL:
            task.delay(*args, **kwargs)
        elif getattr(settings, "TRIBUNAL_TASKS_INLINE", False):
            task.apply(args=args, kwargs=kwargs, throw=True)
        else:
            threading.Thread(
                target=_run_in_thread, args=(task, args, kwargs), daemon=True, name=task.name
            ).start()

    transaction.on_commit(send)
