"""Celery tasks of the corpus app. Services enqueue them by name (`config.tasks.enqueue`),
so this module imports the services and never the reverse."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from config.leases import sweep_register
from corpus.importers.services import import_jobs_recover, import_jobs_run


@shared_task(name="corpus.import_run", acks_late=True)
def import_run(job_ids: list[int], side: dict[str, Any] | None = None) -> None:
    """Import uploaded files (ImportJob ids, see `import_jobs_run`). Idempotent: finished jobs
    are skipped, and a job interrupted mid-file left nothing behind."""
    import_jobs_run(job_ids=job_ids, side=side)


# Workers fail the imports whose worker died (config.leases).
sweep_register("corpus.imports", import_jobs_recover)
