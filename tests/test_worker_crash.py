"""A real Celery worker killed (SIGKILL) in the middle of a job, on real Redis and PostgreSQL.

For a judge run, an import and a classification run: start a worker, queue the job, wait
until it is part-way, kill the worker's whole process group, start a new worker, and check
that within a minute the job is done (resumed from what it stored) or failed with the
reason, and that no verdict, vote or class was stored twice. The broker's own redelivery of
the killed task (visibility timeout 20 s here) is waited for too, so a late second delivery
is shown to change nothing.

Needs REDIS_URL (e.g. redis://127.0.0.1:6379/8; the test empties that database) and
DATABASE_URL=postgres://... (workers and the test share the database).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from kombu import pools as kombu_pools

from config import celery_app
from corpus.importers.services import import_jobs_create
from corpus.models import Dataset, HumanVote, ImportJob, Pair
from judges import services
from judges.classification import classification_run_start
from judges.models import ClassificationRun, JudgeRun, ResponseClassification, Verdict
from tests.factories import DatasetFactory, PromptFactory, ResponseFactory
from tests.judges.chat_server import ChatServer, RecordedRequest, Reply, chat_server
from tests.judges.conftest import make_pairs, picky_judge

REDIS_URL = os.environ.get("REDIS_URL", "")
__all__ = ["chat_server"]  # the fixture
LEASE_SECONDS = 6
RECOVERY_S = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.serial,
    pytest.mark.skipif(not REDIS_URL, reason="set REDIS_URL to run against a real Redis"),
]


class Workers:
    """Celery worker processes on the test's database and broker; killed as a group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, []  # type: ignore[var-annotated]

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork",
             "--concurrency=1", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"crash{len(self.procs)}@%h", "--loglevel=WARNING"],
            cwd=django_settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes the pool too
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def workers(transactional_db: None, settings: Any, tmp_path: Path) -> Iterator[Workers]:
    if connection.vendor != "postgresql":
        pytest.skip("workers need a database they can share: set DATABASE_URL=postgres://...")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_VISIBILITY_TIMEOUT": "20",
        "TRIBUNAL_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "TRIBUNAL_VAR_DIR": str(settings.VAR_DIR),
        "TRIBUNAL_TORCH_THREADS": "1",
    }
    settings.CELERY_BROKER_URL = REDIS_URL
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, REDIS_URL
    _drop_connections()  # a pool an earlier test opened would publish to its broker instead
    pool = Workers(env, tmp_path)
    try:
        yield pool
    finally:
        conf.task_always_eager, conf.broker_url = saved
        _drop_connections()
        pool.stop_all()
        client.flushdb()


def _drop_connections() -> None:
    """Forget Celery's connection and producer pools, so the next publish uses the broker URL
    the configuration now names."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu_pools.reset()  # kombu's registry would hand back the closed producer pool


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def broker_drained() -> bool:
    """No task waiting or taken-but-unacknowledged (a killed task's message is redelivered
    after the visibility timeout; this waits for that copy to have run too)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def crash_and_recover(
    workers: Workers, part_way: Callable[[], bool], final: Callable[[], bool], what: str
) -> None:
    first = workers.start()
    wait_for(f"{what} part-way", part_way, 180)
    workers.kill(first)
    workers.start()
    wait_for(f"{what} done or failed after the new worker started", final, RECOVERY_S)
    wait_for("the broker's redelivery of the killed task", broker_drained, 90)


def test_a_judge_run_resumes_after_its_worker_is_killed(
    workers: Workers, chat_server: ChatServer
) -> None:
    def slow_picky(request: RecordedRequest) -> Reply:
        return replace(picky_judge(request), delay_s=0.4)

    chat_server.responder = slow_picky
    dataset = DatasetFactory(name="crash-judge")
    texts = [(f"Question {i}?", f"answer {i}, correct", f"answer {i}") for i in range(20)]
    pairs = make_pairs(dataset, texts)
    config = services.judge_config_build(
        preset_id="mt-bench", base_url=chat_server.base_url, model_id="picky-1", seed=7,
        max_concurrency=1, timeout_s=10.0,
    )  # fmt: skip
    judge = services.judge_version_for(config, "picky")
    run = services.judge_run_start(judge=judge, dataset=dataset)

    def refreshed() -> JudgeRun:
        return JudgeRun.objects.get(pk=run.pk)

    crash_and_recover(
        workers,
        part_way=lambda: refreshed().status == "running" and refreshed().done >= 2,
        final=lambda: refreshed().status in ("done", "failed"),
        what="the judge run",
    )

    run = refreshed()
    assert (run.status, run.error, run.done) == ("done", "", 20)
    assert run.attempts == 2
    assert run.counts["cache_hits"] >= 4  # the orders stored before the kill were not asked again
    verdicts = Verdict.objects.filter(judge=judge)
    assert verdicts.count() == 20
    assert sorted(verdicts.values_list("pair_id", flat=True)) == sorted(p.pk for p in pairs)
    assert set(verdicts.values_list("outcome", flat=True)) == {"A"}


def test_an_import_ends_failed_with_the_reason_after_its_worker_is_killed(
    workers: Workers, lead: Any
) -> None:
    rows = ["pair_id,prompt,response_a,response_b,human_vote"]
    rows += [f"c-{i},prompt {i},answer a {i},answer b {i},A" for i in range(400_000)]
    upload = SimpleUploadedFile("big.csv", ("\n".join(rows) + "\n").encode())
    [job] = import_jobs_create(
        dataset_name="crash-import", fmt="generic", files=[upload], user=lead
    )

    def refreshed() -> ImportJob:
        return ImportJob.objects.get(pk=job.pk)

    crash_and_recover(
        workers,
        part_way=lambda: refreshed().status == "running" and refreshed().rows_done > 0,
        final=lambda: refreshed().status in ("done", "failed"),
        what="the import",
    )

    job = refreshed()
    dataset = Dataset.objects.get(name="crash-import")
    if job.status == ImportJob.Status.DONE:  # the broker's redelivery got there first
        assert Pair.objects.filter(dataset=dataset).count() == 400_000
        assert HumanVote.objects.filter(pair__dataset=dataset).count() == 400_000
    else:
        assert job.errors == [
            "big.csv: import: the worker importing this file stopped (killed, restarted or out "
            "of memory) before it finished; nothing was written: import the file again"
        ]
        assert Pair.objects.filter(dataset=dataset).count() == 0
        assert HumanVote.objects.filter(pair__dataset=dataset).count() == 0


def test_a_classification_run_resumes_after_its_worker_is_killed(workers: Workers) -> None:
    dataset = DatasetFactory(name="crash-classify")
    total = 700
    for i in range(total):
        prompt = PromptFactory(dataset=dataset, text=f"Question number {i}?")
        text = "Sorry, but I can't assist with that." if i % 3 == 0 else f"Here is answer {i}."
        ResponseFactory(prompt=prompt, text=text, model_name="m")
    run, _ = classification_run_start(dataset=dataset)

    def refreshed() -> ClassificationRun:
        return ClassificationRun.objects.get(pk=run.pk)

    crash_and_recover(
        workers,
        part_way=lambda: refreshed().status == "running" and 0 < refreshed().done < total,
        final=lambda: refreshed().status in ("done", "failed"),
        what="the classification run",
    )

    run = refreshed()
    assert (run.status, run.error, run.attempts) == ("done", "", 2)
    assert run.counts["already_done"] >= 256  # the first batch, stored before the kill
    classes = ResponseClassification.objects.filter(response__prompt__dataset=dataset)
    assert classes.count() == total
    assert classes.values("response").distinct().count() == total
