"""Reads for the import pages and API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from corpus.importers.progress import read_progress
from corpus.models import ImportJob

ACTIVE = (ImportJob.Status.PENDING, ImportJob.Status.RUNNING)


def import_jobs_recent(limit: int = 50) -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("dataset", "created_by").order_by("-created_at")[:limit]


def import_job_status(job: ImportJob) -> dict[str, Any]:
    """What a page or the API shows of a job, with live progress while it runs."""
    done, total = read_progress(job)
    percent = (
        100 if job.status == ImportJob.Status.DONE else (int(100 * done / total) if total else 0)
    )
    return {
        "job": job,
        "rows_done": done,
        "rows_total": total,
        "percent": percent,
        "active": job.status in ACTIVE,
    }
