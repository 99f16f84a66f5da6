"""Uploads whose worker died: held by a lease (config/leases.py), failed with the reason or run
again, never left `running` and never imported twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from corpus.importers.services import import_jobs_create, import_jobs_recover, import_jobs_run
from corpus.models import HumanVote, ImportJob, Pair

CSV = b"pair_id,prompt,response_a,response_b,human_vote\nc-1,h,a,b,A\nc-2,i,c,d,B\n"


@pytest.fixture
def queued(
    lead: User, settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> ImportJob:
    """An upload stored and queued, its task not run yet."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with django_capture_on_commit_callbacks(execute=False):
        [job] = import_jobs_create(
            dataset_name="crash", fmt="generic", files=[SimpleUploadedFile("c.csv", CSV)], user=lead
        )
    return job


def left_running(job: ImportJob, *, heartbeat_age: timedelta, attempts: int = 1) -> None:
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.RUNNING,
        lease_owner="other-host:1:x",
        heartbeat_at=timezone.now() - heartbeat_age,
        attempts=attempts,
    )


def test_a_second_delivery_of_an_import_held_by_a_live_worker_does_nothing(
    queued: ImportJob,
) -> None:
    left_running(queued, heartbeat_age=timedelta(seconds=1))

    import_jobs_run(job_ids=[queued.pk])

    queued.refresh_from_db()
    assert (queued.status, queued.lease_owner) == ("running", "other-host:1:x")
    assert Pair.objects.count() == 0


def test_an_import_whose_worker_died_runs_again_when_its_task_comes_back(
    queued: ImportJob,
) -> None:
    left_running(queued, heartbeat_age=timedelta(hours=1))

    import_jobs_run(job_ids=[queued.pk])  # the broker's redelivery

    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("done", 2)
    assert Pair.objects.count() == 2 and HumanVote.objects.count() == 2


def test_an_import_that_lost_its_worker_too_often_fails_with_the_reason(
    queued: ImportJob, settings: Any
) -> None:
    settings.TRIBUNAL_JOB_MAX_ATTEMPTS = 2
    left_running(queued, heartbeat_age=timedelta(hours=1), attempts=2)

    import_jobs_run(job_ids=[queued.pk])

    queued.refresh_from_db()
    assert queued.status == ImportJob.Status.FAILED
    assert queued.errors == [
        "c.csv: import: the worker importing this file stopped (killed, restarted or out of "
        "memory) before it finished; nothing was written: import the file again (2 times)"
    ]
    assert Pair.objects.count() == 0


def test_the_sweep_fails_an_import_whose_worker_died_and_leaves_live_ones(
    queued: ImportJob, lead: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite imports write no heartbeat (one writer); run with PostgreSQL")
    live = ImportJob.objects.create(dataset=queued.dataset, format="generic", filename="l.csv")
    left_running(queued, heartbeat_age=timedelta(hours=1))
    left_running(live, heartbeat_age=timedelta(seconds=1))

    assert import_jobs_recover() == [queued.pk]

    queued.refresh_from_db()
    live.refresh_from_db()
    assert queued.status == ImportJob.Status.FAILED and queued.finished_at is not None
    assert queued.errors == [
        "c.csv: import: the worker importing this file stopped (killed, restarted or out of "
        "memory) before it finished; nothing was written: import the file again"
    ]
    assert live.status == ImportJob.Status.RUNNING
