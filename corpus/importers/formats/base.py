"""What every parser receives (the file, its side files and a counter for notable facts), and
the loops over a file's items that parsers share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from corpus.importers.fields import Checker
from corpus.importers.readers import Item, RecordFile
from corpus.importers.records import Row, RowError

T = TypeVar("T")


@dataclass
class ParseOptions:
    """Side files some formats join in (MT-Bench, Arena-Hard-Auto: model answers and
    questions) and Arena-Hard-Auto's baseline model (empty: the format's default)."""

    answers: list[RecordFile] = field(default_factory=list)
    questions: list[RecordFile] = field(default_factory=list)
    baseline: str = ""


@dataclass
class ParseContext:
    source: RecordFile
    options: ParseOptions = field(default_factory=ParseOptions)
    stats: Counter[str] = field(default_factory=Counter)  # format-specific facts worth showing


Parser = Callable[[ParseContext], Iterator[Row | RowError]]


def per_item(
    source: RecordFile,
    read: Callable[[Checker], Iterable[T]],
    *,
    entries: Iterable[Item | RowError] | None = None,
    required: Sequence[str] = (),
    allowed: Collection[str] | None = None,
) -> Iterator[T | RowError]:
    """What `read` makes of each item of `source` (given a Checker of it), in file order; an
    entry the file itself refused (a bad line, a missing column) passes through as it is.
    `entries` are the file's items when already read (else `source.items(...)`)."""
    if entries is None:
        entries = source.items(required=required, allowed=allowed)
    for entry in entries:
        if isinstance(entry, RowError):
            yield entry
        else:
            yield from read(Checker(source.name, entry))


def side_files_read(
    files: list[RecordFile], read: Callable[[Checker], None], *, required: Sequence[str] = ()
) -> list[RowError]:
    """Read every row of side files (model answers, questions) with `read`, which keeps what
    it finds; the rows' problems, if any."""

    def problems(c: Checker) -> list[RowError]:
        read(c)
        return c.errors

    return [error for source in files for error in per_item(source, problems, required=required)]
