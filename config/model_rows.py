"""Model instances from one hand-written query, for the few hot paths where the ORM's cost of
building SQL is most of a request's CPU (each use says what `bench/` measured).

``ModelColumns((Assignment, "s"), (AuditItem, "i"))`` gives the SELECT list of those models'
columns under those table aliases (``.select``), built from the models' metadata, so a new
field is picked up without editing SQL; ``.load(row)`` turns a fetched row back into the
instances, through the same converters the ORM applies (JSON, and dates and UUIDs on SQLite),
and returns the values after the models' columns (extra expressions the query selected).
Every user keeps an ORM version of its query as the readable reference, and a test checks
that both give the same objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


class ModelColumns:
    def __init__(self, *tables: tuple[type[Model], str]) -> None:
        self.tables = tables

    @cached_property
    def select(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(
            f"{alias}.{quote(str(field.column))}"
            for model, alias in self.tables
            for field in model._meta.concrete_fields
        )

    def _converters(self, db: Any) -> list[tuple[Any, list[Any]]]:
        """Per column, the expression and the converters the ORM would apply; kept on this
        thread's connection `db` (converters are the connection's methods)."""
        kept: dict[int, list[tuple[Any, list[Any]]]] = db.__dict__.setdefault(
            "_tribunal_model_rows", {}
        )
        found = kept.get(id(self))
        if found is None:
            found = []
            for model, alias in self.tables:
                for field in model._meta.concrete_fields:
                    col = field.get_col(alias)
                    steps = db.ops.get_db_converters(col) + col.get_db_converters(db)
                    found.append((col, steps))
            kept[id(self)] = found
        return found

    def load(self, row: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """(the instances in the order of the tables, the row's values after their columns)."""
        db = connections[DEFAULT_DB_ALIAS]  # this thread's connection
        converters = self._converters(db)
        values = list(row[: len(converters)])
        for i, (col, steps) in enumerate(converters):
            for step in steps:
                values[i] = step(values[i], col, db)
        made: list[Any] = []
        start = 0
        for model, _ in self.tables:
            fields = model._meta.concrete_fields
            names = [field.attname for field in fields]
            made.append(model.from_db(connection.alias, names, values[start : start + len(names)]))
            start += len(names)
        return made, list(row[len(converters) :])
