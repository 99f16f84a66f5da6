"""Reading a data file row by row, each row with the line it starts on.

No Django here. One `RecordFile` reads JSON lines, a JSON array, CSV or Parquet (chosen by
the file's name; `.gz` is decompressed on the fly) and yields `Item`s, or `RowError`s naming
the place (`file:line: field: problem`). Files are streamed, except JSON arrays, which have to
be read whole to be parsed at all.

A file is untrusted input, so reading it is bounded (`ReadLimits`): the bytes it decompresses
to, the size of one row, the size of a JSON array read whole, and how deeply JSON may nest.
Past a limit the file is refused with a message naming the limit, having held at most about
one row (or one JSON array) in memory. Lines are split and decoded one at a time, so a byte
that is not UTF-8 is reported on its own line, and a JSON object that gives a key twice is
refused rather than silently keeping the last value.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Final, cast

from corpus.importers.records import RowError

MIB: Final = 1 << 20
MAX_DEPTH: Final = 64  # JSON nesting; real rows nest three or four levels
_WS = re.compile(r"\s*")
_WS_BYTES: Final = b" \t\r\n"
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


def size_text(n: int) -> str:
    """A byte count for a message: "16 MiB", "1.5 GiB", "300 bytes"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much one file may make the importer read and hold (settings TRIBUNAL_IMPORT_*).

    `file_bytes` counts the bytes after decompression, so a small `.gz` that inflates to
    gigabytes is refused when it passes the limit, not after. `row_bytes` bounds one JSON
    line, one CSV record and one JSON text in a CSV cell. A `.json` array has to be parsed
    whole, so it has its own, smaller bound (larger data belongs in JSON lines).
    """

    file_bytes: int = 512 * MIB
    row_bytes: int = 16 * MIB
    json_array_bytes: int = 64 * MIB
    depth: int = MAX_DEPTH

    def file_problem(self) -> str:
        return (
            f"more than {size_text(self.file_bytes)} once decompressed "
            "(the limit set by TRIBUNAL_IMPORT_MAX_FILE_MB); split the file"
        )

    def row_problem(self) -> str:
        return (
            f"longer than {size_text(self.row_bytes)} (the limit set by TRIBUNAL_IMPORT_MAX_ROW_MB)"
        )

    def depth_problem(self) -> str:
        return f"JSON nested deeper than {self.depth} levels"


class FileTooLarge(Exception):
    """The decompressed file passed `ReadLimits.file_bytes`."""


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} appears twice")
        self.key = key


class TooDeep(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return value


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests more than `limit` lists/objects (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _check_depth(value: Any, text: str, start: int, end: int, limit: int) -> None:
    # Counting brackets is C-speed and settles almost every row; only a row with more
    # brackets than the limit is walked.
    if text.count("[", start, end) + text.count("{", start, end) <= limit:
        return
    if isinstance(value, dict | list) and _deeper_than(value, limit):
        raise TooDeep(limit)


def loads_strict(text: str, *, depth: int = MAX_DEPTH) -> Any:
    """`json.loads` for untrusted text: a key twice in one object raises `DuplicateKey`, and
    nesting deeper than `depth` raises `TooDeep` (never RecursionError). Both are ValueErrors,
    like `json.JSONDecodeError`."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise TooDeep(depth) from None
    _check_depth(value, text, 0, len(text), depth)
    return value


def _raw_decode_strict(text: str, pos: int, depth: int) -> tuple[Any, int]:
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise TooDeep(depth) from None
    _check_depth(value, text, pos, end, depth)
    return value, end


class _Capped(io.RawIOBase):
    """A byte stream that raises `FileTooLarge` once more than `limit` bytes were read."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # Ask for at most one byte past the limit: enough to know it was passed.
        n = self._stream.readinto(view[: self._left + 1])  # type: ignore[attr-defined]
        if n is None:
            return 0
        self._left -= n
        if self._left < 0:
            raise FileTooLarge
        return n


class _BadLine(Exception):
    """Raised from inside the CSV line feed, which the csv module calls."""

    def __init__(self, line: int, field: str, problem: str) -> None:
        self.line, self.field, self.problem = line, field, problem


@dataclass(slots=True)
class Item:
    """One row's data and where it starts; for a JSON array, the span to find a field's line."""

    line: int
    data: Any
    textual: bool = False  # CSV: every value is a string, an empty cell means "not given"
    doc: str | None = None
    start: int = 0
    end: int = 0

    def line_of(self, field: str, *, nth: int = 1) -> int:
        """The line a field sits on (a pretty-printed JSON object spans many lines); `nth`:
        of its nth appearance."""
        if self.doc is None or not field:
            return self.line
        name = re.split(r"[\[.]", field, maxsplit=1)[0]
        pattern = re.compile(re.escape(json.dumps(name)) + r"\s*:")
        matches = list(islice(pattern.finditer(self.doc, self.start, self.end), nth))
        found = matches[-1] if matches else None
        if found is None:
            return self.line
        return self.line + self.doc.count("\n", self.start, found.start())


class RecordFile:
    """A data file to read. `name` is what messages call it (an upload keeps its own name)."""

    def __init__(
        self, path: Path | str, name: str | None = None, *, limits: ReadLimits | None = None
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.name
        self.limits = limits or ReadLimits()
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

    def _open(self) -> io.BufferedReader:
        """The file's bytes, decompressed, refusing to read past `limits.file_bytes`."""
        self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in items()
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw)) if self.compressed else self._raw
        return io.BufferedReader(_Capped(stream, self.limits.file_bytes), buffer_size=1 << 16)

    def _read_error(self, line: int, exc: BaseException) -> RowError:
        if isinstance(exc, FileTooLarge):
            return self.error(line, "file", self.limits.file_problem())
        return self.error(line, "file", f"cannot read the file ({exc})")

    def _lines(self, stream: io.BufferedReader) -> Iterator[tuple[int, str] | RowError]:
        """(line number, text) for each line, split and decoded one at a time: a line longer
        than `limits.row_bytes` or not UTF-8 ends the file with an error on that very line.

        Blank lines count towards the row limit too: a file of nothing but newlines would
        otherwise keep the importer busy for minutes per gigabyte, one line at a time."""
        limit = self.limits.row_bytes
        lineno = blank = 0
        while True:
            try:
                raw = stream.readline(limit + 1)
            except (FileTooLarge, OSError, EOFError, zlib.error) as exc:
                yield self._read_error(lineno + 1, exc)
                return
            if not raw:
                return
            lineno += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                yield self.error(lineno, "row", self.limits.row_problem())
                return
            if raw.isspace():
                blank += len(raw)
                if blank > limit:
                    yield self.error(
                        lineno,
                        "file",
                        f"more than {size_text(limit)} of blank lines in a row (the limit set "
                        "by TRIBUNAL_IMPORT_MAX_ROW_MB)",
                    )
                    return
            else:
                blank = 0
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield self.error(
                    lineno, "file", f"not UTF-8 text (byte {exc.start + 1} of the line)"
                )
                return
            yield lineno, text

    def _jsonl(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        with self._open() as stream:
            yield from self._json_lines(self._lines(stream), required, allowed)

    def _json_lines(
        self,
        lines: Iterator[tuple[int, str] | RowError],
        required: Sequence[str],
        allowed: Collection[str] | None,
    ) -> Iterator[Item | RowError]:
        depth = self.limits.depth
        for entry in lines:
            if isinstance(entry, RowError):
                yield entry
                return
            lineno, line = entry
            if not line.strip():
                continue
            try:
                data = loads_strict(line, depth=depth)
            except ValueError as exc:
                yield self._json_error(lineno, exc)
                continue
            item = Item(lineno, data)
            errors = self._check_object(item, required, allowed)
            if errors:
                yield from errors
                continue
            yield item

    def _json_error(self, line: int, exc: ValueError) -> RowError:
        """A JSON text's problem: invalid, a key given twice, or nested too deeply."""
        if isinstance(exc, DuplicateKey):
            return self.error(line, exc.key, "given twice in one object; keep one")
        if isinstance(exc, TooDeep):
            return self.error(line, "json", self.limits.depth_problem())
        if isinstance(exc, json.JSONDecodeError):
            return self.error(line, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
        return self.error(line, "json", f"invalid JSON: {exc}")

    def _json(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        with self._open() as stream:
            try:
                head = stream.peek(1 << 16)
            except (FileTooLarge, OSError, EOFError, zlib.error) as exc:
                yield self._read_error(1, exc)
                return
            start = head.removeprefix(codecs.BOM_UTF8).lstrip(_WS_BYTES)[:1]
            if start == b"{":  # JSON lines under a .json name (FastChat writes those)
                yield from self._json_lines(self._lines(stream), required, allowed)
                return
            # A JSON array is parsed whole: read at most its limit (and one byte more).
            limit = self.limits.json_array_bytes
            try:
                data = stream.read(limit + 1)
            except (FileTooLarge, OSError, EOFError, zlib.error) as exc:
                yield self._read_error(1, exc)
                return
        if len(data) > limit:
            yield self.error(
                1,
                "file",
                f"a JSON array is read whole and this one is larger than {size_text(limit)} "
                "(the limit set by TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB); use JSON lines for "
                "large files",
            )
            return
        bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
        try:
            doc = data[bom:].decode("utf-8")
        except UnicodeDecodeError as exc:
            where = bom + exc.start
            line = 1 + data.count(b"\n", 0, where)
            column = where - (data.rfind(b"\n", 0, where) + 1) + 1
            yield self.error(line, "file", f"not UTF-8 text (byte {column} of the line)")
            return
        del data
        pos = _WS.match(doc).end()  # type: ignore[union-attr]
        if pos >= len(doc):
            yield self.error(1, "file", "empty file")
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
        depth = self.limits.depth
        line, last = 1 + doc.count("\n", 0, pos), pos
        pos = _WS.match(doc, pos).end()  # type: ignore[union-attr]
        if doc.startswith("]", pos):
            return
        while True:
            line += doc.count("\n", last, pos)
            last = pos
            try:
                data, end = _raw_decode_strict(doc, pos, depth)
            except json.JSONDecodeError as exc:
                yield self.error(
                    exc.lineno, "json", f"invalid JSON: {exc.msg} at column {exc.colno}"
                )
                return
            except DuplicateKey as exc:
                item = Item(line, None, doc=doc, start=pos, end=len(doc))
                yield self.error(
                    item.line_of(exc.key, nth=2), exc.key, "given twice in one object; keep one"
                )
                return
            except ValueError as exc:
                yield self._json_error(line, exc)
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

    def _csv_lines(self, stream: io.BufferedReader, record: list[int]) -> Iterator[str]:
        """Decoded lines for the csv module. `record[0]` counts the characters of the record
        being read (the caller zeroes it after each): a record longer than the row limit,
        however many lines it spans, raises `_BadLine`, as does a line that is not UTF-8."""
        limit = self.limits.row_bytes
        for entry in self._lines(stream):
            if isinstance(entry, RowError):
                raise _BadLine(entry.line, entry.field, entry.problem)
            lineno, text = entry
            record[0] += len(text)
            if record[0] > limit:
                raise _BadLine(lineno, "row", self.limits.row_problem())
            if "\r" in text[:-2]:  # old Mac line ends: each \r ends a line, as in Python
                yield from re.split(r"(?<=\r)(?!\n|$)", text)
            else:
                yield text

    def _csv(
        self, required: Sequence[str], allowed: Collection[str] | None
    ) -> Iterator[Item | RowError]:
        # A field may not exceed one row (the csv module's own default is 128 KB, too small
        # for model answers).
        csv.field_size_limit(self.limits.row_bytes)
        record = [0]
        with self._open() as stream:
            reader = csv.reader(self._csv_lines(stream, record), strict=True)
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
                record[0] = 0
                for row in reader:
                    line, start = start, reader.line_num + 1
                    record[0] = 0
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
            except _BadLine as exc:
                yield self.error(exc.line, exc.field, exc.problem)
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    yield self.error(start, "row", self.limits.row_problem())
                else:
                    yield self.error(start, "csv", f"invalid CSV: {exc}")

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
            # Parquet compresses too: its metadata says what the row groups inflate to.
            meta = parquet.metadata
            inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if inflated > self.limits.file_bytes:
                yield self.error(1, "file", self.limits.file_problem())
                return
            self.columns = columns
            self.rows_hint = meta.num_rows
            row = 0
            try:
                for batch in parquet.iter_batches(batch_size=4096):
                    for data in batch.to_pylist():
                        row += 1
                        yield Item(row, data)
            except (pa.ArrowException, OSError) as exc:
                yield self.error(row + 1, "file", f"cannot read the Parquet file ({exc})")
