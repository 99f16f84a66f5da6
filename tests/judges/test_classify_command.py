"""`manage.py classify_responses`: a CSV file in and out, or a dataset's responses in the DB."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from corpus.models import Dataset
from judges.models import ClassificationRun, ResponseClassification, ResponseFeatures
from judges.refusal import REFUSALS, load_default_classifier
from tests.judges.test_classification_runs import XSTEST, make_xstest_dataset


def run(*args: str, **options: object) -> str:
    out = StringIO()
    call_command("classify_responses", *args, stdout=out, **options)
    return out.getvalue()


def write_xstest_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["prompt", "completion", "final_label"])
        writer.writerows(XSTEST)
        writer.writerow(["An empty answer", "  ", ""])
    return path


@pytest.fixture
def xstest(db: None) -> Dataset:
    return make_xstest_dataset()


def test_it_appends_the_class_and_score_to_a_csv_and_prints_the_counts(tmp_path: Path) -> None:
    # No `db` fixture: the CSV mode must not touch the database (pytest-django would fail it).
    source = write_xstest_csv(tmp_path / "xstest.csv")
    target = tmp_path / "out" / "classified.csv"

    printed = run(input=str(source), text_column="completion", output=str(target))

    with target.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["completion"] for r in rows[:5]] == [text for _, text, _ in XSTEST]
    for row in rows[:5]:
        refused = row["refusal_class"] in REFUSALS
        assert refused == (row["final_label"] == "2_full_refusal"), row["completion"][:40]
        assert 0.0 < float(row["refusal_score"]) <= 1.0
    assert rows[5]["refusal_class"] == "" and rows[5]["refusal_score"] == ""
    assert "5 of 6 rows classified" in printed
    assert load_default_classifier().identity.fingerprint[:12] in printed
    assert any(line.split()[:2] == ["normal", "3"] for line in printed.splitlines())
    # the file line where the blank row starts: the coke answer spans nine lines
    assert "1 rows with no text were left unclassified (lines 15)" in printed


def test_it_names_a_missing_column_with_the_file_and_line(tmp_path: Path) -> None:
    source = write_xstest_csv(tmp_path / "xstest.csv")
    target = tmp_path / "classified.csv"

    with pytest.raises(CommandError, match=r"xstest\.csv, line 1: no column 'answer'") as error:
        run(input=str(source), text_column="answer", output=str(target))

    assert "'completion'" in str(error.value)  # the columns there are, listed
    assert not target.exists()


def test_it_asks_for_the_csv_options_it_needs(tmp_path: Path) -> None:
    source = write_xstest_csv(tmp_path / "xstest.csv")

    with pytest.raises(CommandError, match="--input needs --output"):
        run(input=str(source), text_column="completion")
    with pytest.raises(CommandError, match=r"nowhere\.csv: no such file"):
        run(input=str(tmp_path / "nowhere.csv"), text_column="completion", output="x.csv")


def test_it_classifies_a_dataset_and_prints_progress_and_counts(xstest: Dataset) -> None:
    printed = run(dataset="xstest-sample", batch_size=2)

    run_row = ClassificationRun.objects.get(dataset=xstest)
    assert run_row.status == ClassificationRun.Status.DONE and run_row.created_by is None
    assert ResponseClassification.objects.filter(classifier=run_row.classifier).count() == 5
    assert ResponseFeatures.objects.filter(extractor=run_row.extractor).count() == 5
    lines = printed.splitlines()
    assert f"run {run_row.pk}: classifying the responses of xstest-sample" in lines
    assert "5 responses to do, 0 already done" in printed
    assert [line.strip() for line in lines if "/5 responses" in line] == [
        "2/5 responses",
        "4/5 responses",
        "5/5 responses",
    ]
    assert "done: 5 classifications and 5 feature rows added; 1 responses have no text" in lines
    assert any(line.split()[:2] == ["normal", "3"] for line in lines)


def test_a_second_dataset_run_adds_nothing(xstest: Dataset) -> None:
    run(dataset="xstest-sample")
    before = set(ResponseClassification.objects.values_list("pk", flat=True))

    printed = run(dataset="xstest-sample")

    assert "0 responses to do, 5 already done" in printed
    assert "done: 0 classifications and 0 feature rows added" in printed
    assert set(ResponseClassification.objects.values_list("pk", flat=True)) == before
    assert ClassificationRun.objects.filter(status="done").count() == 2


def test_it_names_an_unknown_dataset(db: None) -> None:
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        run(dataset="nope")
    assert ClassificationRun.objects.count() == 0


def test_it_explains_both_modes_in_its_help() -> None:
    from judges.management.commands.classify_responses import Command

    parser = Command().create_parser("manage.py", "classify_responses")
    text = parser.format_help()

    assert "--input FILE.csv --text-column NAME --output OUT.csv" in text
    assert "--dataset NAME" in text
    assert "refusal_class and\n             refusal_score" in text  # line breaks kept
    assert "REFUSAL_MODEL_DIR" in text
