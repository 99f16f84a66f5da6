"""Typed reads of one row's fields, collecting `file:line: field: problem` errors.

No Django here. Each reader returns the value (or None after recording a problem), so a parser
reads every field of a row and reports all its problems at once. Nested places are written as
JSON paths: `prompt[1]`, `votes[0].outcome`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Collection
from typing import Any, Final

from corpus.importers.readers import (
    DuplicateKey,
    Item,
    ReadLimits,
    TooDeep,
    describe,
    loads_strict,
)
from corpus.importers.records import RowError


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class Checker:
    """Reads fields of one Item. An empty CSV cell counts as absent for optional fields."""

    __slots__ = ("data", "errors", "file", "item", "prefix", "textual")

    def __init__(self, file: str, item: Item) -> None:
        self.file = file
        self.item = item
        self.data: dict[str, Any] = item.data
        self.errors: list[RowError] = []
        self.prefix = ""
        self.textual = item.textual

    def nested(self, path: str, data: dict[str, Any]) -> Checker:
        """A checker for an object inside the row (`votes[0]`); its errors join this row's."""
        inner = Checker(self.file, self.item)
        inner.data, inner.errors, inner.prefix, inner.textual = data, self.errors, path, False
        return inner

    def error(self, field: str, problem: str) -> None:
        where = f"{self.prefix}.{field}" if self.prefix else field
        self.errors.append(RowError(self.file, self.item.line_of(where), where, problem))

    def raw(self, name: str, default: Any = MISSING) -> Any:
        value = self.data.get(name, MISSING)
        if value is MISSING:
            if default is MISSING:
                self.error(name, "missing")
            return default
        if default is not MISSING and (value is None or (self.textual and value == "")):
            return default  # an optional field given as null (or an empty CSV cell)
        return value

    def has(self, name: str) -> bool:
        """Whether an optional field is given: present, not null, not an empty CSV cell."""
        value = self.data.get(name, MISSING)
        return value is not MISSING and value is not None and not (self.textual and value == "")

    # Scalars --------------------------------------------------------------------------------

    def _given(self, name: str, default: Any, check: Callable[[Any], Any]) -> Any:
        """The field checked by `check`; an optional field left out is its default, unchecked."""
        value = self.raw(name, default)
        if value is default and value is not MISSING:
            return value
        return check(value)

    def string(
        self, name: str, default: Any = MISSING, *, nullable: bool = False, nonempty: bool = False
    ) -> Any:
        return self._given(
            name,
            default,
            lambda v: self.check_string(name, v, nullable=nullable, nonempty=nonempty),
        )

    def check_string(
        self, where: str, value: Any, *, nullable: bool = False, nonempty: bool = False
    ) -> str | None:
        if value is MISSING:
            return None
        if value is None:
            if not nullable:
                self.error(where, "expected a string, got null")
            return None
        if not isinstance(value, str):
            self.error(where, f"expected a string, got {describe(value)}")
            return None
        if nonempty and not value.strip():
            self.error(where, "must not be empty")
            return None
        return value

    def integer(
        self,
        name: str,
        default: Any = MISSING,
        *,
        minimum: int | None = None,
        choices: Collection[int] | None = None,
    ) -> Any:
        return self._given(
            name, default, lambda v: self.check_integer(name, v, minimum=minimum, choices=choices)
        )

    def check_integer(
        self,
        where: str,
        value: Any,
        *,
        minimum: int | None = None,
        choices: Collection[int] | None = None,
    ) -> int | None:
        if value is MISSING:
            return None
        number = to_int(value, textual=self.textual)
        if number is None:
            if choices is not None:
                expected = ", ".join(str(c) for c in choices)
                self.error(where, f"expected one of {expected}, got {describe(value)}")
            else:
                self.error(where, f"expected an integer, got {describe(value)}")
            return None
        if choices is not None and number not in choices:
            expected = ", ".join(str(c) for c in choices)
            self.error(where, f"expected one of {expected}, got {describe(value)}")
            return None
        if minimum is not None and number < minimum:
            self.error(where, f"must be at least {minimum}, got {number}")
            return None
        return number

    def number(self, name: str, default: Any = MISSING) -> Any:
        return self._given(name, default, lambda v: self.check_number(name, v))

    def check_number(self, where: str, value: Any) -> float | None:
        if value is MISSING or value is None:
            return None
        if isinstance(value, str) and self.textual:
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(where, f"expected a number, got {describe(value)}")
            return None
        if not math.isfinite(value):
            self.error(where, f"expected a finite number, got {value!r}")
            return None
        return float(value)

    def key(self, name: str) -> str | None:
        """A pair key: a non-empty string or an integer."""
        value = self.raw(name)
        if value is MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.error(name, f"expected a string or an integer, got {describe(value)}")
            return None
        key = str(value).strip()
        if not key:
            self.error(name, "must not be empty")
            return None
        if len(key) > 255:
            self.error(name, f"longer than 255 characters ({len(key)})")
            return None
        return key

    def choice(self, name: str, choices: Collection[str], default: Any = MISSING) -> Any:
        return self._given(name, default, lambda v: self.check_choice(name, v, choices))

    def check_choice(self, where: str, value: Any, choices: Collection[str]) -> str | None:
        if value is MISSING:
            return None
        if value not in choices:
            self.error(where, f"expected one of {', '.join(choices)}, got {describe(value)}")
            return None
        return str(value)

    # Structures -----------------------------------------------------------------------------

    def structure(self, name: str, value: Any) -> Any:
        """A list or object; in CSV, the cell holds it as JSON text."""
        if isinstance(value, str) and (self.textual or value[:1] in ("[", "{")):
            try:
                return loads_strict(value)
            except json.JSONDecodeError as exc:
                self.error(name, f"invalid JSON: {exc.msg} at column {exc.colno}")
            except DuplicateKey as exc:
                self.error(name, f"key {exc.key!r} given twice in one object; keep one")
            except TooDeep:
                self.error(name, ReadLimits().depth_problem())
            return MISSING
        return value

    def _structure_of(self, name: str, value: Any, kind: type, expected: str) -> Any:
        """`structure`, or None (a problem recorded) unless it is a `kind`, e.g. "an object"."""
        value = self.structure(name, value)
        if value is MISSING:
            return None
        if not isinstance(value, kind):
            self.error(name, f"expected {expected}, got {describe(value)}")
            return None
        return value

    def obj(self, name: str, value: Any) -> dict[str, Any] | None:
        return self._structure_of(name, value, dict, "an object")

    def turns(self, name: str, *, null_as_empty: bool = True) -> list[str] | None:
        """A conversation side as a list of turn texts (a bare string is one turn)."""
        value = self.raw(name)
        if value is MISSING:
            return None
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [value]
        value = self._structure_of(name, value, list, "a list of turns")
        if value is None:
            return None
        if not value:
            self.error(name, "expected at least one turn, got an empty list")
            return None
        turns: list[str] = []
        ok = True
        for i, turn in enumerate(value):
            if turn is None and null_as_empty:
                turns.append("")
            elif isinstance(turn, str):
                turns.append(turn)
            else:
                self.error(f"{name}[{i}]", f"expected a string, got {describe(turn)}")
                ok = False
        return turns if ok else None


def to_int(value: Any, *, textual: bool = False) -> int | None:
    """An integer from an int, an integral float (Parquet via pandas) or, in CSV, digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and textual:
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None
