"""The import parsers on plain data: no database."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from corpus.importers.formats import FORMATS, ParseContext, ParseOptions
from corpus.importers.formats.hh_rlhf import split_dialogues
from corpus.importers.formats.pandalm import parse_result, split_cmp_key
from corpus.importers.readers import RecordFile
from corpus.importers.records import (
    VOTE_SOURCES,
    JudgeRef,
    Row,
    RowError,
    VerdictRecord,
    clean_text,
    join_turns,
    prepare_pair,
)
from corpus.models import HumanVote

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures_import"


def parsed(fmt: str, path: Path, options: ParseOptions | None = None) -> list[Row | RowError]:
    return list(FORMATS[fmt].parse(ParseContext(RecordFile(path), options or ParseOptions())))


def rows_of(entries: list[Row | RowError]) -> list[Row]:
    errors = [str(e) for e in entries if isinstance(e, RowError)]
    assert errors == []
    return [e for e in entries if isinstance(e, Row)]


def test_it_keeps_vote_sources_in_step_with_the_model() -> None:
    assert set(VOTE_SOURCES) == set(HumanVote.Source.values)


def test_it_splits_pandalm_model_pairs_even_with_underscores_in_names() -> None:
    assert split_cmp_key("bloom-7b_llama-7b", set()) == ("bloom-7b", "llama-7b")
    known = {"my_model-7b", "llama-7b"}
    assert split_cmp_key("my_model-7b_llama-7b", known) == ("my_model-7b", "llama-7b")
    assert split_cmp_key("a_b_c", set()) is None


@pytest.mark.parametrize(
    ("value", "outcome"),
    [(0, "tie"), (1, "A"), (2, "B"), ("0", "tie"), ("1", "A"), ("2", "B"), ("Tie", "tie")],
)
def test_it_reads_pandalm_judge_results(value: object, outcome: str) -> None:
    assert parse_result(value) == outcome


@pytest.mark.parametrize("value", ["garbage", "", None, 3, "1 or 2", [1], True])
def test_it_calls_other_pandalm_judge_results_unparseable(value: object) -> None:
    assert parse_result(value) is None


def test_it_reads_the_pandalm_test_set_with_three_annotators_per_pair() -> None:
    rows = rows_of(parsed("pandalm", DATA / "pandalm" / "testset-v1.json"))
    source = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())
    assert len(rows) == len(source) == 999
    first, item = rows[0], source[0]
    assert first.key == str(item["idx"])
    assert first.pair is not None
    assert first.pair.prompt == f"{item['instruction']}\n\n{item['input']}"
    assert (first.pair.model_a, first.pair.model_b) == tuple(item["cmp_key"].split("_"))
    expected = {0: "tie", 1: "A", 2: "B"}
    assert [v.outcome for v in first.votes] == [expected[item[f"annotator{i}"]] for i in (1, 2, 3)]


def test_it_finds_the_line_of_a_field_in_pretty_printed_json() -> None:
    lines = (DATA / "pandalm" / "testset-v1.json").read_text().splitlines()
    rows = rows_of(parsed("pandalm", DATA / "pandalm" / "testset-v1.json"))
    third = rows[2]
    assert lines[third.line - 1].strip() == "{"
    assert lines[third.line].strip() == '"idx": 2,'


@pytest.mark.parametrize(
    ("shared", "chosen", "rejected", "last"),
    [
        pytest.param(
            "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: How do I bake bread?",
            "Mix flour, water, yeast and salt.",
            "I can't help.",
            True,
            id="at-the-last-assistant-turn",
        ),
        pytest.param(
            "\n\nHuman: Isn't that drag kings?",
            "No.  Human: Then how?\n\nAssistant:  I think so.",
            "A drag king is the opposite of a drag queen.",
            False,
            id="diverging-at-their-last-shared-turn",
        ),
    ],
)
def test_it_splits_hh_rlhf_dialogues(shared: str, chosen: str, rejected: str, last: bool) -> None:
    split = split_dialogues(
        shared + "\n\nAssistant: " + chosen, shared + "\n\nAssistant: " + rejected
    )
    assert split == (shared.strip(), chosen, rejected, last)


def test_it_refuses_hh_rlhf_dialogues_without_a_shared_turn(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"chosen": "\n\nHuman: a", "rejected": "\n\nHuman: b"}) + "\n")
    errors = [str(e) for e in parsed("hh-rlhf", path) if isinstance(e, RowError)]
    assert errors == [
        "bad.jsonl:1: chosen: chosen and rejected share no dialogue up to an assistant turn"
    ]


def test_it_puts_the_chosen_hh_rlhf_response_on_either_side() -> None:
    path = DATA / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    rows = rows_of(parsed("hh-rlhf", path))
    with gzip.open(path, "rt") as handle:
        source = [json.loads(line) for line in handle]
    assert len(rows) == len(source)
    sides = Counter(row.votes[0].outcome for row in rows)
    # Which side wins follows the row's hash, so about half the time it is A.
    assert 0.45 < sides["A"] / len(rows) < 0.55
    for row, item in zip(rows[:200], source[:200], strict=True):
        pair = row.pair
        assert pair is not None and pair.response_a is not None and pair.response_b is not None
        chosen = pair.response_a if row.votes[0].outcome == "A" else pair.response_b
        assert item["chosen"].strip().endswith(chosen)
        assert item["chosen"].strip().startswith(pair.prompt or "")
    again = rows_of(parsed("hh-rlhf", path))
    assert [r.key for r in again] == [r.key for r in rows]
    assert [r.votes[0].outcome for r in again] == [r.votes[0].outcome for r in rows]


def test_it_reads_llmbar_labels_as_gold_votes() -> None:
    path = DATA / "llmbar" / "Natural.json"
    rows = rows_of(parsed("llmbar", path))
    source = json.loads(path.read_text())
    assert [r.key for r in rows[:2]] == ["Natural:0", "Natural:1"]
    assert {r.pair.category for r in rows if r.pair} == {"Natural"}
    assert [r.votes[0].outcome for r in rows] == ["A" if s["label"] == 1 else "B" for s in source]


def test_it_joins_arena_turns_and_reads_the_winner() -> None:
    rows = rows_of(parsed("arena", FIXTURES / "arena-sample.csv"))
    by_key = {r.key: r for r in rows}
    assert [v.outcome for r in rows for v in r.votes] == ["A", "B", "tie", "B", "B"]
    multi = by_key["292873"].pair
    assert multi is not None and multi.turn == 2
    assert multi.prompt == join_turns(
        ["How can I create a test set for a very rare category?", "And if I only have 12 examples?"]
    )
    assert multi.prompt.startswith("[Turn 1]\nHow can I")
    assert by_key["313413"].pair is not None and by_key["313413"].pair.response_a == ""
    assert by_key["65089"].votes[0].voter_id == "arena:65089"


def test_it_reports_arena_cells_that_are_not_lists_of_turns(tmp_path: Path) -> None:
    lines = (FIXTURES / "arena-sample.csv").read_text().splitlines()
    broken = lines[2].replace('"[""What is the difference', '"[5, ""What is the difference', 1)
    path = tmp_path / "arena.csv"
    path.write_text("\n".join([lines[0], lines[1], broken, *lines[3:]]) + "\n")
    errors = [str(e) for e in parsed("arena", path) if isinstance(e, RowError)]
    assert errors == ["arena.csv:3: prompt[0]: expected a string, got 5"]


def test_it_keys_mt_bench_pairs_as_fastchat_does() -> None:
    rows = rows_of(parsed("mt-bench", FIXTURES / "mt-bench" / "human_judgments.jsonl"))
    # expert_31 saw (gpt-3.5-turbo, alpaca-13b) and chose model_a: sorted, that is B.
    swapped = rows[2]
    assert swapped.key == "q81:alpaca-13b|gpt-3.5-turbo:t2"
    assert swapped.votes[0].outcome == "B"
    assert rows[0].key == "q81:alpaca-13b|gpt-3.5-turbo:t1" and rows[0].votes[0].outcome == "B"
    assert all(r.pair is not None and r.pair.prompt is None for r in rows)


def test_it_maps_both_games_of_a_fastchat_pair_judgment_to_orders() -> None:
    rows = rows_of(parsed("mt-bench", FIXTURES / "mt-bench" / "gpt-4_pair.jsonl"))
    # Row 2: model_1 = gpt-3.5-turbo sorts after alpaca-13b, so game 2 showed A first.
    verdict = rows[1].verdicts[0]
    assert (verdict.outcome_ab, verdict.outcome_ba) == ("tie", "B")
    assert verdict.combine() == ("tie", False)
    # Row 3: game 1 did not parse ("error").
    verdict = rows[2].verdicts[0]
    assert (verdict.status_ab, verdict.status_ba) == ("ok", "failed")
    assert verdict.combine() == ("B", None)
    assert verdict.failed_parses == 1


def test_it_takes_mt_bench_texts_from_answers_and_questions() -> None:
    folder = FIXTURES / "mt-bench"
    options = ParseOptions(
        answers=[RecordFile(p) for p in sorted((folder / "model_answer").glob("*.jsonl"))],
        questions=[RecordFile(folder / "question.jsonl")],
    )
    rows = rows_of(parsed("mt-bench", folder / "human_judgments.jsonl", options))
    turn_two = rows[2].pair
    assert turn_two is not None and turn_two.category == "writing"
    assert turn_two.prompt is not None and turn_two.prompt.startswith("[Turn 1]\nCompose")
    assert turn_two.response_a is not None and "[Turn 2]\nA trip to Hawaii" in turn_two.response_a


def test_it_combines_both_orders_as_mt_bench_does() -> None:
    judge = JudgeRef("j", "j", "test")
    agree = VerdictRecord(judge, "A", "A", "ok", "ok")
    disagree = VerdictRecord(judge, "A", "B", "ok", "ok")
    one_order = VerdictRecord(judge, "B", None, "ok", "not_run")
    failed = VerdictRecord(judge, None, "A", "failed", "ok")
    assert agree.combine() == ("A", True)
    assert disagree.combine() == ("tie", False)
    assert one_order.combine() == ("B", None)
    assert failed.combine() == ("A", None)


def test_it_gives_an_imported_judge_one_fingerprint_per_model_and_source() -> None:
    a = JudgeRef("gpt-4 · mt-bench pair-v2", "gpt-4", "mt-bench", "pair-v2")
    same = JudgeRef("renamed", "gpt-4", "mt-bench", "pair-v2")
    other = JudgeRef("gpt-4 · mt-bench pair-v2", "gpt-4", "mt-bench", "single-v1")
    assert a.fingerprint == same.fingerprint != other.fingerprint
    assert len(a.fingerprint) == 64


def test_it_makes_texts_storable_and_hashes_them_stably() -> None:
    assert clean_text("ok") == ("ok", False)
    assert clean_text("a\x00b") == ("a\ufffdb", True)
    assert clean_text("broken \ud83d emoji") == ("broken \ufffd emoji", True)
    rows = rows_of(parsed("arena", FIXTURES / "arena-sample.csv"))
    first = [prepare_pair(r.pair).content_sha for r in rows if r.pair]
    again = [
        prepare_pair(r.pair).content_sha
        for r in rows_of(parsed("arena", FIXTURES / "arena-sample.csv"))
        if r.pair
    ]
    assert first == again and len(set(first)) == len(first)


def test_the_docs_name_every_column_and_key_of_the_generic_layout() -> None:
    """docs/import-formats.md's `generic` table against the one field list."""
    from corpus.importers import schema

    doc = (Path(__file__).resolve().parents[2] / "docs" / "import-formats.md").read_text()
    section = doc.split("### `generic`", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section))
    nested = set(re.findall(r"[{ ,]`?([a-z_]+)`?\??(?=[,}])", section)) | documented

    assert schema.FIELDS - documented == set()  # what is missing, by name
    assert set(schema.VOTE_KEYS) - nested == set()
    assert set(schema.VERDICT_KEYS) - documented == set()
