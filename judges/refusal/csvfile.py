"""Classify a CSV column of responses: `classify_csv(input_path, text_column, output_path)`.

Copies the input to the output with two columns appended, `refusal_class` and
`refusal_score` (probability of that class, 6 decimals); when the input already has them
(a re-run), their values are replaced in place. Rows whose text is empty or blank get both
cells empty and are listed in the report. The file is streamed in chunks, so size is bounded
by disk, not memory; the output is written to a temporary file beside it and renamed at the
end, so a failure never leaves a half-written output (and input and output may be the same).

Errors a user can cause (no such file, missing column, bad encoding, ragged rows) raise
`CsvInputError` with the file and line.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from judges.refusal.classifier import RefusalClassifier, load_default_classifier

CLASS_COLUMN: Final = "refusal_class"
SCORE_COLUMN: Final = "refusal_score"
CHUNK_ROWS: Final = 1024
# Real responses can be far longer than csv's default 131,072-character field limit.
FIELD_SIZE_LIMIT: Final = 64 * 1024 * 1024


class CsvInputError(ValueError):
    """The input CSV cannot be classified as asked; the message names the file and line."""


@dataclass(frozen=True)
class CsvClassificationReport:
    input_path: Path
    output_path: Path
    classifier: str  # fingerprint
    rows: int
    classified: int
    counts: dict[str, int]
    blank_lines: tuple[int, ...] = field(default=())  # line numbers of rows with no text


def _records(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(starting line number, fields) of each non-blank record, errors located."""
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as error:
            raise CsvInputError(
                f"{path}, near line {line}: not UTF-8 text ({error.reason}); save it as UTF-8"
            ) from error
        except csv.Error as error:
            raise CsvInputError(f"{path}, line {line}: {error}") from error
        if fields:  # a blank line is no record (as csv.DictReader treats it)
            yield line, fields


def classify_csv(
    input_path: Path | str,
    text_column: str,
    output_path: Path | str,
    *,
    classifier: RefusalClassifier | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CsvClassificationReport:
    source = Path(input_path)
    target = Path(output_path)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    if not source.is_file():
        raise CsvInputError(f"{source}: no such file")
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))

    with source.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        rows = _records(reader, source)
        first = next(rows, None)
        if first is None:
            raise CsvInputError(f"{source}: the file is empty; expected a header row")
        header = first[1]
        text_index = _column_index(header, text_column, source)
        out_header = list(header)
        for name in (CLASS_COLUMN, SCORE_COLUMN):
            if name not in out_header:
                out_header.append(name)
        class_index = out_header.index(CLASS_COLUMN)
        score_index = out_header.index(SCORE_COLUMN)
        # Loaded only once the file is known to be usable: a bad file fails in milliseconds.
        classifier = classifier if classifier is not None else load_default_classifier()

        target.parent.mkdir(parents=True, exist_ok=True)
        # Same directory, so the final rename is atomic; plain open() keeps the usual mode.
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with temporary.open("x", newline="", encoding="utf-8") as out:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(out_header)
                sink = _Sink(
                    writer, classifier, text_index, len(out_header), class_index, score_index
                )
                chunk: list[tuple[int, list[str]]] = []
                for line, fields in rows:
                    if len(fields) > len(header):
                        raise CsvInputError(
                            f"{source}, line {line}: {len(fields)} fields but the header has "
                            f"{len(header)}; is a text with a comma or newline missing its quotes?"
                        )
                    chunk.append((line, fields))
                    if len(chunk) >= chunk_rows:
                        sink.write(chunk)
                        chunk = []
                sink.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    return CsvClassificationReport(
        input_path=source,
        output_path=target,
        classifier=classifier.identity.fingerprint,
        rows=sink.rows,
        classified=sum(sink.counts.values()),
        counts=dict(sorted(sink.counts.items())),
        blank_lines=tuple(sink.blank_lines),
    )


def _column_index(header: list[str], text_column: str, source: Path) -> int:
    matches = [i for i, name in enumerate(header) if name == text_column]
    if len(matches) > 1:
        raise CsvInputError(
            f"{source}, line 1: the column {text_column!r} appears {len(matches)} times"
        )
    if matches:
        return matches[0]
    columns = ", ".join(repr(name) for name in header)
    near = [name for name in header if name.strip().lower() == text_column.strip().lower()]
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise CsvInputError(
        f"{source}, line 1: no column {text_column!r}; the columns are {columns}{hint}"
    )


@dataclass
class _Sink:
    """Classifies chunks of rows and writes them with the two columns filled in."""

    writer: Any
    classifier: RefusalClassifier
    text_index: int
    width: int
    class_index: int
    score_index: int
    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    blank_lines: list[int] = field(default_factory=list)

    def write(self, chunk: list[tuple[int, list[str]]]) -> None:
        texts = [f[self.text_index] if self.text_index < len(f) else "" for _, f in chunk]
        present = [i for i, text in enumerate(texts) if text.strip()]
        classes = self.classifier.classify([texts[i] for i in present]) if present else []
        results = dict(zip(present, classes, strict=True))
        for i, (line, fields) in enumerate(chunk):
            row = fields + [""] * (self.width - len(fields))
            result = results.get(i)
            if result is None:
                self.blank_lines.append(line)
                row[self.class_index] = row[self.score_index] = ""
            else:
                self.counts[result.label] += 1
                row[self.class_index] = result.label
                row[self.score_index] = f"{result.score:.6f}"
            self.writer.writerow(row)
        self.rows += len(chunk)
