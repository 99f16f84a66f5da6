"""Test databases are copied from a migrated template (tests/template_db.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import template_db


def _folders(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return {label.name: label for label in root.iterdir()}


def test_the_key_changes_with_any_migration_file_and_only_then(tmp_path: Path) -> None:
    files = {"corpus/0001_initial.py": "a = 1\n", "judges/0001_initial.py": "b = 2\n"}
    key = template_db.migrations_key(_folders(tmp_path / "one", files))
    assert template_db.migrations_key(_folders(tmp_path / "same", files)) == key
    edited = {**files, "judges/0001_initial.py": "b = 3\n"}
    assert template_db.migrations_key(_folders(tmp_path / "edited", edited)) != key
    added = {**files, "judges/0002_more.py": ""}
    assert template_db.migrations_key(_folders(tmp_path / "added", added)) != key
    moved = {"corpus/0001_initial.py": "b = 2\n", "judges/0001_initial.py": "a = 1\n"}
    assert template_db.migrations_key(_folders(tmp_path / "moved", moved)) != key


def test_it_hashes_every_installed_apps_migrations() -> None:
    folders = template_db.migration_folders()
    assert {"analysis", "annotation", "corpus", "judges", "auth", "authtoken"} <= set(folders)


@pytest.mark.django_db
@pytest.mark.every_database
def test_the_database_the_tests_run_on_has_every_migration_applied() -> None:
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    applied = executor.recorder.applied_migrations()
    assert ("corpus", "0004_pair_search") in applied  # data and triggers, not only tables
    tables = connection.introspection.table_names()
    assert ("corpus_pair_fts" if connection.vendor == "sqlite" else "corpus_pair_search") in tables
