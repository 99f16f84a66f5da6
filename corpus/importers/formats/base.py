"""What every parser receives: the file, its side files and a counter for notable facts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from corpus.importers.readers import RecordFile
from corpus.importers.records import Row, RowError


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
