"""`import_pairs --format arena-hard` on files written in Arena-Hard-Auto's published layout
(tests/corpus/fixtures_import/arena-hard: v0.1, and v2.0's variant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpus.models import Pair
from judges.models import Judge, ParseStatus, Verdict
from tests.corpus.test_import_command import FIXTURES, refused, run, table_counts

V01 = FIXTURES / "arena-hard" / "v0.1"
V20 = FIXTURES / "arena-hard" / "v2.0"
JUDGMENTS = sorted((V01 / "model_judgment" / "gpt-4-1106-preview").glob("*.jsonl"))
ANSWERS = [f"--answers={p}" for p in sorted((V01 / "model_answer").glob("*.jsonl"))]
QUESTIONS = f"--questions={V01 / 'question.jsonl'}"
# The label a game's margin stands for, in the order the game showed (A = shown first).
LABEL = {2.0: "A>>B", 1.0: "A>B", 0.0: "A=B", -1.0: "B>A", -2.0: "B>>A"}

pytestmark = pytest.mark.django_db


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verdict_for(question_id: str, model: str, baseline: str = "gpt-4-0314") -> Verdict:
    return Verdict.objects.select_related("pair").get(
        pair__source_key=f"{question_id}:{baseline}|{model}"
    )


def test_it_imports_both_games_as_the_two_orders_with_the_texts() -> None:
    output = run("--format", "arena-hard", *ANSWERS, QUESTIONS, *map(str, JUDGMENTS))
    pairs = Pair.objects.filter(dataset__name="arena-hard")
    assert pairs.count() == 6
    judge = Judge.objects.get(name="gpt-4-1106-preview · arena-hard")
    assert judge.swap_policy == Judge.SwapPolicy.BOTH
    questions = {q["question_id"]: q for q in lines_of(V01 / "question.jsonl")}
    answers = {
        (a["question_id"], a["model_id"]): a["choices"][0]["turns"][0]["content"]
        for path in (V01 / "model_answer").glob("*.jsonl")
        for a in lines_of(path)
    }
    for path in JUDGMENTS:
        for row in lines_of(path):
            qid, model = row["question_id"], row["model"]
            verdict = verdict_for(qid, model)
            pair = Pair.objects.select_related("prompt", "response_a", "response_b").get(
                pk=verdict.pair_id
            )
            assert pair.prompt.text == questions[qid]["turns"][0]["content"]
            assert pair.category == "arena-hard-v0.1"
            assert pair.meta["cluster"] == questions[qid]["cluster"]
            assert (pair.response_a.model_name, pair.response_b.model_name) == (
                "gpt-4-0314",
                model,
            )
            assert pair.response_a.text == answers[(qid, "gpt-4-0314")]
            assert pair.response_b.text == answers[(qid, model)]
            # Round trip: each game's stored order gives back the label the file holds.
            first, second = row["games"]
            assert verdict.raw_ab == first["judgment"] and verdict.raw_ba == second["judgment"]
            for game, status, margin in (
                (first, verdict.status_ab, verdict.margin_ab),
                (
                    second,
                    verdict.status_ba,
                    None if verdict.margin_ba is None else -verdict.margin_ba,
                ),
            ):
                if game["score"] is None:
                    assert status == ParseStatus.FAILED and margin is None
                else:
                    assert status == ParseStatus.OK and LABEL[margin] == game["score"]
    assert "1 failed parses" in output


@pytest.mark.parametrize(
    ("model", "question", "expected"),
    [
        # (outcome, consistent, strength, margin): baseline = A, model = B.
        ("claude-3-haiku-20240307", 0, ("A", True, 1, 1.0)),  # A>B, then B>A: the baseline
        ("claude-3-haiku-20240307", 1, ("B", True, 2, -2.0)),  # B>>A, then A>>B: the model
        ("claude-3-haiku-20240307", 2, ("tie", False, None, -0.5)),  # A=B, then the model: flip
        ("llama-3-8b-instruct", 0, ("A", True, 2, 2.0)),
        ("llama-3-8b-instruct", 1, ("A", None, 1, 1.0)),  # game 2 has no label
        ("llama-3-8b-instruct", 2, ("tie", False, None, 0.0)),  # "A>B" twice: position bias
    ],
)
def test_it_combines_the_two_games_as_arena_hard_reads_them(
    model: str, question: int, expected: tuple[Any, ...]
) -> None:
    run("--format", "arena-hard", *map(str, JUDGMENTS))
    qid = lines_of(V01 / "question.jsonl")[question]["question_id"]
    verdict = verdict_for(qid, model)
    assert (verdict.outcome, verdict.consistent, verdict.strength, verdict.margin) == expected


def test_it_adds_nothing_again_and_joins_texts_imported_later() -> None:
    output = run("--format", "arena-hard", *map(str, JUDGMENTS))
    assert output.count("rows without text: 3") == 2
    before = table_counts()
    again = run("--format", "arena-hard", *ANSWERS, QUESTIONS, *map(str, JUDGMENTS))
    assert again.count("0 new pairs · 3 existing pairs joined") == 2
    assert again.count("3 duplicate verdicts skipped") == 2
    assert table_counts() == before


def test_it_takes_the_baseline_from_the_command_line() -> None:
    run("--format", "arena-hard", "--baseline", "gpt-4-0613", str(JUDGMENTS[0]))
    keys = set(Pair.objects.values_list("source_key", flat=True))
    assert len(keys) == 3 and all(":gpt-4-0613|claude-3-haiku-20240307" in key for key in keys)


def test_it_reads_arena_hard_v2_files() -> None:
    run(
        "--format",
        "arena-hard",
        "--dataset",
        "ah2",
        *[f"--answers={p}" for p in sorted((V20 / "model_answer").glob("*.jsonl"))],
        f"--questions={V20 / 'question.jsonl'}",
        str(V20 / "model_judgment" / "gpt-4.1" / "tiny-model-v1.jsonl"),
    )
    first = verdict_for("a1b2c3d4e5f60718", "tiny-model-v1", "o3-mini-2025-01-31")
    pair = Pair.objects.select_related("prompt", "response_b").get(pk=first.pair_id)
    assert pair.category == "hard_prompt" and pair.prompt.text.startswith("Explain the diff")
    assert pair.response_b.text == "A thread is a small process."
    # Game 2 shows the model first: its "B>A" prefers the baseline too.
    assert (first.outcome_ab, first.outcome_ba, first.outcome) == ("A", "A", "A")
    assert json.loads(first.raw_ab) == {"answer": "Assistant A is precise. [[A>>B]]"}
    second = verdict_for("b2c3d4e5f6a70819", "tiny-model-v1", "o3-mini-2025-01-31")
    assert (second.outcome_ab, second.status_ba, second.outcome) == ("B", "failed", "B")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_it_refuses_broken_judgment_rows_by_line(tmp_path: Path) -> None:
    rows = lines_of(JUDGMENTS[1])
    rows[0]["games"] = "[[A>B]]"
    rows[1]["games"][1]["score"] = 2
    rows[2]["model"] = "gpt-4-0314"
    rows.append({k: v for k, v in rows[0].items() if k != "judge"})
    rows.append(dict(lines_of(JUDGMENTS[1])[0], games=[{"score": "A<B", "judgment": "?"}]))
    broken = write_jsonl(tmp_path / JUDGMENTS[1].name, rows)
    run("--format", "arena-hard", str(JUDGMENTS[0]))
    before = table_counts()

    output = refused("--format", "arena-hard", str(broken))
    name = broken.name
    assert f'{name}:1: games: expected a list of one or two games, got "[[A>B]]"' in output
    assert f"{name}:2: games[1].score: expected a verdict label or null, got 2" in output
    assert f"{name}:3: model: the same model as the baseline ('gpt-4-0314')" in output
    assert f"{name}:4: judge: missing" in output
    assert f"{name}:5:" not in output  # an unknown label is the judge's failed parse
    assert table_counts() == before


def test_it_refuses_a_broken_answers_file_and_writes_nothing(tmp_path: Path) -> None:
    answers = lines_of(V01 / "model_answer" / "llama-3-8b-instruct.jsonl")
    answers[1]["choices"][0]["turns"] = []
    del answers[2]["model_id"]
    broken = write_jsonl(tmp_path / "llama-3-8b-instruct.jsonl", answers)
    output = refused("--format", "arena-hard", f"--answers={broken}", QUESTIONS, str(JUDGMENTS[1]))
    assert "llama-3-8b-instruct.jsonl:2: choices[0].turns[0]: missing" in output
    assert "llama-3-8b-instruct.jsonl:3: question_id" not in output
    assert "llama-3-8b-instruct.jsonl:3: model: missing" in output
    assert table_counts()["Pair"] == 0
