"""The database a bench's child processes run against: a fresh PostgreSQL database on the
server ``DATABASE_URL`` names, or else a SQLite file, migrated, and dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def postgres_url() -> str | None:
    """``DATABASE_URL`` when it names a PostgreSQL server."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def database_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin(url: str, sql: str) -> None:
    """Run ``sql`` on the server's maintenance database (CREATE and DROP DATABASE)."""
    import psycopg

    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def database_exists(url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


@contextmanager
def bench_database(
    tmp: str,
    name: str,
    *,
    postgres: str | None,
    keep: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Iterator[dict[str, str]]:
    """The environment for child processes (``environ``, default this process's) with a
    migrated database: ``name`` on the ``postgres`` server (reused when ``keep`` and it
    exists; dropped afterwards unless ``keep``), else a SQLite file in ``tmp``."""
    env = {**(os.environ if environ is None else environ)}
    env.update(TRIBUNAL_VAR_DIR=tmp, DJANGO_SETTINGS_MODULE="config.settings")
    if postgres:
        env["DATABASE_URL"] = database_url(postgres, name)
        if not (keep and database_exists(postgres, name)):
            admin(postgres, f"DROP DATABASE IF EXISTS {name}")
            admin(postgres, f"CREATE DATABASE {name}")
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v", "0"], env=env, check=True)
        yield env
    finally:
        if postgres and not keep:
            admin(postgres, f"DROP DATABASE IF EXISTS {name}")
