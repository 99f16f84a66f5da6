"""Celery tasks of the analysis app.

Schedule them through :func:`analysis.snapshot_requests.snapshot_request`, which coalesces a
burst of requests into one run and enqueues only after the transaction commits; do not call
``delay`` directly.
"""

from __future__ import annotations

from celery import shared_task

from analysis.services import snapshot_refresh


@shared_task(name="analysis.snapshot_refresh", acks_late=True, ignore_result=True)
def snapshot_refresh_task(kind: str, pk: int, force: bool = False) -> int | None:
    """Recompute the snapshot of an audit or a dataset (kind "audit"/"dataset", its id).

    Idempotent: when nothing changed since the latest snapshot it does nothing. Returns the
    new snapshot's id, or None.
    """
    snapshot = snapshot_refresh(kind=kind, pk=pk, force=force)
    return snapshot.pk if snapshot is not None else None
