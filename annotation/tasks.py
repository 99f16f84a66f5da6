"""Celery tasks of the annotation app."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="annotation.import_run", acks_late=True)
def import_run(job_ids: list[int], side: dict[str, list[Any]] | None = None) -> None:
    """Import uploaded files (ImportJob ids, see `import_jobs_run`). Idempotent: finished jobs
    are skipped, and a job interrupted mid-file left nothing behind."""
    from annotation.importers.services import import_jobs_run

    import_jobs_run(job_ids=job_ids, side=side)
