"""Large fixture data written once for the tests of a module that read it, not once per test."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction


class SharedRows:
    """Holds at most one build of a module's fixture data in the test database at a time.

    A build is written in a transaction of its own, which each test's transaction (pytest-django's
    ``db``) then nests in as a savepoint: what a test writes is still rolled back after it, and
    the build is rolled back when another build is asked for, when a test that reads none of
    them comes (``_shared_rows_released`` in tests/conftest.py: it finds the database as empty
    as ever), and when the module ends.

    A module asks for a build (``shared_rows.get(name, build)``) in a function fixture that
    runs before ``db`` (listed before ``db`` in the arguments of the fixture the tests use), and
    hands each test fresh instances of the rows (in-memory objects would carry one test's
    changes to the next).
    """

    active: ClassVar[SharedRows | None] = None  # the one holding a build in this process

    def __init__(self, blocker: Any) -> None:
        self._blocker = blocker  # pytest-django's django_db_blocker
        self._name: str | None = None
        self._atomic: Any = None
        self._value: Any = None

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        if self._name != name:
            self.release()
            with self._blocker.unblock():
                atomic = transaction.atomic()
                atomic._from_testcase = True  # a test's transaction, as TestCase's own are
                atomic.__enter__()
                try:
                    self._value = build()
                except BaseException:
                    atomic.__exit__(*sys.exc_info())
                    raise
            self._name, self._atomic = name, atomic
            SharedRows.active = self
        return self._value

    def release(self) -> None:
        if self._atomic is None:
            return
        atomic, self._atomic, self._name, self._value = self._atomic, None, None, None
        SharedRows.active = None
        with self._blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
