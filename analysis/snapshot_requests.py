"""Asking for a fresh snapshot: what a label's request runs, without the statistics.

Every label, undo and adjudication asks for one (``analysis.apps`` connects
``audit_labels_changed`` to :func:`snapshot_request`). This module needs only the settings, the
cache and ``config.tasks``, so a web process that serves annotators never imports pandas,
scipy or the metrics: those are the task's (``analysis.services.snapshot_refresh``, run by a
worker). Coalescing and the order of lock, release and read are described in
``analysis.services``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

from config.tasks import coalesce_pending, enqueue

if TYPE_CHECKING:
    from annotation.models import Audit
    from corpus.models import Dataset

# analysis.tasks imports the services; the task is sent by name so this never imports it.
SNAPSHOT_TASK = "analysis.snapshot_refresh"


def subject(audit: Audit | None, dataset: Dataset | None) -> tuple[str, int]:
    """("audit", id) or ("dataset", id): what a snapshot is of."""
    if (audit is None) == (dataset is None):
        raise ValueError("give an audit or a dataset, not both")
    if audit is not None:
        return "audit", audit.pk
    assert dataset is not None
    return "dataset", dataset.pk


def coalesce_key(kind: str, pk: int) -> str:
    return f"analysis:snapshot:{kind}:{pk}"


def running_key(kind: str, pk: int) -> str:
    return f"analysis:snapshot:running:{kind}:{pk}"


def snapshot_delay() -> float:
    """Seconds between a label and the run that gathers the burst after it."""
    return max(0.0, float(getattr(settings, "TRIBUNAL_SNAPSHOT_DELAY", 0.2)))


def snapshot_request(
    *, audit: Audit | None = None, dataset: Dataset | None = None, force: bool = False
) -> None:
    """Ask for a fresh snapshot once the current transaction commits (at once outside one).

    Coalesced (``analysis.services``): of a burst of requests only the first schedules a run,
    and the run sees every label committed before it reads. The caller never waits for it,
    and a failure to reach the cache or the broker is logged, never raised: the label is
    already saved. ``force`` recomputes even when nothing changed (the report's button): it is
    sent at once, past any pending run.
    """
    kind, pk = subject(audit, dataset)
    if force:
        enqueue(SNAPSHOT_TASK, kind=kind, pk=pk, force=True)
    else:
        enqueue(
            SNAPSHOT_TASK,
            kind=kind,
            pk=pk,
            force=False,
            countdown=snapshot_delay(),
            coalesce=coalesce_key(kind, pk),
        )


def snapshot_pending(*, audit: Audit | None = None, dataset: Dataset | None = None) -> bool:
    """True while a run is scheduled or computing (as far as this process's cache knows)."""
    kind, pk = subject(audit, dataset)
    if coalesce_pending(coalesce_key(kind, pk)):
        return True
    try:
        return bool(cache.get(running_key(kind, pk)))
    except Exception:
        return False
