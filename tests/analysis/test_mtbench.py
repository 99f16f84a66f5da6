"""MT-Bench agreement per turn through `manage.py report --dataset`.

The expected figures come from a re-implementation of FastChat's
``fastchat/llm_judge/compute_agreement.py`` over the raw judgment rows (not from the
database): per turn, the GPT-4 pair judge's single vote against each human vote on a
(question, model pair), and every two human votes against each other; S2 drops a comparison
when either vote is a tie ("tie (inconsistent)" is a tie).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from io import StringIO
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command

from corpus.models import HumanVote, Pair
from judges.models import Judge, Verdict
from tests.factories import DatasetFactory, JudgeFactory, PromptFactory, ResponseFactory

SAMPLES = Path(__file__).resolve().parents[1] / "corpus" / "fixtures_import" / "mt-bench"
MODELS = ("alpaca-13b", "claude-v1", "gpt-3.5-turbo", "vicuna-13b-v1.2")


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


def revert(winner: str) -> str:
    return {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)


def fastchat_agreement(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per turn: (agree, total) for GPT-4 pair vs human and human vs human, S1 and S2."""
    data: dict[int, dict[tuple[Any, ...], dict[str, list[str]]]] = defaultdict(dict)
    for vote in rows:
        if vote["model_a"] < vote["model_b"]:
            key = (vote["question_id"], vote["model_a"], vote["model_b"])
            winner = vote["winner"]
        else:
            key = (vote["question_id"], vote["model_b"], vote["model_a"])
            winner = revert(vote["winner"])
        judge = "gpt4_pair" if isinstance(vote["judge"], list) else "human"
        data[vote["turn"]].setdefault(key, {}).setdefault(judge, []).append(winner)

    def equal(first: str, second: str) -> bool:
        return ("tie" in first and "tie" in second) or first == second

    def tie(vote: str) -> bool:
        return "tie" in vote

    out: dict[int, dict[str, Any]] = {}
    for turn, keyed in data.items():
        counts = {name: [0, 0] for name in ("judge_S1", "judge_S2", "human_S1", "human_S2")}
        for votes in keyed.values():
            people = votes.get("human", [])
            for mine in votes.get("gpt4_pair", []):
                for theirs in people:
                    counts["judge_S1"][0] += equal(mine, theirs)
                    counts["judge_S1"][1] += 1
                    if not tie(mine) and not tie(theirs):
                        counts["judge_S2"][0] += equal(mine, theirs)
                        counts["judge_S2"][1] += 1
            for first, second in combinations(people, 2):
                counts["human_S1"][0] += equal(first, second)
                counts["human_S1"][1] += 1
                if not tie(first) and not tie(second):
                    counts["human_S2"][0] += equal(first, second)
                    counts["human_S2"][1] += 1
        out[turn] = counts
    return out


def report_json(dataset: str) -> dict[str, Any]:
    out = StringIO()
    call_command(
        "report",
        "--dataset",
        dataset,
        "--format",
        "json",
        "--n-boot",
        "100",
        stdout=out,
        stderr=StringIO(),
    )
    return json.loads(out.getvalue())


def check_turns(body: dict[str, Any], expected: dict[int, dict[str, Any]]) -> None:
    judges = {j["name"]: j["id"] for j in body["metrics"]["raters"]["judges"]}
    rows = {row["value"]: row for row in body["metrics"]["slices"]["turn"]["rows"]}
    assert set(rows) == set(expected)
    for turn, counts in expected.items():
        row = rows[turn]
        # One GPT-4 judge per turn (pair-v2, then pair-v2-multi-turn), as in MT-Bench.
        judge = judges[
            "gpt-4 · mt-bench pair-v2" if turn == 1 else "gpt-4 · mt-bench pair-v2-multi-turn"
        ]
        for policy in ("S1", "S2"):
            for stored, (agree, total) in (
                (row["judges"][judge][policy], counts[f"judge_{policy}"]),
                (row["ceiling"][policy], counts[f"human_{policy}"]),
            ):
                if total == 0:
                    assert stored["value"] is None and stored["reason"] == "no items"
                else:
                    assert stored["value"] == pytest.approx(agree / total, abs=1e-6)
                    assert stored["details"]["pairs"] == pytest.approx(total)


def build_mt_bench(seed: int = 7, questions: int = 8) -> list[dict[str, Any]]:
    """MT-Bench-shaped rows (FastChat's human_judgments / gpt4_pair_judgments) and the
    matching database rows, as the importer would write them."""
    rng = random.Random(seed)
    dataset = DatasetFactory(name="mt-bench-small")
    judges = {
        1: JudgeFactory(name="gpt-4 · mt-bench pair-v2", model_id="gpt-4"),
        2: JudgeFactory(name="gpt-4 · mt-bench pair-v2-multi-turn", model_id="gpt-4"),
    }
    rows: list[dict[str, Any]] = []
    vote_number = 0
    for qid in range(81, 81 + questions):
        for turn in (1, 2):
            prompt = PromptFactory(dataset=dataset, category="writing" if qid % 2 else "math")
            responses = {m: ResponseFactory(prompt=prompt, model_name=m) for m in MODELS}
            for first, second in combinations(MODELS, 2):
                experts = rng.sample(range(6), rng.choice([0, 1, 2, 3]))
                judged = rng.random() < 0.8
                if not experts and not judged:
                    continue
                pair = Pair.objects.create(
                    dataset=dataset,
                    source_key=f"q{qid}:{first}|{second}:t{turn}",
                    prompt=prompt,
                    response_a=responses[first],
                    response_b=responses[second],
                    turn=turn,
                    category=prompt.category,
                    content_hash=f"{qid}{first}{second}{turn}",
                    meta={"question_id": qid},
                )
                swapped = rng.random() < 0.5  # the file's row order of the two models
                model_a, model_b = (second, first) if swapped else (first, second)
                for expert in experts:
                    winner = rng.choice(["model_a", "model_b", "tie"])
                    rows.append(
                        {
                            "question_id": qid,
                            "model_a": model_a,
                            "model_b": model_b,
                            "winner": winner,
                            "judge": f"expert_{expert}",
                            "turn": turn,
                        }
                    )
                    chosen = {"model_a": model_a, "model_b": model_b}.get(winner)
                    vote_number += 1
                    HumanVote.objects.create(
                        pair=pair,
                        source="mtbench_expert",
                        voter_id=f"expert_{expert}",
                        outcome="tie" if chosen is None else "A" if chosen == first else "B",
                        row_hash=f"v{vote_number}",
                    )
                if judged:
                    winner = rng.choice(["model_a", "model_b", "tie", "tie (inconsistent)"])
                    rows.append(
                        {
                            "question_id": qid,
                            "model_a": model_a,
                            "model_b": model_b,
                            "winner": winner,
                            "judge": ["gpt-4", "pair-v2" if turn == 1 else "pair-v2-multi-turn"],
                            "turn": turn,
                        }
                    )
                    chosen = {"model_a": model_a, "model_b": model_b}.get(winner)
                    outcome = "tie" if chosen is None else "A" if chosen == first else "B"
                    consistent = winner != "tie (inconsistent)"
                    Verdict.objects.create(
                        judge=judges[turn],
                        pair=pair,
                        outcome=outcome,
                        outcome_ab=outcome if consistent else None,
                        outcome_ba=outcome if consistent else None,
                        consistent=consistent,
                        status_ab="ok",
                        status_ba="ok",
                    )
    return rows


def test_it_gives_the_mt_bench_agreement_per_turn(db: None) -> None:
    rows = build_mt_bench()

    body = report_json("mt-bench-small")

    check_turns(body, fastchat_agreement(rows))
    # Position consistency from the imported "tie (inconsistent)" flags.
    judge = next(j["id"] for j in body["metrics"]["raters"]["judges"] if "multi" not in j["name"])
    flags = [
        r["winner"] != "tie (inconsistent)" for r in rows if r["judge"] == ["gpt-4", "pair-v2"]
    ]
    position = body["metrics"]["position"]["judges"][judge]
    assert position["method"] == "consistent_flag"
    assert position["consistency"]["value"] == pytest.approx(sum(flags) / len(flags), abs=1e-6)


def test_it_prints_the_per_turn_table_in_markdown(db: None) -> None:
    build_mt_bench(questions=4)
    out = StringIO()

    call_command(
        "report", "--dataset", "mt-bench-small", "--n-boot", "50", stdout=out, stderr=StringIO()
    )

    text = out.getvalue()
    assert "## By turn" in text
    turn_table = text.split("## By turn", 1)[1].split("\n## ", 1)[0]
    assert "| 1 |" in turn_table and "| 2 |" in turn_table
    assert "gpt-4 · mt-bench pair-v2 v1 S1" in turn_table


def test_it_reports_imported_mt_bench_judgment_files(db: None) -> None:
    from corpus.importers.services import dataset_for_import, import_file

    dataset = dataset_for_import(name="mt-bench")
    files = [SAMPLES / "human_judgments.jsonl", SAMPLES / "gpt4_pair_judgments.jsonl"]
    for path in files:
        job = import_file(dataset=dataset, fmt="mt-bench", path=path)
        assert job.status == "done", job.errors

    body = report_json("mt-bench")

    rows = [json.loads(line) for path in files for line in path.read_text().splitlines() if line]
    # The importer counts author_* votes as human votes, like expert_* ones.
    check_turns(body, fastchat_agreement(rows))
    assert Judge.objects.count() == 2
