"""Reading a data file row by row, each row with the line it starts on.

No Django here. One `RecordFile` reads JSON lines, a JSON array, CSV or Parquet (chosen by
the file's name; `.gz` is decompressed on the fly) and yields `Item`s, or `RowError`s naming
the place (`file:line: field: problem`). Files are streamed, except JSON arrays, which have to
be read whole to be parsed at all.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from corpus.importers.records import RowError

# Model answers run to tens of kilobytes; the csv module's default cap is 128 KB per field.
csv.field_size_limit(2**31 - 1)

_WS = re.compile(r"\s*")
_KINDS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
SUFFIXES = tuple(sorted(_KINDS))


def describe(value: Any) -> str:
    """A short rendering of a value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


@dataclass(slots=True)
class Item:
    """One row's data and where it starts; for a JSON array, the span to find a field's line."""

    line: int
    data: Any
    textual: bool = False  # CSV: every value is a string, an empty cell means "not given"
    doc: str | None = None
    start: int = 0
    end: int = 0

    def line_of(self, field: str) -> int:
        """The line a field sits on (a pretty-printed JSON object spans many lines)."""
        if self.doc is None or not field:
            return self.line
        name = re.split(r"[\[.]", field, maxsplit=1)[0]
        pattern = re.compile(re.escape(json.dumps(name)) + r"\s*:")
        found = pattern.search(self.doc, self.start, self.end)
        if found is None:
            return self.line
        return self.line + self.doc.count("\n", self.start, found.start())


class RecordFile:
    """A data file to read. `name` is what messages call it (an upload keeps its own name)."""

    def __init__(self, path: Path | str, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        lowered = self.name.lower()
        self.compressed = lowered.endswith(".gz")
        base = self.name[:-3] if self.compressed else self.name
        self.stem = Path(base).stem
        self.kind: str | None = _KINDS.get(Path(base).suffix.lower())
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.columns: list[str] | None = None
        self.rows_hint: int | None = None  # exact row count where the format tells it
        self._raw: IO[bytes] | None = None
        self._done_fraction: float | None = None
        self._rows_read = 0

    def error(self, line: int, field: str, problem: str) -> RowError:
        return RowError(self.name, line, field, problem)

    def fraction(self) -> float:
        """How much of the file has been read, 0 to 1 (for progress estimates)."""
        if self._done_fraction is not None:
            return self._done_fraction
        if self.rows_hint:
            return min(1.0, self._rows_read / self.rows_hint)
        if self._raw is None or self._raw.closed or not self.size:
            return 0.0
        return min(1.0, self._raw.tell() / self.size)

    def rows_estimate(self) -> int:
        """The number of rows in the file: exact for JSON arrays and Parquet, otherwise
        extrapolated from the rows read so far and the share of the file they took."""
        if self.rows_hint is not None:
            return self.rows_hint
        fraction = self.fraction()
        return round(self._rows_read / fraction) if fraction > 0 else 0

    def items(
        self, *, required: Sequence[str] = (), allowed: Collection[str] | None = None
    ) -> Iterator[Item | RowError]:
        """Rows as Items. `required` and `allowed` name the columns (CSV, Parquet) or the keys
        of each JSON object; a missing or unknown one is an error at the place it should be."""
        if not self.path.exists():
            yield self.error(1, "file", "file not found")
            return
        if self.kind is None:
            yield self.error(
                1, "file", f"unsupported file type; expected one of {', '.join(SUFFIXES)}"
            )
            return
        reader = {
            "jsonl": self._jsonl,
            "json": self._json,
            "csv": self._csv,
            "parquet": self._parquet,
        }[self.kind]
        try:
            for entry in reader(required, allowed):
                if isinstance(entry, Item):
                    self._rows_read += 1
                yield entry
        finally:
            if self._raw is not None:
                self._raw.close()
            self._done_fraction = 1.0

    # JSON -----------------------------------------------------------------------------------

    def _check_object(
        self, item: Item, required: Sequence[str], allowed: Collection[str] | None
    ) -> list[RowError]:
        data = item.data
        if not isinstance(data, dict):
            return [self.error(item.line, "row", f"expected an object, got {describe(data)}")]
        errors = [self.error(item.line, key, "missing") for key in required if key not in data]
        if allowed is not None:
            errors += [
                self.error(item.line_of(key), key, "unknown field")
                for key in data
                if key not in allowed
            ]
        return errors

    def _open_text(self, newline: str | None = None) -> io.TextIOWrapper:
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in items()
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw)) if self.compressed else self._raw
        return io.TextIOWrapper(stream, encoding="utf-8-sig", newline=newline)

    def _lines(self, text: IO[str]) -> Iterator[tuple[int, str] | RowError]:
        lineno = 0
        lines = iter(text)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError:
                yield self.error(lineno + 1, "file", "not UTF-8 text")
                return
            except (OSError, EOFError, zlib.error) as exc:
                yield self.error(lineno + 1, "file", f"cannot read the file ({exc})")
                return
            lineno += 1
            yield lineno, line

    def _jsonl(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        loads = json.loads
        with self._open_text() as text:
            yield from self._json_lines(self._lines(text), loads, required, allowed)

    def _json_lines(
        self,
        lines: Iterator[tuple[int, str] | RowError],
        loads: Any,
        required: Sequence[str],
        allowed: Collection[str] | None,
    ) -> Iterator[Item | RowError]:
        for entry in lines:
            if isinstance(entry, RowError):
                yield entry
                return
            lineno, line = entry
            if not line.strip():
                continue
            try:
                data = loads(line)
            except json.JSONDecodeError as exc:
                yield self.error(lineno, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            item = Item(lineno, data)
            errors = self._check_object(item, required, allowed)
            if errors:
                yield from errors
                continue
            yield item

    def _json(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        try:
            with self._open_text() as stream:
                doc = stream.read()
        except UnicodeDecodeError:
            yield self.error(1, "file", "not UTF-8 text")
            return
        except (OSError, EOFError, zlib.error) as exc:
            yield self.error(1, "file", f"cannot read the file ({exc})")
            return
        pos = _WS.match(doc).end()  # type: ignore[union-attr]
        if pos >= len(doc):
            yield self.error(1, "file", "empty file")
            return
        if doc[pos] == "{":  # JSON lines under a .json name (FastChat writes those)
            numbered = ((n, line) for n, line in enumerate(io.StringIO(doc), start=1))
            yield from self._json_lines(numbered, json.loads, required, allowed)
            return
        if doc[pos] != "[":
            line = 1 + doc.count("\n", 0, pos)
            yield self.error(line, "json", "expected a JSON array or JSON lines")
            return
        items = []
        for entry in self._array_items(doc, pos + 1):
            if isinstance(entry, RowError):
                yield entry
                return
            items.append(entry)
        self.rows_hint = len(items)
        for item in items:
            errors = self._check_object(item, required, allowed)
            if errors:
                yield from errors
                continue
            yield item

    def _array_items(self, doc: str, pos: int) -> Iterator[Item | RowError]:
        decoder = json.JSONDecoder()
        line, last = 1 + doc.count("\n", 0, pos), pos
        pos = _WS.match(doc, pos).end()  # type: ignore[union-attr]
        if doc.startswith("]", pos):
            return
        while True:
            line += doc.count("\n", last, pos)
            last = pos
            try:
                data, end = decoder.raw_decode(doc, pos)
            except json.JSONDecodeError as exc:
                yield self.error(
                    exc.lineno, "json", f"invalid JSON: {exc.msg} at column {exc.colno}"
                )
                return
            yield Item(line, data, doc=doc, start=pos, end=end)
            pos = _WS.match(doc, end).end()  # type: ignore[union-attr]
            if pos >= len(doc):
                yield self.error(
                    1 + doc.count("\n", 0, pos), "json", "invalid JSON: the array is not closed"
                )
                return
            if doc[pos] == "]":
                return
            if doc[pos] != ",":
                at = 1 + doc.count("\n", 0, pos)
                yield self.error(at, "json", "invalid JSON: expected ',' or ']'")
                return
            pos = _WS.match(doc, pos + 1).end()  # type: ignore[union-attr]

    # CSV and Parquet ------------------------------------------------------------------------

    def _check_columns(
        self, columns: list[str], required: Sequence[str], allowed: Collection[str] | None
    ) -> list[RowError]:
        errors = []
        seen: set[str] = set()
        for name in columns:
            if name in seen:
                errors.append(self.error(1, name, "column appears twice"))
            seen.add(name)
            if allowed is not None and name not in allowed:
                errors.append(self.error(1, name, "unknown column"))
        errors += [self.error(1, name, "missing column") for name in required if name not in seen]
        return errors

    def _csv(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        with self._open_text(newline="") as text:
            reader = csv.reader(text, strict=True)
            start = 1
            try:
                header = next(reader, None)
                if header is None:
                    yield self.error(1, "file", "empty file")
                    return
                columns = [name.strip() for name in header]
                errors = self._check_columns(columns, required, allowed)
                if errors:
                    yield from errors
                    return
                self.columns = columns
                width = len(columns)
                start = reader.line_num + 1
                for row in reader:
                    line, start = start, reader.line_num + 1
                    if not row:
                        continue
                    if len(row) < width:
                        yield self.error(
                            line,
                            columns[len(row)],
                            f"missing (the row has {len(row)} of {width} fields)",
                        )
                        continue
                    if len(row) > width:
                        yield self.error(
                            line, "row", f"{len(row)} fields, but the header has {width}"
                        )
                        continue
                    yield Item(line, dict(zip(columns, row, strict=True)), textual=True)
            except csv.Error as exc:
                yield self.error(start, "csv", f"invalid CSV: {exc}")
            except UnicodeDecodeError:
                yield self.error(start, "file", "not UTF-8 text")
            except (OSError, EOFError, zlib.error) as exc:
                yield self.error(start, "file", f"cannot read the file ({exc})")

    def _parquet(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            yield self.error(1, "file", f"not a readable Parquet file ({exc})")
            return
        with parquet:
            columns = list(parquet.schema_arrow.names)
            errors = self._check_columns(columns, required, allowed)
            if errors:
                yield from errors
                return
            self.columns = columns
            self.rows_hint = parquet.metadata.num_rows
            row = 0
            try:
                for batch in parquet.iter_batches(batch_size=4096):
                    for data in batch.to_pylist():
                        row += 1
                        yield Item(row, data)
            except (pa.ArrowException, OSError) as exc:
                yield self.error(row + 1, "file", f"cannot read the Parquet file ({exc})")
