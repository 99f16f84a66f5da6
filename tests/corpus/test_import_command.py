"""`manage.py import_pairs`: every shared data file imports, re-imports add nothing, and broken
copies are refused with their place and leave the database as it was."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from corpus.importers.formats import FORMATS
from corpus.importers.services import dataset_for_import, import_file
from corpus.management.commands.import_pairs import Command
from corpus.models import Dataset, HumanVote, ImportJob, Pair, Prompt, Response
from judges.models import Judge, ParseStatus, Verdict

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PANDALM = DATA / "pandalm"
LLMBAR = DATA / "llmbar"
HH = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
FIXTURES = Path(__file__).resolve().parent / "fixtures_import"
MT = FIXTURES / "mt-bench"

pytestmark = pytest.mark.django_db


def table_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Dataset, Prompt, Response, Pair, HumanVote, Judge, Verdict)
    }


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_pairs", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    out = io.StringIO()
    with pytest.raises(CommandError, match="refused"):
        call_command("import_pairs", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def unparseable(value: Any) -> bool:
    """PandaLM's verdict convention read independently: 0/1/2 (int or digit) or Tie."""
    return str(value).strip().lower() not in {"0", "1", "2", "tie"} or isinstance(value, bool)


# Every shared file ---------------------------------------------------------------------------


def test_it_imports_pandalm_pairs_votes_and_both_judges() -> None:
    # Judge files named first: the command still imports the test set before them.
    output = run(
        "--format",
        "pandalm",
        str(PANDALM / "gpt-3.5-turbo-testset-v1.json"),
        str(PANDALM / "pandalm-7b-testset-v1.json"),
        str(PANDALM / "testset-v1.json"),
    )
    testset = json.loads((PANDALM / "testset-v1.json").read_text())
    dataset = Dataset.objects.get(name="pandalm")
    assert Pair.objects.filter(dataset=dataset).count() == len(testset) == 999
    assert HumanVote.objects.filter(pair__dataset=dataset).count() == 3 * 999
    ties = sum(item[f"annotator{i}"] == 0 for item in testset for i in (1, 2, 3))
    assert HumanVote.objects.filter(outcome="tie").count() == ties

    for filename, field, model_id in (
        ("gpt-3.5-turbo-testset-v1.json", "gpt_result", "gpt-3.5-turbo"),
        ("pandalm-7b-testset-v1.json", "pandalm_result", "pandalm-7b"),
    ):
        results = json.loads((PANDALM / filename).read_text())
        judge = Judge.objects.get(model_id=model_id, provider=Judge.Provider.IMPORTED)
        verdicts = Verdict.objects.filter(judge=judge)
        failed = sum(unparseable(r[field]) for r in results)
        assert verdicts.count() == 999
        assert verdicts.filter(status_ab=ParseStatus.FAILED).count() == failed
        assert verdicts.filter(status_ab=ParseStatus.FAILED, outcome__isnull=True).count() == failed
        job = ImportJob.objects.get(filename=filename)
        assert job.counts["failed_parses"] == failed
        assert f"{failed} failed parses" in output
    garbage = Verdict.objects.filter(status_ab=ParseStatus.FAILED).first()
    assert garbage is not None and '"gpt_result":"garbage"' in garbage.raw_ab
    # The judges are keyed by idx onto the test set's pairs.
    first = json.loads((PANDALM / "pandalm-7b-testset-v1.json").read_text())[0]
    verdict = Verdict.objects.get(judge__model_id="pandalm-7b", pair__source_key=str(first["idx"]))
    assert verdict.outcome_ab == {0: "tie", 1: "A", 2: "B"}[int(first["pandalm_result"])]


def test_it_imports_every_llmbar_file_into_one_dataset() -> None:
    files = sorted(LLMBAR.glob("*.json"))
    run("--format", "llmbar", *map(str, files))
    sizes = {f.stem: len(json.loads(f.read_text())) for f in files}
    assert len(sizes) == 5
    for stem, size in sizes.items():
        assert Pair.objects.filter(dataset__name="llmbar", category=stem).count() == size
    assert HumanVote.objects.filter(source="llmbar", voter_id="llmbar-gold").count() == sum(
        sizes.values()
    )


def test_it_imports_hh_rlhf_with_the_chosen_response_as_the_vote() -> None:
    output = run("--format", "hh-rlhf", str(HH))
    with gzip.open(HH, "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert Pair.objects.filter(dataset__name="hh-rlhf").count() == len(rows)
    assert HumanVote.objects.filter(source="hh_rlhf").count() == len(rows)
    assert "split at shared turn" in output
    for vote in HumanVote.objects.select_related("pair__response_a", "pair__response_b")[:50]:
        chosen = vote.pair.response_a if vote.outcome == "A" else vote.pair.response_b
        assert any(row["chosen"].strip().endswith(chosen.text) for row in rows)


def test_it_adds_nothing_when_the_same_files_are_imported_again() -> None:
    args = ["--format", "pandalm", *map(str, sorted(PANDALM.glob("*.json")))]
    run(*args)
    run("--format", "llmbar", str(LLMBAR / "Natural.json"))
    run("--format", "hh-rlhf", str(HH))
    before = table_counts()

    output = run(*args)
    run("--format", "llmbar", str(LLMBAR / "Natural.json"))
    run("--format", "hh-rlhf", str(HH))
    assert table_counts() == before
    assert "0 new pairs · 999 existing pairs joined · 0 new votes · 2,997 duplicate" in output
    assert "999 duplicate verdicts skipped" in output


# Broken copies -------------------------------------------------------------------------------


def test_it_refuses_a_truncated_line_and_changes_nothing(tmp_path: Path) -> None:
    run("--format", "llmbar", str(LLMBAR / "Natural.json"))
    before = table_counts()
    with gzip.open(HH, "rt") as handle:
        lines = handle.read().splitlines(keepends=True)
    lines[9] = lines[9][: len(lines[9]) // 2] + "\n"
    broken = tmp_path / "harmless-base-test.jsonl.gz"
    with gzip.open(broken, "wt") as handle:
        handle.writelines(lines)

    output = refused("--format", "hh-rlhf", "--dataset", "llmbar", str(broken))
    assert "harmless-base-test.jsonl.gz:10: json: invalid JSON" in output
    assert table_counts() == before
    job = ImportJob.objects.get(filename="harmless-base-test.jsonl.gz")
    assert job.status == ImportJob.Status.FAILED
    assert job.errors[0].startswith("harmless-base-test.jsonl.gz:10: json:")


def test_it_refuses_a_truncated_json_array(tmp_path: Path) -> None:
    text = (PANDALM / "pandalm-7b-testset-v1.json").read_text()
    broken = tmp_path / "pandalm-7b-testset-v1.json"
    broken.write_text(text[: len(text) // 2])
    run("--format", "pandalm", str(PANDALM / "testset-v1.json"))
    before = table_counts()
    output = refused("--format", "pandalm", str(broken))
    last_line = broken.read_text().count("\n") + 1
    assert f"pandalm-7b-testset-v1.json:{last_line}: json: invalid JSON" in output
    assert table_counts() == before


def test_it_refuses_a_wrong_type_with_its_line(tmp_path: Path) -> None:
    items = json.loads((PANDALM / "testset-v1.json").read_text())
    items[5]["annotator2"] = "two"
    broken = tmp_path / "testset-v1.json"
    broken.write_text(json.dumps(items, indent=4))
    line = broken.read_text().splitlines().index('        "annotator2": "two",') + 1
    before = table_counts()

    output = refused("--format", "pandalm", str(broken))
    assert f'testset-v1.json:{line}: annotator2: expected one of 0, 1, 2, got "two"' in output
    assert table_counts() == before


def test_it_refuses_a_missing_column(tmp_path: Path) -> None:
    items = json.loads((LLMBAR / "Adversarial-Manual.json").read_text())
    del items[3]["label"]
    broken = tmp_path / "Adversarial-Manual.json"
    broken.write_text(json.dumps(items, indent=2))
    start = [i for i, line in enumerate(broken.read_text().splitlines()) if line == "  {"][3] + 1

    output = refused("--format", "llmbar", str(broken))
    assert f"Adversarial-Manual.json:{start}: label: missing" in output
    assert table_counts()["Pair"] == 0


def test_it_refuses_a_csv_without_a_winner_column(tmp_path: Path) -> None:
    lines = (FIXTURES / "arena-sample.csv").read_text().splitlines()
    broken = tmp_path / "arena.csv"
    broken.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    output = refused("--format", "arena", str(broken))
    assert "arena.csv:1: winner_tie: missing column" in output
    assert table_counts()["Pair"] == 0


def test_it_refuses_a_judge_file_whose_pairs_are_not_there_yet() -> None:
    output = refused("--format", "pandalm", str(PANDALM / "pandalm-7b-testset-v1.json"))
    assert (
        "pandalm-7b-testset-v1.json:2: idx: no pair '0' in dataset 'pandalm': import the file "
        "with the pairs first" in output
    )
    assert table_counts()["Verdict"] == 0


def test_it_refuses_a_pair_key_that_already_holds_other_texts(tmp_path: Path) -> None:
    run("--format", "llmbar", str(LLMBAR / "Natural.json"))
    items = json.loads((LLMBAR / "Natural.json").read_text())
    items[7]["output_1"] += " (edited)"
    edited = tmp_path / "Natural.json"
    edited.write_text(json.dumps(items, indent=2))
    before = table_counts()
    output = refused("--format", "llmbar", str(edited))
    assert "pair 'Natural:7' exists with a different response_a (imported before)" in output
    assert table_counts() == before


def test_it_refuses_a_second_different_verdict_by_the_same_judge(tmp_path: Path) -> None:
    run("--format", "mt-bench", str(MT / "gpt4_pair_judgments.jsonl"))
    rows = [json.loads(line) for line in (MT / "gpt4_pair_judgments.jsonl").open()]
    rows[0]["winner"] = "model_a"
    changed = tmp_path / "gpt4_pair_judgments.jsonl"
    changed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = table_counts()
    output = refused("--format", "mt-bench", str(changed))
    assert (
        "gpt4_pair_judgments.jsonl:1: winner: a different verdict by 'gpt-4 · mt-bench " in output
    )
    assert "a judge gives one verdict per pair" in output
    assert table_counts() == before


def test_it_shows_at_most_twenty_errors_and_counts_the_rest(tmp_path: Path) -> None:
    broken = tmp_path / "many.jsonl"
    broken.write_text('{"chosen": 1, "rejected": 2}\n' * 30)
    dataset_for_import(name="hh-rlhf")
    refused("--format", "hh-rlhf", str(broken))
    job = ImportJob.objects.get(filename="many.jsonl")
    assert len(job.errors) == 21 and job.errors[-1] == "… and 40 more errors"
    assert job.counts["errors"] == 60


# Samples of the other formats ----------------------------------------------------------------


def test_it_imports_chatbot_arena_from_csv_jsonl_and_parquet_as_the_same_pairs(
    tmp_path: Path,
) -> None:
    run("--format", "arena", str(FIXTURES / "arena-sample.csv"))
    pairs = Pair.objects.filter(dataset__name="arena")
    assert pairs.count() == 5
    assert sorted(HumanVote.objects.values_list("outcome", flat=True)) == sorted(
        ["A", "B", "tie", "B", "B"]
    )
    multi = pairs.select_related("prompt", "response_b").get(source_key="292873")
    assert multi.turn == 2 and multi.prompt.text.startswith("[Turn 1]\nHow can I create")
    assert multi.response_b.text.endswith("augment the rest 🙂.")
    before = table_counts()

    import csv

    with (FIXTURES / "arena-sample.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    for record in records:
        for name in ("prompt", "response_a", "response_b"):
            record[name] = json.loads(record[name])
        for name in ("winner_model_a", "winner_model_b", "winner_tie"):
            record[name] = int(record[name])
        record["id"] = int(record["id"])
    jsonl = tmp_path / "arena.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "arena.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    output = run("--format", "arena", str(jsonl), str(parquet))
    assert output.count("5 existing pairs joined") == 2
    assert table_counts() == before


def test_it_imports_mt_bench_judgments_with_texts_and_joins_humans_and_judges() -> None:
    answers = [f"--answers={p}" for p in sorted((MT / "model_answer").glob("*.jsonl"))]
    run(
        "--format",
        "mt-bench",
        *answers,
        f"--questions={MT / 'question.jsonl'}",
        str(MT / "human_judgments.jsonl"),
        str(MT / "gpt4_pair_judgments.jsonl"),
        str(MT / "gpt-4_pair.jsonl"),
    )
    pair = Pair.objects.select_related("prompt", "response_a").get(
        source_key="q81:alpaca-13b|gpt-3.5-turbo:t1"
    )
    assert pair.category == "writing" and pair.prompt.text.startswith("Compose an engaging")
    assert pair.response_a.model_name == "alpaca-13b" and pair.response_a.has_text
    assert list(pair.human_votes.values_list("voter_id", "outcome")) == [
        ("expert_0", "B"),
        ("expert_24", "B"),
    ]
    assert list(pair.verdicts.values_list("outcome", "consistent")) == [("B", True)]
    inconsistent = Verdict.objects.get(pair__source_key="q81:alpaca-13b|gpt-3.5-turbo:t2")
    assert (inconsistent.outcome, inconsistent.consistent) == ("tie", False)
    assert HumanVote.objects.filter(source="mtbench_expert").count() == 6
    assert Verdict.objects.filter(status_ba=ParseStatus.FAILED).count() == 1


def test_it_imports_mt_bench_verdicts_without_texts() -> None:
    run("--format", "mt-bench", "--dataset", "mt-bench-verdicts", str(MT / "gpt-4_pair.jsonl"))
    pairs = Pair.objects.filter(dataset__name="mt-bench-verdicts").select_related(
        "prompt", "response_a", "response_b"
    )
    assert pairs.count() == 3
    assert {p.prompt.text for p in pairs} == {""}
    assert not any(p.response_a.has_text or p.response_b.has_text for p in pairs)
    assert Verdict.objects.filter(pair__in=pairs).count() == 3
    # The same pairs with their texts, imported later, join them instead of conflicting.
    answers = [f"--answers={p}" for p in sorted((MT / "model_answer").glob("*.jsonl"))]
    run(
        "--format",
        "mt-bench",
        "--dataset",
        "mt-bench-verdicts",
        *answers,
        str(MT / "human_judgments.jsonl"),
    )
    assert HumanVote.objects.filter(pair__dataset__name="mt-bench-verdicts").count() == 6


def test_it_imports_the_generic_schema_from_jsonl_csv_and_parquet(tmp_path: Path) -> None:
    run("--format", "generic", "--dataset", "mixed", str(FIXTURES / "generic-sample.jsonl"))
    pair = Pair.objects.get(dataset__name="mixed", source_key="g-1")
    assert sorted(pair.human_votes.values_list("voter_id", "outcome", "source", "strength")) == [
        ("ann-1", "A", "generic", None),
        ("ann-2", "A", "generic", 2),
        ("ann-3", "tie", "calibration", None),
    ]
    verdict = pair.verdicts.select_related("judge").get()
    assert (verdict.judge.name, verdict.judge.model_id) == ("gpt-4o-judge", "gpt-4o-2024-08-06")
    assert (verdict.outcome, verdict.margin, verdict.criteria_ab) == (
        "A",
        2.5,
        {"correctness": "A"},
    )
    failed = Verdict.objects.get(pair__source_key="g-3")
    assert (failed.status_ab, failed.raw_ab) == (ParseStatus.FAILED, "I think both are fine")
    run("--format", "generic", "--dataset", "flat", str(FIXTURES / "generic-sample.csv"))
    flat = Verdict.objects.get(pair__dataset__name="flat", pair__source_key="c-2")
    assert (flat.outcome_ab, flat.status_ba, flat.margin) == ("B", ParseStatus.NOT_RUN, -0.5)
    assert Pair.objects.get(dataset__name="flat", source_key="c-3").turn == 2

    rows = [json.loads(line) for line in (FIXTURES / "generic-sample.jsonl").open()]
    parquet = tmp_path / "generic.parquet"
    pq.write_table(pa.Table.from_pylist(rows[:3]), parquet)
    before = table_counts()
    run("--format", "generic", "--dataset", "mixed", str(parquet))
    assert table_counts() == before


def test_it_refuses_unknown_generic_columns(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("pair_id,prompt,response_a,response_b,humanvote\n1,q,a,b,A\n")
    output = refused("--format", "generic", str(path))
    assert "typo.csv:1: humanvote: unknown column" in output


def test_it_reports_the_first_line_of_a_multiline_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text(
        "pair_id,prompt,response_a,response_b,turn\n"
        'a,"line one\nline two",x,y,1\n'
        'b,"three\nfour\nfive",x,y,zero\n'
    )
    output = refused("--format", "generic", str(path))
    assert 'multi.csv:4: turn: expected an integer, got "zero"' in output


# The command itself --------------------------------------------------------------------------


def test_it_lists_every_format_in_help() -> None:
    text = Command().create_parser("manage.py", "import_pairs").format_help()
    for name, spec in FORMATS.items():
        assert name in text
        assert spec.summary.split(",")[0] in text.replace("\n", " ")


def test_it_refuses_a_bad_dataset_name() -> None:
    with pytest.raises(CommandError, match="dataset name 'not a slug'"):
        call_command(
            "import_pairs",
            "--format",
            "llmbar",
            "--dataset",
            "not a slug",
            str(LLMBAR / "Natural.json"),
        )


def test_it_reports_progress_while_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("corpus.importers.progress.EVERY_ROWS", 500)
    seen: list[tuple[int, int]] = []
    dataset = dataset_for_import(name="progress")
    job = import_file(
        dataset=dataset,
        fmt="hh-rlhf",
        path=HH,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert job.status == ImportJob.Status.DONE
    assert len(seen) >= 2 and all(0 < done <= total for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert job.rows_done == job.rows_total == 2312


# When the database itself refuses ------------------------------------------------------------


def test_it_rolls_back_a_file_the_database_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import DatabaseError

    from corpus.importers.writer import PairWriter

    def refuse(self: PairWriter, new: list[Any]) -> None:
        raise DatabaseError("disk full")

    run("--format", "llmbar", str(LLMBAR / "Natural.json"))
    before = table_counts()
    monkeypatch.setattr(PairWriter, "_create_votes", refuse)
    output = refused(
        "--format", "llmbar", "--dataset", "llmbar", str(LLMBAR / "Adversarial-GPTOut.json")
    )
    assert "Adversarial-GPTOut.json: database: the database refused the file: disk full" in output
    assert table_counts() == before


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY runs on PostgreSQL only")
def test_it_rolls_back_when_a_background_copy_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from corpus.importers import writer

    real = writer._copy_type
    # Send the pairs' turn (a smallint column) as 8 bytes: the server refuses that COPY.
    monkeypatch.setattr(writer, "_copy_type", lambda f: "int8" if f.name == "turn" else real(f))
    dataset_for_import(name="arena")
    before = table_counts()
    output = refused("--format", "arena", str(FIXTURES / "arena-sample.csv"))
    assert "arena-sample.csv: database: the database refused the file:" in output
    assert table_counts() == before
