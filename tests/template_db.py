"""Test databases copied from a migrated template instead of migrated again in every process.

Running the migrations takes 3.3 s a process on SQLite and 3.5 s on PostgreSQL, 80% of it
Django rendering each migration's model states in Python, and a test run starts several
processes that need a database: `make test-fast` three (two pytest-xdist workers and the
serial pass), `make test` on both databases in `.ci/run` six. Here the first process that
needs a test database migrates it as Django always does (`create_test_db`), then keeps a copy
named by a hash of every installed app's migration files and Django's version. Every other
process, in this run and in later ones, starts from that copy:

- SQLite: the copy is a file under `.pytest_cache/`; a process loads it into its in-memory
  test database with SQLite's backup API.
- PostgreSQL: the copy is a database, `tribunal_template_<hash>`; a process creates its test
  database with `CREATE DATABASE ... TEMPLATE` (what Django's own parallel runner does). A
  newer template drops the older ones it can.

A changed migration changes the hash, so a copy is never older than the migrations it stands
for; a copy is written under a temporary name and renamed once whole, and its writers take a
lock (a file lock in this checkout; on PostgreSQL the rename itself decides between
checkouts, and a process whose template another checkout's newer migrations dropped meanwhile
migrates its database as before). Everything else `create_test_db` does (the cache table, the
serialized contents, the settings) happens as before. `--reuse-db`, `--no-migrations` and a
file-based SQLite test database keep Django's own path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError
from django.db.backends.base.creation import BaseDatabaseCreation

TEMPLATE_PREFIX = "tribunal_template_"
_ORIGINAL = BaseDatabaseCreation.create_test_db


def migration_folders() -> dict[str, Path]:
    """Every installed app's migration folder by app label (Django's and other packages' too:
    their migrations change with their versions)."""
    folders = {}
    for config in apps.get_app_configs():
        folder = Path(config.path) / "migrations"
        if folder.is_dir():
            folders[config.label] = folder
    return folders


def migrations_key(folders: dict[str, Path] | None = None) -> str:
    """A hash of Django's version and every migration file in `folders`."""
    digest = hashlib.sha256(django.get_version().encode())
    for label, folder in sorted((folders or migration_folders()).items()):
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{label}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _folder() -> Path:
    folder = Path(settings.BASE_DIR) / ".pytest_cache" / "tribunal-test-db"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    with open(_folder() / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _finish(creation: Any, name: str, serialize: bool) -> str:
    """The rest of Django's `create_test_db`, after the migrations."""
    connection = creation.connection
    connection.close()
    settings.DATABASES[connection.alias]["NAME"] = name
    connection.settings_dict["NAME"] = name
    if serialize:
        connection._test_serialized_contents = creation.serialize_db_to_string()
    call_command("createcachetable", database=connection.alias)
    connection.ensure_connection()
    return name


def _sqlite(creation: Any, verbosity: int, autoclobber: bool, serialize: bool) -> str:
    path = _folder() / f"sqlite-{migrations_key()}.sqlite3"
    with _locked(path.name):
        if not path.exists():
            name = _ORIGINAL(creation, verbosity, autoclobber, serialize, False)
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            with contextlib.closing(sqlite3.connect(partial)) as copy:
                creation.connection.ensure_connection()
                creation.connection.connection.backup(copy)
            os.replace(partial, path)
            return name
    name = creation._get_test_db_name()  # in memory: nothing to create or erase first
    creation.connection.close()
    creation.connection.settings_dict["NAME"] = name
    creation.connection.ensure_connection()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as source:
        source.backup(creation.connection.connection)
    return _finish(creation, name, serialize)


def _postgres_exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def _postgres(creation: Any, verbosity: int, autoclobber: bool, serialize: bool) -> str:
    template = f"{TEMPLATE_PREFIX}{migrations_key()}"
    quote = creation._quote_name
    with _locked(template):
        with creation._nodb_cursor() as cursor:
            ready = _postgres_exists(cursor, template)
        if not ready:
            name = _ORIGINAL(creation, verbosity, autoclobber, serialize, False)
            creation.connection.close()  # a template has no other session
            partial = f"{template}_{os.getpid()}"
            with creation._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quote(partial)}")
                cursor.execute(f"CREATE DATABASE {quote(partial)} TEMPLATE {quote(name)}")
                if _postgres_exists(cursor, template):  # another checkout made it meanwhile
                    cursor.execute(f"DROP DATABASE {quote(partial)}")
                else:
                    cursor.execute(f"ALTER DATABASE {quote(partial)} RENAME TO {quote(template)}")
                _drop_older(cursor, template, quote)
            creation.connection.ensure_connection()
            return name
        name = creation._get_test_db_name()
        creation.connection.close()
        with creation._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
            try:
                cursor.execute(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(template)}")
            except DatabaseError:  # dropped meanwhile by a checkout with other migrations
                copied = False
            else:
                copied = True
    if not copied:
        return _ORIGINAL(creation, verbosity, autoclobber, serialize, False)
    return _finish(creation, name, serialize)


def _drop_older(cursor: Any, template: str, quote: Any) -> None:
    """Templates of earlier migrations, where no session holds them."""
    cursor.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
        [f"{TEMPLATE_PREFIX}%", template],
    )
    for (older,) in cursor.fetchall():
        with contextlib.suppress(Exception):
            cursor.execute(f"DROP DATABASE {quote(older)}")


def create_test_db(
    self: BaseDatabaseCreation,
    verbosity: int = 1,
    autoclobber: bool = False,
    serialize: bool = True,
    keepdb: bool = False,
) -> str:
    """Django's `create_test_db`, from the template where one serves (module docstring)."""
    settings_dict = self.connection.settings_dict
    vendor = self.connection.vendor
    own_path = (
        keepdb
        or settings_dict["TEST"].get("MIGRATE") is False
        or vendor not in ("sqlite", "postgresql")
        or (vendor == "sqlite" and not self.is_in_memory_db(self._get_test_db_name()))
    )
    if own_path:
        return _ORIGINAL(self, verbosity, autoclobber, serialize, keepdb)
    if vendor == "sqlite":
        return _sqlite(self, verbosity, autoclobber, serialize)
    return _postgres(self, verbosity, autoclobber, serialize)


def install() -> None:
    BaseDatabaseCreation.create_test_db = create_test_db  # type: ignore[method-assign]
