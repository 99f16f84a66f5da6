"""The one task path (config.tasks): coalescing across processes on a shared Redis, and a
broker outage that costs a label one refused connection and catches up when it returns."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from kombu import pools as kombu_pools

from analysis import services
from analysis.models import MetricSnapshot
from analysis.tasks import snapshot_refresh_task
from config import leases
from config import tasks as config_tasks
from config.celery import app as celery_app
from config.settings import cache_location
from tests.analysis.test_snapshot import AuditData, build_audit

REDIS_URL = os.environ.get("REDIS_URL", "")
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1

# The tests on a real Redis run in the serial pass (they empty its database and repoint Celery's
# global app); the others, with no Redis, run with the rest of the suite.
on_redis = pytest.mark.serial


def _redis() -> Any:
    if not REDIS_URL:
        pytest.skip("set REDIS_URL to run against a real Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    client.flushdb()
    return client


@pytest.fixture
def data(db: None) -> AuditData:
    return build_audit()


@pytest.fixture
def broker_at() -> Iterator[Callable[[str], None]]:
    """Point Celery's publishing at a broker URL (the test settings run tasks eagerly)."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url

    def point(url: str) -> None:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        kombu_pools.reset()  # kombu's registry would hand back the closed producer pool
        conf.task_always_eager, conf.broker_url = False, url

    yield point
    point(saved[1])
    conf.task_always_eager = saved[0]


@pytest.fixture
def broker_away(settings: Any, broker_at: Callable[[str], None]) -> None:
    """The broker is away (nothing listens at CLOSED); the retry thread stays out of the test."""
    settings.CELERY_BROKER_URL = CLOSED
    settings.TRIBUNAL_TASKS_RETRY_SECONDS = 3600
    broker_at(CLOSED)


def test_the_cache_is_the_brokers_redis_unless_cache_url_says_otherwise() -> None:
    assert cache_location(None, "redis://r:6379/0") == "redis://r:6379/0"
    assert cache_location("redis://c:6379/2", "redis://r:6379/0") == "redis://c:6379/2"
    assert cache_location(None, "amqp://guest@q//") is None
    assert cache_location(None, None) is None


_SUBMITTER = textwrap.dedent(
    """
    import os, sys, time
    import django
    django.setup()
    from analysis import services
    from annotation.models import Audit
    start, repeats = float(sys.argv[1]), int(sys.argv[2])
    while time.time() < start:
        time.sleep(0.005)
    for _ in range(repeats):
        for pk in (1, 2, 3):
            services.snapshot_request(audit=Audit(pk=pk))  # outside a transaction: at once
    """
)


@on_redis
def test_a_burst_from_several_processes_queues_one_task_per_subject(tmp_path: Any) -> None:
    client = _redis()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CELERY_BROKER_URL": REDIS_URL,  # no CACHE_URL: the cache defaults to the broker's Redis
        "TRIBUNAL_SNAPSHOT_DELAY": "30",  # no worker here; the flags stay up for the burst
        "TRIBUNAL_VAR_DIR": str(tmp_path),
    }
    env.pop("CACHE_URL", None)
    processes, repeats = 4, 25
    start = time.time() + 8  # every process has set Django up by then
    # The submitters touch no table, but asking whether they are in a transaction opens a
    # connection; each has a database file of its own, away from the test's and from each
    # other's (four processes switching one new file to WAL at once find it locked).
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SUBMITTER, str(start), str(repeats)],
            cwd=django_settings.BASE_DIR,
            env={**env, "DATABASE_URL": f"sqlite:///{tmp_path / f'submitter-{i}.sqlite3'}"},
        )
        for i in range(processes)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * processes

    messages = [json.loads(raw) for raw in client.lrange("celery", 0, -1)]
    subjects = Counter((m["headers"]["task"], json.loads(_body(m))[1]["pk"]) for m in messages)
    # 300 requests (4 processes x 25 x 3 subjects), one queued task per subject.
    assert subjects == Counter({("analysis.snapshot_refresh", pk): 1 for pk in (1, 2, 3)})
    client.flushdb()


def _body(message: dict[str, Any]) -> str:
    import base64

    return base64.b64decode(message["body"]).decode()


@pytest.mark.usefixtures("broker_away")
def test_a_label_costs_one_refused_connection_while_the_broker_is_away(
    data: AuditData, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    other = data.audit.dataset
    with mock.patch.object(config_tasks, "_apply_async", wraps=config_tasks._apply_async) as sent:
        for _ in range(10):  # ten labels, each its own commit; no exception reaches them
            with django_capture_on_commit_callbacks(execute=True):
                services.snapshot_request(audit=data.audit)
        with django_capture_on_commit_callbacks(execute=True):
            services.snapshot_request(dataset=other)

    assert sent.call_count == 1  # only the first label tried the broker
    assert config_tasks.outbox_size() == 2  # recorded: one per subject
    assert leases._SWEEPS["config.tasks.outbox"] is config_tasks.outbox_flush

    # The broker is back: the sweep (or the next healthy publish) sends what waited.
    with mock.patch.object(celery_app, "send_task") as published:
        assert config_tasks.outbox_flush() == 0
    assert sorted(c.kwargs["kwargs"]["kind"] for c in published.call_args_list) == [
        "audit",
        "dataset",
    ]
    snapshot_refresh_task(**published.call_args_list[0].kwargs["kwargs"])  # the worker
    assert MetricSnapshot.objects.filter(audit=data.audit).exists()


@on_redis
@pytest.mark.usefixtures("broker_away")
def test_the_report_catches_up_on_a_real_broker_once_it_returns(
    data: AuditData,
    broker_at: Callable[[str], None],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = _redis()
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)
    assert config_tasks.outbox_size() == 1 and client.llen("celery") == 0

    broker_at(REDIS_URL)  # the broker returns
    assert config_tasks.outbox_flush() == 0
    [raw] = client.lrange("celery", 0, -1)
    kwargs = json.loads(_body(json.loads(raw)))[1]
    assert kwargs == {"kind": "audit", "pk": data.audit.pk, "force": False}
    snapshot_refresh_task(**kwargs)  # what the worker does with it
    assert MetricSnapshot.objects.filter(audit=data.audit).exists()
    client.flushdb()


def test_a_worker_process_puts_its_start_up_objects_out_of_the_collectors_reach() -> None:
    from config.celery import startup_objects_freeze

    before = gc.get_freeze_count()
    try:
        startup_objects_freeze()
        assert gc.get_freeze_count() > max(before, 10_000)  # Django and the apps at least
    finally:
        gc.unfreeze()
