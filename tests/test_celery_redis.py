"""Production mode end to end: a real Celery worker, a real Redis broker, a real PostgreSQL.

An upload queued by the web process is imported by a separate worker process; the test reads
the result back from the shared database.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from config import celery_app
from corpus.importers.services import import_jobs_create
from corpus.models import HumanVote, ImportJob, Pair
from tests.processes import process_stop

REDIS_URL = os.environ.get("REDIS_URL", "")
DATA = Path(settings.BASE_DIR).parent / "shared" / "data"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.serial,
    pytest.mark.skipif(not REDIS_URL, reason="set REDIS_URL to run against a real Redis"),
]


@pytest.fixture
def worker(transactional_db: None, settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a database it can share: run with PostgreSQL")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "TRIBUNAL_VAR_DIR": str(settings.VAR_DIR),
    }
    with _worker_running(env, "pytest@%h", "WARNING") as proc:
        yield proc


@contextlib.contextmanager
def _worker_running(
    env: dict[str, str], name: str, loglevel: str, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """A solo-pool worker of this checkout, stopped (killed after 20 s) on leaving."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", name,
         f"--loglevel={loglevel}"],
        cwd=settings.BASE_DIR,
        env=env,
        **popen,
    )  # fmt: skip
    try:
        yield proc
    finally:
        process_stop(proc)


def test_it_imports_an_upload_in_a_real_worker(
    worker: subprocess.Popen[bytes], settings: Any, lead: Any
) -> None:
    settings.CELERY_BROKER_URL = REDIS_URL
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, REDIS_URL
    try:
        upload = SimpleUploadedFile(
            "testset-v1.json", (DATA / "pandalm" / "testset-v1.json").read_bytes()
        )
        [job] = import_jobs_create(
            dataset_name="pandalm-worker", fmt="pandalm", files=[upload], user=lead
        )
    finally:
        conf.task_always_eager, conf.broker_url = saved

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        job.refresh_from_db()
        if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
            break
        time.sleep(0.5)

    assert worker.poll() is None, "the worker died"
    assert job.status == ImportJob.Status.DONE, job.errors
    assert Pair.objects.filter(dataset__name="pandalm-worker").count() == 999
    assert HumanVote.objects.filter(pair__dataset__name="pandalm-worker").count() == 3 * 999


def test_a_worker_keeps_logging_after_it_is_ready(tmp_path: Path) -> None:
    """The worker's `worker_ready` handler (config/celery.py) starts the job sweeps. It once
    ran Celery's `import_default_modules`, on which Django configured logging again and
    pointed the root logger at the stderr Celery had redirected into logging: every line the
    worker logged afterwards was dropped, its "ready." first."""
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "CELERY_BROKER_URL": REDIS_URL,
        "TRIBUNAL_VAR_DIR": str(tmp_path),
    }
    with (
        open(log, "wb") as out,
        _worker_running(env, "pytest-log@%h", "INFO", stdout=out, stderr=subprocess.STDOUT) as proc,
    ):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if b" ready." in log.read_bytes():
                break
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert proc.poll() is None, f"the worker exited:\n{text}"
        assert "Connected to redis" in text, text
        assert "pytest-log@" in text and " ready." in text, f"no 'ready.' line:\n{text}"
