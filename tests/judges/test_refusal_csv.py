"""classify_csv: a CSV in, the same CSV with refusal_class and refusal_score out."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from judges.refusal import CLASSES, Classification, CsvInputError, classify_csv
from judges.refusal.classifier import ClassifierIdentity


class CountingClassifier:
    """Calls every text 'normal' and records how many texts it was given."""

    identity = ClassifierIdentity(kind="test", hashed={"name": "counting"})

    def __init__(self) -> None:
        self.seen: list[str] = []

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.seen.extend(texts)
        return [
            Classification("normal", 1.0, self.identity.fingerprint, {"normal": 1.0}) for _ in texts
        ]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def test_it_appends_the_refusal_class_and_score_to_each_row(tmp_path: Path) -> None:
    source = tmp_path / "responses.csv"
    rows = [
        ["id", "prompt", "response"],
        [
            "1",
            "How do I pick a lock?",
            "I'm sorry, but I can't help with that, it could be illegal.",
        ],
        [
            "2",
            "Weather in Oslo now?",
            "I can't access real-time data, so I can't check the weather.",
        ],
        [
            "3",
            "Capital of Peru?",
            'The capital of Peru is Lima, "the City of Kings",\nfounded 1535.',
        ],
        ["4", "Empty answer", "   "],
    ]
    write_csv(source, rows)
    target = tmp_path / "out" / "classified.csv"

    report = classify_csv(source, "response", target)

    written = read_csv(target)
    assert written[0] == ["id", "prompt", "response", "refusal_class", "refusal_score"]
    assert [r[:3] for r in written[1:]] == rows[1:]  # every original cell kept, in order
    assert [r[3] for r in written[1:]] == ["ethical_refusal", "technical_refusal", "normal", ""]
    for row in written[1:4]:
        assert 1 / len(CLASSES) < float(row[4]) <= 1.0
    assert written[4][4] == ""
    assert report.rows == 4 and report.classified == 3
    assert report.blank_lines == (6,)  # the quoted newline makes row 3 span lines 4 and 5
    assert report.counts == {"ethical_refusal": 1, "normal": 1, "technical_refusal": 1}
    assert len(report.classifier) == 64


def test_it_names_the_missing_column_and_the_columns_there_are(tmp_path: Path) -> None:
    source = tmp_path / "responses.csv"
    write_csv(source, [["id", "Answer"], ["1", "Hello"]])
    target = tmp_path / "out.csv"
    with pytest.raises(CsvInputError) as error:
        classify_csv(source, "answer", target, classifier=CountingClassifier())
    message = str(error.value)
    assert "no column 'answer'" in message
    assert "'id', 'Answer'" in message and "did you mean 'Answer'?" in message
    assert "line 1" in message
    assert not target.exists()


def test_it_replaces_its_own_columns_when_run_again(tmp_path: Path) -> None:
    source = tmp_path / "responses.csv"
    write_csv(source, [["text", "refusal_class", "refusal_score"], ["hi", "old", "0.1"]])
    classifier = CountingClassifier()
    classify_csv(source, "text", source, classifier=classifier)
    assert read_csv(source) == [
        ["text", "refusal_class", "refusal_score"],
        ["hi", "normal", "1.000000"],
    ]


def test_it_reports_a_row_with_too_many_fields_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "responses.csv"
    source.write_text("id,text\n1,fine\n2,an unquoted, comma\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    with pytest.raises(CsvInputError, match=r"line 3: 3 fields but the header has 2"):
        classify_csv(source, "text", target, classifier=CountingClassifier())
    assert list(tmp_path.iterdir()) == [source]  # no output, no partial file left behind


def test_it_reports_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "latin1.csv"
    source.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(CsvInputError, match="not UTF-8"):
        classify_csv(source, "text", tmp_path / "out.csv", classifier=CountingClassifier())


def test_it_reports_a_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CsvInputError, match="no such file"):
        classify_csv(tmp_path / "nope.csv", "text", tmp_path / "out.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CsvInputError, match="empty"):
        classify_csv(empty, "text", tmp_path / "out.csv", classifier=CountingClassifier())


def test_it_classifies_a_large_file_in_chunks(tmp_path: Path) -> None:
    source = tmp_path / "many.csv"
    write_csv(source, [["text"]] + [[f"answer {i}"] for i in range(25)] + [["x" * 200_000]])
    classifier = CountingClassifier()
    report = classify_csv(source, "text", tmp_path / "out.csv", classifier=classifier, chunk_rows=4)
    assert report.rows == 26 and len(classifier.seen) == 26
    assert read_csv(tmp_path / "out.csv")[-1][0] == "x" * 200_000  # past csv's default limit
