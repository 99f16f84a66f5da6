"""Hostile files (issue 15 items 2, 6 and 9): each is refused with its place and a finished job.

A NUL where a message quotes the file, a gzip bomb, a row of gigabytes, JSON nested ten
thousand deep, bytes that are not UTF-8 far into a file, a key given twice: each ends the job
`failed` with `file:line: field: problem`, nothing written, memory near one row.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.db import DataError

from corpus.importers.services import import_file
from corpus.models import Dataset, ImportJob, Pair
from tests.factories import DatasetFactory

ROOT = Path(__file__).resolve().parents[2]
HEADER = "pair_id,prompt,response_a,response_b\n"


def imported(path: Path, fmt: str = "generic") -> ImportJob:
    dataset: Dataset = DatasetFactory(name="hostile")
    return import_file(dataset=dataset, fmt=fmt, path=path)


def refused(path: Path, fmt: str = "generic") -> list[str]:
    job = imported(path, fmt)
    assert job.status == ImportJob.Status.FAILED
    assert Pair.objects.count() == 0
    return job.errors


def jsonl_row(key: str, **extra: Any) -> str:
    return json.dumps(
        {"pair_id": key, "prompt": "p", "response_a": "a", "response_b": "b", **extra}
    )


# --- item 2: a NUL in an error message ---------------------------------------------------------


def test_it_shows_a_nul_in_a_column_name_as_an_escape_and_finishes_the_job(
    db: None, tmp_path: Path
) -> None:
    # The repro: printf 'pair_id,pro\0mpt,response_a,response_b\nc-1,h,a,b\n' > n.csv
    path = tmp_path / "n.csv"
    path.write_bytes(b"pair_id,pro\x00mpt,response_a,response_b\nc-1,h,a,b\n")
    job = imported(path)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors == ["n.csv:1: pro\\u0000mpt: unknown column"]
    assert job.finished_at is not None


def test_it_ends_the_job_failed_when_the_database_refuses_its_result(
    db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(HEADER + "c-1,h,a,b\n")
    save = ImportJob.save

    def refuse_the_result(self: ImportJob, *args: Any, **kwargs: Any) -> None:
        if self.finished_at is not None:  # the final save, after the import
            raise DataError("unsupported Unicode escape sequence")
        save(self, *args, **kwargs)

    monkeypatch.setattr(ImportJob, "save", refuse_the_result)
    imported(path)
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert job.errors == [
        "ok.csv: import: the result could not be saved (unsupported Unicode escape sequence)"
    ]


# --- item 6: decompressed size and row size ----------------------------------------------------


def _gzip_rows(path: Path) -> None:
    with gzip.open(path, "wt") as handle:
        for i in range(20_000):  # about 1.5 MiB of rows, 40 KB compressed
            handle.write(jsonl_row(f"k-{i}") + "\n")


def _long_csv_record(path: Path) -> None:
    quoted = '"' + ("a line of a long answer\n" * 60_000) + '"'  # 1.4 MiB over 60,000 lines
    path.write_text(HEADER + "c-1,h,a,b\n" + f"c-2,h,{quoted},b\n")


@pytest.mark.parametrize(
    ("name", "write", "limit", "lines", "problem"),
    [
        pytest.param(
            "big.jsonl.gz",
            _gzip_rows,
            "TRIBUNAL_IMPORT_MAX_FILE_MB",
            (10_000, 20_000),
            " file: more than 1 MiB once decompressed (the limit set by "
            "TRIBUNAL_IMPORT_MAX_FILE_MB); split the file",
            id="a-file-that-inflates-past-the-limit",
        ),
        pytest.param(
            "long.csv",
            _long_csv_record,
            "TRIBUNAL_IMPORT_MAX_ROW_MB",
            (3, 60_003),  # inside the record, which spans lines 3 to 60,003
            " row: longer than 1 MiB (the limit set by TRIBUNAL_IMPORT_MAX_ROW_MB)",
            id="a-csv-record-over-many-lines-longer-than-the-row-limit",
        ),
    ],
)
def test_it_refuses_a_file_at_the_line_where_it_passes_the_limit(
    db: None,
    tmp_path: Path,
    settings: Any,
    name: str,
    write: Callable[[Path], None],
    limit: str,
    lines: tuple[int, int],
    problem: str,
) -> None:
    setattr(settings, limit, 1)
    path = tmp_path / name
    write(path)
    [error] = refused(path)
    line, said = error.removeprefix(f"{name}:").split(":", 1)
    first, last = lines
    assert first < int(line) < last  # where the limit was passed, not the end of the file
    assert said == problem


BOMB_READER = textwrap.dedent(
    """
    import sys
    from corpus.importers.readers import RecordFile
    errors = [str(e) for e in RecordFile(sys.argv[1]).items() if not hasattr(e, "data")]
    print(errors[0])
    # This process's peak resident memory (VmHWM; getrusage would count the parent's fork).
    status = open("/proc/self/status").read()
    print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("filler", [b" ", b"\n"], ids=["one-line", "blank-lines"])
def test_it_refuses_a_gzip_bomb_with_bounded_memory(tmp_path: Path, filler: bytes) -> None:
    # 1 GiB inside about 1 MB of gzip; before, reading it took 2.36 GB of memory.
    path = tmp_path / "bomb.jsonl.gz"
    chunk = filler * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as handle:
        for _ in range(1024):
            handle.write(chunk)
    assert path.stat().st_size < 2 << 20
    result = subprocess.run(
        [sys.executable, "-c", BOMB_READER, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    message, peak_mb = result.stdout.splitlines()
    if filler == b" ":
        assert message == (
            "bomb.jsonl.gz:1: row: longer than 16 MiB (the limit set by TRIBUNAL_IMPORT_MAX_ROW_MB)"
        )
    else:
        assert message == (
            "bomb.jsonl.gz:16777217: file: more than 16 MiB of blank lines in a row (the limit "
            "set by TRIBUNAL_IMPORT_MAX_ROW_MB)"
        )
    assert int(peak_mb) < 150, f"peak memory {peak_mb} MB"


# --- item 9: nesting, decoding errors, duplicate keys ------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("bad_line", [3, 200, 5_000])
def test_it_reports_bytes_that_are_not_utf8_on_their_own_line_in_json_lines(
    db: None, tmp_path: Path, bad_line: int
) -> None:
    path = tmp_path / "bad.jsonl"
    rows = [jsonl_row(f"k-{i}").encode() for i in range(1, 6_000)]
    rows[bad_line - 1] = rows[bad_line - 1].replace(b'"p"', b'"caf\xe9"')
    path.write_bytes(b"\n".join(rows) + b"\n")
    byte = rows[bad_line - 1].index(b"\xe9") + 1
    assert refused(path) == [
        f"bad.jsonl:{bad_line}: file: not UTF-8 text (byte {byte} of the line)"
    ]


@pytest.mark.parametrize("bad_line", [3, 200, 5_000])
def test_it_reports_bytes_that_are_not_utf8_on_their_own_line_in_csv(
    db: None, tmp_path: Path, bad_line: int
) -> None:
    path = tmp_path / "bad.csv.gz"
    rows = [HEADER.strip().encode()] + [f"c-{i},h,a,b".encode() for i in range(1, 6_000)]
    rows[bad_line - 1] = rows[bad_line - 1].replace(b",h,", b",caf\xe9,")
    path.write_bytes(gzip.compress(b"\r\n".join(rows) + b"\r\n"))
    [error] = refused(path)
    assert error.startswith(f"bad.csv.gz:{bad_line}: file: not UTF-8 text (byte ")


def test_it_reports_bytes_that_are_not_utf8_on_their_line_in_a_json_array(
    db: None, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    body = "[\n" + ",\n".join(jsonl_row(f"k-{i}") for i in range(5)) + "\n]\n"
    lines = body.encode().split(b"\n")
    lines[3] = lines[3].replace(b'"p"', b'"caf\xe9"')
    path.write_bytes(b"\n".join(lines))
    byte = lines[3].index(b"\xe9") + 1
    assert refused(path) == [f"bad.json:4: file: not UTF-8 text (byte {byte} of the line)"]


# --- each refused with exactly one message naming its place -----------------------------------


def _wide_parquet(path: Path) -> None:
    n = 1000
    table = pa.table(
        {
            "pair_id": [f"k-{i}" for i in range(n)],
            "prompt": [f"{i:05d}" + "p" * 2000 for i in range(n)],  # 2 MB, a few KB compressed
            "response_a": ["a"] * n,
            "response_b": ["b"] * n,
        }
    )
    pq.write_table(table, path, compression="zstd")


def _text(*parts: str) -> Callable[[Path], object]:
    """Write the file's text when the test runs (some are megabytes)."""
    return lambda path: path.write_text("".join(parts))


ROW_MB = "TRIBUNAL_IMPORT_MAX_ROW_MB"
FILE_MB = "TRIBUNAL_IMPORT_MAX_FILE_MB"
JSON_ARRAY_MB = "TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB"

# file name, how it is written, limits set to 1 MiB, the one error expected
REFUSED = [
    # item 6: decompressed size and row size
    pytest.param(
        "long.jsonl",
        lambda path: path.write_text(
            jsonl_row("k-1") + "\n" + jsonl_row("k-2", prompt="x" * (2 << 20)) + "\n"
        ),
        [ROW_MB],
        "long.jsonl:2: row: longer than 1 MiB (the limit set by TRIBUNAL_IMPORT_MAX_ROW_MB)",
        id="a-json-line-longer-than-the-row-limit",
    ),
    pytest.param(
        "big.json",
        lambda path: path.write_text(
            json.dumps([json.loads(jsonl_row(f"k-{i}")) for i in range(20_000)])
        ),
        [JSON_ARRAY_MB],
        "big.json:1: file: a JSON array is read whole and this one is larger than 1 MiB (the "
        "limit set by TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB); use JSON lines for large files",
        id="a-json-array-larger-than-its-limit",
    ),
    pytest.param(
        "big.parquet",
        _wide_parquet,
        [FILE_MB],
        "big.parquet:1: file: more than 1 MiB once decompressed (the limit set by "
        "TRIBUNAL_IMPORT_MAX_FILE_MB); split the file",
        id="a-parquet-file-whose-row-groups-inflate-past-the-limit",
    ),
    # item 9: nesting and duplicate keys
    pytest.param(
        "deep.jsonl",
        lambda path: path.write_text(
            jsonl_row("k-1") + "\n" + '{"pair_id": "k-2", "meta": ' + nested(10_000) + "}\n"
        ),
        [],
        "deep.jsonl:2: json: JSON nested deeper than 64 levels",
        id="json-lines-nested-ten-thousand-deep-with-the-line",
    ),
    pytest.param(
        "deep.json",
        lambda path: path.write_text(
            "[\n" + jsonl_row("k-1") + ",\n" + jsonl_row("k-2") + ",\n" + nested(500) + "\n]"
        ),
        [],
        "deep.json:4: json: JSON nested deeper than 64 levels",
        id="a-json-array-nested-too-deeply-with-the-line",
    ),
    pytest.param(
        "deep.csv",
        lambda path: path.write_text(
            "pair_id,prompt,response_a,response_b,meta\n" + f"c-1,h,a,b,{nested(10_000)}\n"
        ),
        [],
        "deep.csv:2: meta: JSON nested deeper than 64 levels",
        id="json-nested-too-deeply-in-a-csv-cell-with-the-place",
    ),
    pytest.param(
        "dup.jsonl",
        _text(
            jsonl_row("k-1"),
            "\n",
            '{"pair_id": "k-2", "prompt": "p", "prompt": "q", "response_a": "a", '
            '"response_b": "b"}\n',
        ),
        [],
        "dup.jsonl:2: prompt: given twice in one object; keep one",
        id="a-key-given-twice-in-a-json-line",
    ),
    pytest.param(
        "dup.json",
        _text(
            '[\n  {\n    "pair_id": "k-1",\n    "prompt": "p",\n    "response_a": "a",\n'
            '    "response_b": "b",\n    "prompt": "q"\n  }\n]\n'
        ),
        [],
        "dup.json:7: prompt: given twice in one object; keep one",
        id="a-key-given-twice-in-a-json-array-on-the-second-line",
    ),
    pytest.param(
        "dup.csv",
        _text(
            "pair_id,prompt,response_a,response_b,votes\n",
            'c-1,h,a,b,"[{""voter_id"": ""v"", ""outcome"": ""A"", ""outcome"": ""B""}]"\n',
        ),
        [],
        "dup.csv:2: votes: key 'outcome' given twice in one object; keep one",
        id="a-key-given-twice-in-a-csv-cell",
    ),
]


@pytest.mark.parametrize(("name", "write", "limits", "error"), REFUSED)
def test_it_refuses_a_hostile_file_with_the_place(
    db: None,
    tmp_path: Path,
    settings: Any,
    name: str,
    write: Callable[[Path], object],
    limits: list[str],
    error: str,
) -> None:
    for limit in limits:
        setattr(settings, limit, 1)
    path = tmp_path / name
    write(path)
    assert refused(path) == [error]
