"""Runs whose worker died (issue 15 item 3): noticed by their lease, then resumed or ended.

A running run names its worker and renews a heartbeat (config/leases.py). These tests put a
run in the state a killed worker leaves (running, heartbeat older than the lease) and check
what a lead sees: Stop ends it, a new run is not refused, the sweep resumes it from the
verdicts it stored without duplicating one, and a run that loses its worker too often fails
with the reason. The same with a real worker killed mid-run: tests/test_worker_crash.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from config.leases import Heartbeat, lease_owner_new
from corpus.models import Dataset
from judges import services
from judges.classification import (
    classification_run_create,
    classification_runs_recover,
)
from judges.models import ClassificationRun, Judge, JudgeRun, ResponseClassification, Verdict
from tests.judges.chat_server import ChatServer
from tests.judges.conftest import assert_blocked_by
from tests.judges.test_classification_runs import make_xstest_dataset

MakeJudge = Callable[..., Judge]
LONG_AGO = timedelta(hours=1)


def orphaned(run: JudgeRun | ClassificationRun, *, attempts: int = 1) -> None:
    """What a worker killed mid-run leaves behind: running, the heartbeat an hour old."""
    type(run).objects.filter(pk=run.pk).update(
        status="running",
        lease_owner="gone-host:1:dead",
        heartbeat_at=timezone.now() - LONG_AGO,
        attempts=attempts,
    )


def held_by_a_live_worker(run: JudgeRun | ClassificationRun) -> None:
    type(run).objects.filter(pk=run.pk).update(
        status="running", lease_owner="other-host:1:live", heartbeat_at=timezone.now(), attempts=1
    )


def test_it_stops_at_once_a_run_whose_worker_died(judge: Judge, dataset: Dataset) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    orphaned(run)

    services.judge_run_stop(run=run)

    run.refresh_from_db()
    assert (run.status, run.stop_requested) == ("stopped", True)
    assert run.finished_at is not None
    assert run.error == "stopped; its worker stopped (killed or restarted) while it ran"


def test_it_leaves_a_live_run_to_its_worker_when_asked_to_stop(
    judge: Judge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    held_by_a_live_worker(run)

    services.judge_run_stop(run=run)

    run.refresh_from_db()
    assert (run.status, run.stop_requested) == ("running", True)  # its worker stops it


def test_a_run_whose_worker_died_does_not_block_a_new_one(
    judge: Judge, dataset: Dataset, chat_server: ChatServer
) -> None:
    dead = services.judge_run_create(judge=judge, dataset=dataset)
    orphaned(dead)

    fresh = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    assert fresh.status == JudgeRun.Status.DONE and fresh.counts["calls"] == 8
    dead.refresh_from_db()
    assert dead.status == JudgeRun.Status.FAILED
    assert dead.error == (
        f"its worker stopped (killed or restarted) while it ran; replaced by run {fresh.pk}"
    )


def test_a_live_run_still_blocks_a_second_one(judge: Judge, dataset: Dataset) -> None:
    live = services.judge_run_create(judge=judge, dataset=dataset)
    held_by_a_live_worker(live)

    assert_blocked_by(live)


def test_a_second_delivery_of_a_run_held_by_a_live_worker_returns_at_once(
    judge: Judge, dataset: Dataset, chat_server: ChatServer
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    held_by_a_live_worker(run)

    again = services.judge_run_execute(run.pk)

    assert (again.status, again.lease_owner) == ("running", "other-host:1:live")
    assert chat_server.requests == [] and Verdict.objects.count() == 0


@pytest.mark.usefixtures("tasks_inline")
def test_the_sweep_resumes_a_run_from_the_verdicts_it_stored(
    judge: Judge,
    dataset: Dataset,
    chat_server: ChatServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The first two pairs were judged (both orders stored) before the worker died.
    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset, limit=2).pk)
    run = services.judge_run_create(judge=judge, dataset=dataset)
    orphaned(run)
    before = len(chat_server.requests)

    with django_capture_on_commit_callbacks(execute=True):  # the task runs after commit
        assert services.judge_runs_recover() == [run.pk]

    run.refresh_from_db()
    assert (run.status, run.attempts, run.done) == ("done", 2, 4)
    assert (run.counts["cache_hits"], run.counts["calls"]) == (4, 4)
    assert len(chat_server.requests) - before == 4  # only the two pairs left
    assert Verdict.objects.filter(judge=judge).count() == 4  # one per pair, none twice


def test_the_sweep_ends_a_dead_run_asked_to_stop_as_stopped(
    judge: Judge, dataset: Dataset, chat_server: ChatServer
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    orphaned(run)
    JudgeRun.objects.filter(pk=run.pk).update(stop_requested=True)

    assert services.judge_runs_recover() == []

    run.refresh_from_db()
    assert run.status == JudgeRun.Status.STOPPED and chat_server.requests == []


def test_the_sweep_fails_a_run_that_lost_its_worker_too_often(
    judge: Judge, dataset: Dataset, chat_server: ChatServer, settings: Any
) -> None:
    settings.TRIBUNAL_JOB_MAX_ATTEMPTS = 3
    run = services.judge_run_create(judge=judge, dataset=dataset)
    orphaned(run, attempts=3)

    assert services.judge_runs_recover() == []

    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert run.error == (
        "its worker stopped (killed or restarted) while it ran, 3 times; the verdicts stored "
        "are kept: start the run again to resume from them"
    )
    assert chat_server.requests == []


def test_the_sweep_leaves_live_runs_alone(judge: Judge, dataset: Dataset) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    held_by_a_live_worker(run)

    assert services.judge_runs_recover() == []

    run.refresh_from_db()
    assert (run.status, run.lease_owner) == ("running", "other-host:1:live")


def test_a_run_records_its_worker_and_heartbeat(judge: Judge, dataset: Dataset) -> None:
    run = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE and run.attempts == 1
    assert run.lease_owner.split(":")[1].isdigit() and run.heartbeat_at is not None


# --- the heartbeat -----------------------------------------------------------------------------


def test_the_heartbeat_renews_the_lease_and_notices_a_takeover(
    judge: Judge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    owner = lease_owner_new()
    JudgeRun.objects.filter(pk=run.pk).update(
        status="running", lease_owner=owner, heartbeat_at=timezone.now() - LONG_AGO
    )
    heartbeat = Heartbeat(JudgeRun, run.pk, owner)

    heartbeat.beat()
    run.refresh_from_db()
    assert timezone.now() - run.heartbeat_at < timedelta(minutes=1)  # type: ignore[operator]
    assert not heartbeat.lost.is_set()

    JudgeRun.objects.filter(pk=run.pk).update(lease_owner="other-host:1:took-over")
    heartbeat.beat()
    assert heartbeat.lost.is_set()


# --- classification runs -----------------------------------------------------------------------


@pytest.mark.usefixtures("tasks_inline")
def test_the_sweep_resumes_a_classification_run_whose_worker_died(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    dataset = make_xstest_dataset()
    run, _ = classification_run_create(dataset=dataset)
    orphaned(run)

    with django_capture_on_commit_callbacks(execute=True):
        assert classification_runs_recover() == [run.pk]

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("done", 2)
    assert ResponseClassification.objects.filter(response__prompt__dataset=dataset).count() == 5


def test_a_classification_run_held_by_a_live_worker_is_left_alone(db: None) -> None:
    dataset = make_xstest_dataset()
    run, _ = classification_run_create(dataset=dataset)
    held_by_a_live_worker(run)

    assert classification_runs_recover() == []
    again, created = classification_run_create(dataset=dataset)

    assert (again.pk, created) == (run.pk, False)
