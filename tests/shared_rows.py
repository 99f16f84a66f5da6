"""Large fixture data written once for the tests of a module that read it, not once per test."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.db import transaction


class SharedRows:
    """Holds at most one build of a module's fixture data in the test database at a time.

    A build is written in a transaction of its own, which each test's transaction (pytest-django's
    ``db``) then nests in as a savepoint: what a test writes is still rolled back after it, and
    the build is rolled back when another build is asked for, when a test that reads none of
    them comes (it finds the database as empty as ever), and when the module ends.

    Ask for a build in a function fixture that runs before ``db`` (list it before ``db`` in
    the fixture's arguments) and hand each test fresh instances of its rows (the in-memory
    objects would otherwise carry one test's changes to the next).
    """

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
                atomic.__enter__()
                try:
                    self._value = build()
                except BaseException:
                    atomic.__exit__(*sys.exc_info())
                    raise
            self._name, self._atomic = name, atomic
        return self._value

    def release(self) -> None:
        if self._atomic is None:
            return
        atomic, self._atomic, self._name, self._value = self._atomic, None, None, None
        with self._blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
