"""Shared fixtures: the personas every permission test is written against."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from config import tasks as config_tasks
from config.roles import ensure_groups
from config.tasks import Job
from tests import template_db
from tests.factories import UserFactory
from tests.shared_rows import SharedRows

# Fixtures through which a test reaches the database (pytest-django refuses database access to
# any test without one of them or the django_db marker).
_DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",  # pytest-django adds transactional_db to it at setup
    }
)


def _needs_database(item: pytest.Item) -> bool:
    return item.get_closest_marker("django_db") is not None or bool(
        _DB_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


SERIAL_MARK = "pytest.mark.serial"


def _serial_files_found(items: list[pytest.Item]) -> None:
    """The Makefile's serial pass collects only the files containing `pytest.mark.serial`
    (SERIAL_TESTS): a test marked serial otherwise would run in neither pass."""
    for path in {item.path for item in items if item.get_closest_marker("serial") is not None}:
        if SERIAL_MARK not in path.read_text(encoding="utf-8"):
            raise pytest.UsageError(f"{path}: mark its serial tests with {SERIAL_MARK}")


# Modules holding slow tests only, whose collection itself takes seconds (schemathesis builds
# every case of its coverage phase then), with the marks their tests carry: left uncollected by
# a run whose -m expression selects no test with those marks (`make test-fast`).
SLOW_TO_COLLECT = {"test_api_schema_boundaries.py": frozenset({"slow", "urls"})}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    marks = SLOW_TO_COLLECT.get(collection_path.name)
    if marks is None or not config.option.markexpr:
        return None
    from _pytest.mark.expression import Expression  # pytest's own -m evaluation (pinned)

    selected = Expression.compile(config.option.markexpr).evaluate(lambda name, **_: name in marks)
    return None if selected else True


def _serial_tests_need_redis(items: list[pytest.Item]) -> None:
    """A `serial` test runs on a real Redis: without REDIS_URL it is skipped, so the Makefile
    leaves out the serial pass (a process that would start only to skip them)."""
    if os.environ.get("REDIS_URL"):
        return
    skip = pytest.mark.skip(reason="a serial test needs a real Redis: set REDIS_URL")
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(skip)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a database other than SQLite, run only the tests that meet the database.

    The README's test command runs twice, on SQLite and on PostgreSQL (`.ci/run`). A test that
    cannot touch the database (no django_db marker, no database fixture: pytest-django would
    refuse it access) computes the same thing on both, so it runs in the SQLite pass only.
    Kept on every database: the `serial` tests (real Redis and workers, skipped without
    REDIS_URL) and those marked `every_database` (whatever else makes their outcome depend on
    DATABASE_URL or REDIS_URL). `TRIBUNAL_TEST_ALL=1` runs everything on any database.
    """
    _serial_tests_need_redis(items)
    vendor = django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if vendor == "sqlite3" or os.environ.get("TRIBUNAL_TEST_ALL") == "1":
        return
    keep: list[pytest.Item] = []
    ran_on_sqlite: list[pytest.Item] = []
    for item in items:
        independent = not _needs_database(item) and all(
            item.get_closest_marker(name) is None for name in ("serial", "every_database")
        )
        (ran_on_sqlite if independent else keep).append(item)
    if ran_on_sqlite:
        config.hook.pytest_deselected(items=ran_on_sqlite)
        items[:] = keep


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Test databases are copied from a migrated template (tests/template_db.py), not migrated
    again in each test process."""
    template_db.install()


@pytest.fixture(autouse=True)
def _tasks_recorded(request: pytest.FixtureRequest, settings: Any, monkeypatch: Any) -> list[Job]:
    """Tasks are recorded, not run: a test asserts what was enqueued (`tasks_sent`) and calls
    a task body directly where it tests the body. Tests about what tasks do end to end opt in
    to running them inline with the `tasks_inline` fixture."""
    settings.CELERY_BROKER_URL = None
    settings.TRIBUNAL_TASKS_INLINE = False
    # Snapshots computed in tests draw fewer resamples (tests of the figures themselves pass
    # their own n_boot).
    settings.TRIBUNAL_SNAPSHOT_BOOT = 50
    # A test that asks for two snapshots of a subject gets both at once (tests of the interval
    # set their own).
    settings.TRIBUNAL_SNAPSHOT_INTERVAL = 0
    # Personas are created in nearly every test; the default hasher costs 0.5 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Each test Client builds its own middleware, and WhiteNoise indexed every static file
    # (about 200, with a stat and headers each) for each one: 410 indexes in the fast suite,
    # about a twentieth of its CPU. Files are looked up when asked for instead (the tests of
    # serving static files as deployed set it back).
    settings.WHITENOISE_AUTOREFRESH = True
    cache.clear()  # pending flags and throttle counts of earlier tests
    monkeypatch.setattr(config_tasks, "_outbox", {})  # what an earlier test's broker refused
    monkeypatch.setattr(config_tasks, "_broker_down_until", 0.0)
    sent: list[Job] = []
    if "tasks_inline" not in request.fixturenames:
        monkeypatch.setattr(config_tasks, "_run_here", sent.append)
    return sent


@pytest.fixture(scope="module")
def shared_rows(django_db_blocker: Any) -> Iterator[SharedRows]:
    """Fixture data written once for the tests of a module that read it (tests/shared_rows.py)."""
    rows = SharedRows(django_db_blocker)
    yield rows
    rows.release()


@pytest.fixture(autouse=True)
def _shared_rows_released(request: pytest.FixtureRequest) -> None:
    """A test that reads none of its module's shared rows finds the database without them."""
    if SharedRows.active is not None and "shared_rows" not in request.fixturenames:
        SharedRows.active.release()


@pytest.fixture
def tasks_sent(_tasks_recorded: list[Job]) -> list[Job]:
    """The tasks enqueued (and not run) so far, in order, once their transaction committed
    (inside a test's transaction: within `django_capture_on_commit_callbacks(execute=True)`)."""
    return _tasks_recorded


@pytest.fixture
def tasks_inline(settings: Any) -> None:
    """Run enqueued tasks inline once their transaction commits (imports, runs, snapshots)."""
    settings.TRIBUNAL_TASKS_INLINE = True


def _member(username: str, *, lead: bool) -> User:
    lead_group, annotator_group = ensure_groups()
    user = UserFactory(username=username)
    user.groups.add(lead_group if lead else annotator_group)
    return user


@pytest.fixture
def lead(db: None) -> User:
    return _member("lena-lead", lead=True)


@pytest.fixture
def annotator(db: None) -> User:
    return _member("ana-annotator", lead=False)


@pytest.fixture
def other_annotator(db: None) -> User:
    return _member("otto-annotator", lead=False)


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(username="olga-outsider")


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lead_client(lead: User) -> Client:
    return _client_for(lead)


@pytest.fixture
def annotator_client(annotator: User) -> Client:
    return _client_for(annotator)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return _client_for(outsider)


@pytest.fixture
def lead_token_client(lead: User) -> Client:
    """The lead as an API caller: authenticated by a token, with no session."""
    from rest_framework.authtoken.models import Token

    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=lead).key}")
