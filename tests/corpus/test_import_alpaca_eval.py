"""`import_pairs --format alpaca-eval` on the shared AlpacaEval annotation files."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from analysis.services import snapshot_compute
from corpus.models import Pair, Prompt, Response
from judges.models import Judge, ParseStatus, Verdict
from tests.corpus.test_import_command import DATA, refused, run, table_counts

ALPACA = DATA / "alpaca_eval"
WEIGHTED = ALPACA / "claude-2.1.weighted_alpaca_eval_gpt4_turbo.annotations.json.gz"
COT = ALPACA / "llama-2-70b-chat-hf.alpaca_eval_cot_gpt4_turbo_fn.annotations.json.gz"
FILES = (WEIGHTED, COT)
# AlpacaEval's own discrete win rates (percent) for these files, as published in
# tatsu-lab/alpaca_eval src/alpaca_eval/leaderboards/data_AlpacaEval_2/
# {weighted_alpaca_eval_gpt4_turbo,alpaca_eval_cot_gpt4_turbo_fn}_leaderboard.csv.
PUBLISHED = {"claude-2.1": 14.409937888198757, "llama-2-70b-chat-hf": 15.15527950310559}

pytestmark = pytest.mark.django_db


def rows_of(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows: list[dict[str, Any]] = json.load(handle)
    return rows


def write_gz(path: Path, rows: list[dict[str, Any]]) -> str:
    text = json.dumps(rows, indent=2, ensure_ascii=False)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return text


def discrete_win_rate(rows: list[dict[str, Any]]) -> float:
    """AlpacaEval's discrete win rate of generator_2, counted here from the raw preferences:
    a preference above 1.5 is a win, 1.5 (or the old 0) a tie, a missing one is left out."""
    wins = ties = total = 0
    for row in rows:
        value = row.get("preference")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        value = float(value)
        total += 1
        if value in (1.5, 0.0):
            ties += 1
        elif value > 1.5:
            wins += 1
    return (wins + ties / 2) / total


@pytest.mark.parametrize("path", FILES, ids=["weighted", "cot_fn"])
def test_it_imports_each_shared_file_as_805_pairs_with_one_verdict_each(path: Path) -> None:
    rows = rows_of(path)
    run("--format", "alpaca-eval", "--dataset", "ae", str(path))
    pairs = Pair.objects.filter(dataset__name="ae")
    assert pairs.count() == len(rows) == 805
    annotator = rows[0]["annotator"]
    judge = Judge.objects.get(name=f"{annotator} · alpaca-eval", provider="imported")
    verdicts = Verdict.objects.filter(judge=judge)
    assert verdicts.count() == 805
    assert verdicts.filter(status_ab=ParseStatus.OK).count() == 805
    baseline, model = rows[0]["generator_1"], rows[0]["generator_2"]
    assert set(pairs.values_list("response_a__model_name", "response_b__model_name")) == {
        (baseline, model)
    }
    # Every verdict lands on the pair holding its row's texts, with the row's outcome.
    by_texts = {
        (v.pair.prompt.text, v.pair.response_a.text, v.pair.response_b.text): v.outcome
        for v in verdicts.select_related("pair__prompt", "pair__response_a", "pair__response_b")
    }
    expected = {
        (r["instruction"], r["output_1"], r["output_2"]): (
            "tie" if float(r["preference"]) == 1.5 else "B" if float(r["preference"]) > 1.5 else "A"
        )
        for r in rows
    }
    assert by_texts == expected
    assert sorted(set(pairs.values_list("category", flat=True))) == sorted(
        {r["dataset"] for r in rows}
    )


def test_it_keeps_the_weighted_preference_as_a_margin() -> None:
    run("--format", "alpaca-eval", str(WEIGHTED), str(COT))
    rows = {(r["instruction"], r["output_2"]): r for r in rows_of(WEIGHTED)}
    weighted = Verdict.objects.filter(judge__model_id="weighted_alpaca_eval_gpt4_turbo")
    assert weighted.count() == 805
    assert not weighted.filter(margin__isnull=True).exists()
    for verdict in weighted.select_related("pair__prompt", "pair__response_b"):
        row = rows[(verdict.pair.prompt.text, verdict.pair.response_b.text)]
        probability_b = float(row["preference"]) - 1
        assert verdict.margin == pytest.approx((1 - probability_b) - probability_b, abs=1e-9)
        assert verdict.margin_ab == verdict.margin
        assert json.loads(verdict.raw_ab)["raw_completion"] == row["raw_completion"]
    # The chain-of-thought annotator gives whole preferences: no margin, the raw kept.
    cot = Verdict.objects.filter(judge__model_id="alpaca_eval_cot_gpt4_turbo_fn")
    assert cot.count() == 805 and not cot.filter(margin__isnull=False).exists()
    raw = json.loads(cot.first().raw_ab)  # type: ignore[union-attr]
    assert raw["referenced_models"] and "concise_explanation" in raw["raw_completion"]


def test_it_joins_the_files_of_several_models_on_instruction_and_baseline_output() -> None:
    run("--format", "alpaca-eval", str(WEIGHTED), str(COT))
    instructions = {r["instruction"] for r in rows_of(WEIGHTED)}
    assert instructions == {r["instruction"] for r in rows_of(COT)}
    assert Pair.objects.filter(dataset__name="alpaca-eval").count() == 2 * 805
    assert Prompt.objects.filter(dataset__name="alpaca-eval").count() == len(instructions)
    baseline = Response.objects.filter(model_name="gpt4_1106_preview")
    assert baseline.count() == 805  # one baseline answer per instruction, shared
    prompt = Prompt.objects.filter(dataset__name="alpaca-eval").first()
    assert prompt is not None
    models = {p.response_b.model_name for p in prompt.pairs.select_related("response_b")}
    assert models == {"claude-2.1", "llama-2-70b-chat-hf"}


def test_it_adds_nothing_when_a_file_is_imported_again() -> None:
    run("--format", "alpaca-eval", str(WEIGHTED), str(COT))
    before = table_counts()
    output = run("--format", "alpaca-eval", str(WEIGHTED))
    assert table_counts() == before
    assert "0 new pairs · 805 existing pairs joined" in output
    assert "0 new verdicts · 805 duplicate verdicts skipped" in output


def test_it_refuses_a_corrupted_copy_by_line_and_writes_nothing(tmp_path: Path) -> None:
    run("--format", "alpaca-eval", str(COT))
    before = table_counts()
    rows = rows_of(WEIGHTED)
    rows[300]["output_2"] = 5
    rows[512]["preference"] = "two"
    del rows[640]["generator_2"]
    broken = tmp_path / WEIGHTED.name
    text = write_gz(broken, rows)
    lines = text.splitlines()
    at_output = lines.index('    "output_2": 5,') + 1
    at_preference = lines.index('    "preference": "two",') + 1
    row_640 = [i for i, line in enumerate(lines) if line == "  {"][640] + 1

    output = refused("--format", "alpaca-eval", "--dataset", "alpaca-eval", str(broken))
    assert f"{broken.name}:{at_output}: output_2: expected a string, got 5" in output
    assert (
        f'{broken.name}:{at_preference}: preference: expected a number between 1 and 2, got "two"'
        in output
    )
    assert f"{broken.name}:{row_640}: generator_2: missing" in output
    assert table_counts() == before


def test_it_refuses_a_truncated_gzip_copy(tmp_path: Path) -> None:
    data = WEIGHTED.read_bytes()
    broken = tmp_path / WEIGHTED.name
    broken.write_bytes(data[: len(data) // 2])
    output = refused("--format", "alpaca-eval", str(broken))
    assert f"{broken.name}:1: file: cannot read the file" in output
    assert table_counts()["Pair"] == 0


def test_it_counts_missing_preferences_as_failed_parses(tmp_path: Path) -> None:
    rows = rows_of(WEIGHTED)
    rows[3]["preference"] = None
    del rows[7]["preference"]
    rows[9]["preference"] = float("nan")
    path = tmp_path / "claude-2.1.annotations.json"
    path.write_text(json.dumps(rows, indent=2))  # NaN, as pandas' to_json would not write it
    output = run("--format", "alpaca-eval", str(path))
    assert "3 failed parses" in output
    verdicts = Verdict.objects.all()
    assert verdicts.count() == 805
    failed = verdicts.filter(status_ab=ParseStatus.FAILED)
    assert failed.count() == 3 and not failed.filter(outcome__isnull=False).exists()
    kept = {json.dumps(json.loads(v.raw_ab)["raw_completion"]) for v in failed}
    assert kept == {json.dumps(rows[i]["raw_completion"]) for i in (3, 7, 9)}


@pytest.mark.parametrize("path", FILES, ids=["weighted", "cot_fn"])
def test_it_reports_the_win_rate_alpaca_eval_computes(path: Path) -> None:
    rows = rows_of(path)
    run("--format", "alpaca-eval", "--dataset", "ae", str(path))
    judge = Judge.objects.get(model_id=rows[0]["annotator"])
    dataset = Pair.objects.first().dataset  # type: ignore[union-attr]
    # The report's figure: the dataset snapshot's per-model win rate under this judge
    # (analysis.metrics.length_controlled_win_rates' raw win rate, ties counted as half).
    snapshot = snapshot_compute(dataset=dataset, n_boot=10)
    table = snapshot.metrics["studies"]["style"]["lc_win_rates"][f"j:{judge.pk}"]
    model = {row["model"]: row for row in table}[rows[0]["generator_2"]]
    assert model["n"] == 805
    assert model["win_rate"] == pytest.approx(discrete_win_rate(rows), abs=1e-6)
    assert 100 * model["win_rate"] == pytest.approx(PUBLISHED[rows[0]["generator_2"]], abs=1e-4)
    # Length-controlled: the baseline is always A, so the fit has no slot term (with one, it
    # read 50% [50, 50]); a model that loses most games stays well below one half.
    assert model["lc_low"] < model["lc_win_rate"] < model["lc_high"] < 0.5
