"""`import_pairs --format preference`: DPO / reward-model preference data in TRL's layouts
(tests/corpus/fixtures_import/preference), with reward scores imported as judges and audited."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User

from analysis.services import snapshot_compute
from annotation.sampling import LOW_MARGIN
from annotation.services import audit_build
from corpus.importers.formats.preference import extract_prompt, render
from corpus.models import Dataset, HumanVote, Pair
from judges.models import Judge, ParseStatus, Verdict
from tests.corpus.test_import_command import FIXTURES, refused, run, table_counts

PREF = FIXTURES / "preference"

pytestmark = pytest.mark.django_db


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def stored_rows(dataset: str) -> set[tuple[str, str, str]]:
    """(prompt, chosen, rejected) read back from the pairs and their votes."""
    rows = set()
    for vote in HumanVote.objects.filter(pair__dataset__name=dataset).select_related(
        "pair__prompt", "pair__response_a", "pair__response_b"
    ):
        pair = vote.pair
        a, b = pair.response_a.text, pair.response_b.text
        chosen, rejected = (a, b) if vote.outcome == "A" else (b, a)
        rows.add((pair.prompt.text, chosen, rejected))
    return rows


def test_it_imports_plain_rows_with_the_chosen_answer_as_the_vote() -> None:
    output = run("--format", "preference", str(PREF / "plain.jsonl"))
    rows = lines_of(PREF / "plain.jsonl")
    assert Pair.objects.filter(dataset__name="preference").count() == len(rows) == 8
    votes = HumanVote.objects.filter(pair__dataset__name="preference")
    assert set(votes.values_list("voter_id", "source")) == {("preference-chosen", "generic")}
    # Round trip: the texts and the vote give back every row.
    assert stored_rows("preference") == {(r["prompt"], r["chosen"], r["rejected"]) for r in rows}
    # Position is not confounded with the vote: the chosen answer sits on both sides.
    assert set(votes.values_list("outcome", flat=True)) == {"A", "B"}
    assert "8 new pairs" in output and "8 new votes" in output


def test_it_imports_the_conversational_copy_parquet_and_csv_onto_the_same_pairs(
    tmp_path: Path,
) -> None:
    run("--format", "preference", str(PREF / "plain.jsonl"))
    before = set(Pair.objects.values_list("source_key", "content_hash"))
    output = run("--format", "preference", str(PREF / "conversational.jsonl"))
    assert "0 new pairs · 8 existing pairs joined · 0 new votes · 8 duplicate votes" in output
    assert set(Pair.objects.values_list("source_key", "content_hash")) == before
    counts = table_counts()

    rows = lines_of(PREF / "conversational.jsonl")
    parquet = tmp_path / "conversational.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    spreadsheet = tmp_path / "conversational.csv"  # lists and objects as JSON text in the cells
    with spreadsheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: json.dumps(v) for k, v in row.items()} for row in rows)
    for path in (parquet, spreadsheet):
        output = run("--format", "preference", str(path))
        assert "0 new pairs · 8 existing pairs joined" in output
        assert "0 new verdicts · 15 duplicate verdicts skipped" in output
    assert table_counts() == counts


def test_it_imports_reward_scores_as_judges_with_the_score_gap_as_margin() -> None:
    run("--format", "preference", str(PREF / "plain.jsonl"), str(PREF / "conversational.jsonl"))
    expected: dict[tuple[str, str], tuple[float, float]] = {}
    for row in lines_of(PREF / "plain.jsonl"):
        expected[("scores", row["chosen"])] = (row["score_chosen"], row["score_rejected"])
    for row in lines_of(PREF / "conversational.jsonl"):
        for model, scores in row["rewards"].items():
            if scores["chosen"] is not None:
                chosen = row["chosen"][0]["content"]
                expected[(model, chosen)] = (scores["chosen"], scores["rejected"])
    judges = Judge.objects.filter(provider="imported", config__source="preference")
    assert sorted(judges.values_list("name", flat=True)) == [
        "rm-large · reward",
        "rm-small · reward",
        "scores · reward",
    ]
    found = {}
    for verdict in Verdict.objects.select_related("judge", "pair__response_a", "pair__response_b"):
        vote = verdict.pair.human_votes.get()
        chosen_is_a = vote.outcome == "A"
        chosen = (verdict.pair.response_a if chosen_is_a else verdict.pair.response_b).text
        s_chosen, s_rejected = expected[(verdict.judge.model_id, chosen)]
        gap = s_chosen - s_rejected
        assert verdict.margin == pytest.approx(gap if chosen_is_a else -gap)
        prefers_chosen = "A" if chosen_is_a else "B"
        assert verdict.outcome == (
            "tie" if gap == 0 else prefers_chosen if gap > 0 else {"A": "B", "B": "A"}[vote.outcome]
        )
        assert verdict.status_ab == ParseStatus.OK and verdict.status_ba == ParseStatus.NOT_RUN
        found[(verdict.judge.model_id, chosen)] = True
    # One verdict per scored row and scorer; rm-large did not score the last row.
    assert set(found) == set(expected) and len(found) == 8 + 8 + 7


def test_it_splits_an_implicit_prompt_off_whole_conversations() -> None:
    output = run("--format", "preference", "--dataset", "implicit", str(PREF / "implicit.jsonl"))
    assert "implicit prompts: 2" in output
    multi = Pair.objects.select_related("prompt").get(prompt__text__startswith="[system]")
    assert multi.turn == 2
    assert multi.prompt.text == (
        "[system]\nYou are a concise assistant.\n\n[user]\nName a prime number.\n\n"
        "[assistant]\n7\n\n[user]\nAnd an even one?"
    )
    assert stored_rows("implicit") >= {
        (multi.prompt.text, "2 is the only even prime.", "4"),
        ("Translate 'thank you' into French.", "Merci.", "Gracias."),
    }


def test_it_reads_ultrafeedback_rows_with_a_named_scorer() -> None:
    run("--format", "preference", "--dataset", "uf", str(PREF / "ultrafeedback.jsonl"))
    assert stored_rows("uf") == {
        (
            "Which planet is known as the Red Planet?",
            "Mars, for the iron oxide on its surface.",
            "Jupiter.",
        ),
        ("Name a mammal that can fly.", "The bat.", "The penguin."),
    }
    verdicts = Verdict.objects.filter(judge__name="gpt-4-ultrafeedback · reward")
    assert sorted(verdicts.values_list("outcome", flat=True))[-1] == "tie"  # 8.5 and 8.5
    assert sorted(abs(m) for m in verdicts.values_list("margin", flat=True)) == [0.0, 7.0]


def test_it_splits_like_trl() -> None:
    # TRL's extract_prompt on plain strings keeps the space with the answers.
    assert extract_prompt("The sky is blue.", "The sky is green.") == (
        "The sky is",
        " blue.",
        " green.",
    )
    user = {"role": "user", "content": "Hi"}
    good, bad = (
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": "Go away."},
    )
    assert extract_prompt([user, good], [user, bad]) == ([user], [good], [bad])
    assert render([user]) == "Hi" and render("plain") == "plain"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_it_refuses_broken_rows_by_line_and_field(tmp_path: Path) -> None:
    rows = lines_of(PREF / "conversational.jsonl")
    rows[0]["chosen"] = 3
    rows[1]["rejected"][0] = {"role": "assistant"}
    rows[2]["rewards"]["rm-small"] = {"chosen": 1.0, "rejected": None}
    rows[3]["rewards"]["rm-large"]["chosen"] = "high"
    rows[4]["rewards"] = [1, 2]
    rows[5]["chosen"] = "a plain answer beside a conversation"
    del rows[6]["rejected"]
    broken = write_jsonl(tmp_path / "broken.jsonl", rows)
    run("--format", "preference", str(PREF / "plain.jsonl"))
    before = table_counts()

    output = refused("--format", "preference", str(broken))
    assert "broken.jsonl:1: chosen: expected a string or a list of messages, got 3" in output
    assert "broken.jsonl:2: rejected[0].content: missing" in output
    assert (
        "broken.jsonl:3: rewards.rm-small.rejected: missing: give both scores or neither" in output
    )
    assert 'broken.jsonl:4: rewards.rm-large.chosen: expected a number, got "high"' in output
    assert "broken.jsonl:5: rewards: expected an object, got a list" in output
    assert "broken.jsonl:6: rejected: chosen and rejected must both be strings or both" in output
    assert "broken.jsonl:7: rejected: missing" in output
    assert table_counts() == before


def test_it_refuses_identical_conversations_without_a_prompt(tmp_path: Path) -> None:
    same = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    broken = write_jsonl(tmp_path / "same.jsonl", [{"chosen": same, "rejected": same}])
    output = refused("--format", "preference", str(broken))
    assert "same.jsonl:1: rejected: the same as chosen: no prompt to split off" in output


def test_it_audits_a_reward_model_like_any_judge(lead: User) -> None:
    run("--format", "preference", str(PREF / "conversational.jsonl"))
    dataset = Dataset.objects.get(name="preference")
    judge = Judge.objects.get(name="rm-small · reward")
    rows = lines_of(PREF / "conversational.jsonl")
    gaps = [r["rewards"]["rm-small"]["chosen"] - r["rewards"]["rm-small"]["rejected"] for r in rows]
    threshold = 0.5
    close = sum(abs(gap) < threshold for gap in gaps)
    assert 0 < close < len(rows)

    audit = audit_build(
        name="rm-small on preference",
        dataset=dataset,
        judges=[judge],
        size=6,
        overlap_k=1,
        quotas={LOW_MARGIN: close},
        thresholds={"margin": threshold},
        seed=7,
        created_by=lead,
    )
    assert list(audit.judges.all()) == [judge]
    assert audit.selection["available"][LOW_MARGIN] == close
    low = audit.items.filter(stratum=LOW_MARGIN).select_related("pair")
    assert low.count() == close
    for item in low:
        assert abs(Verdict.objects.get(judge=judge, pair=item.pair).margin) < threshold

    # The report measures the reward model against the people's choice, as any judge.
    snapshot = snapshot_compute(dataset=dataset, n_boot=10)
    agreement = snapshot.metrics["figures"]["S1"]["judges"][f"j:{judge.pk}"]["vs_humans"]
    agrees = sum(gap > 0 for gap in gaps) / len(gaps)
    assert agreement["percent_agreement"]["value"] == pytest.approx(agrees, abs=1e-6)
