"""Flags for training pipelines: which pairs, for which reasons, with which human label."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from analysis.flags import flag_rules, flags_to_file
from annotation import models as am
from corpus import models as dm
from judges import models as jm
from tests.factories import DatasetFactory, JudgeFactory, LabelFactory, PairFactory, PromptFactory


@dataclass
class Flagged:
    dataset: dm.Dataset
    pairs: dict[str, dm.Pair]
    judges: list[jm.Judge]


def _verdict(judge: jm.Judge, pair: dm.Pair, outcome: str, **extra: object) -> None:
    jm.Verdict.objects.create(judge=judge, pair=pair, outcome=outcome, outcome_ab=outcome, **extra)


@pytest.fixture
def flagged(lead: User, annotator: User, other_annotator: User) -> Flagged:
    dataset = DatasetFactory(name="train-set")
    first, second = JudgeFactory(name="big-judge"), JudgeFactory(name="small-judge")
    keys = ["flip", "close", "split", "refusal", "clean", "voted"]
    pairs = {k: PairFactory(prompt=PromptFactory(dataset=dataset), source_key=k) for k in keys}
    for key, pair in pairs.items():
        _verdict(first, pair, "A", consistent=key != "flip" and key != "voted", margin=2.0)
        other = "B" if key == "split" else "A"
        _verdict(second, pair, other, margin=0.1 if key == "close" else 1.5)
    for pair in pairs.values():
        for response in (pair.response_a, pair.response_b):
            refusal = response == pairs["refusal"].response_b
            jm.ResponseClassification.objects.create(
                response=response,
                classifier="c" * 64,
                label="ethical_refusal" if refusal else "normal",
                score=0.9,
            )
    dm.HumanVote.objects.create(
        pair=pairs["voted"], voter_id="crowd-1", outcome="B", source="generic", row_hash="v1"
    )
    audit = am.Audit.objects.create(
        name="a", dataset=dataset, created_by=lead, target_size=2, selection={}
    )
    now = timezone.now()
    for position, key in enumerate(["refusal", "split"]):
        item = am.AuditItem.objects.create(
            audit=audit,
            pair=pairs[key],
            stratum="random",
            inclusion_probability=0.5,
            position=position,
        )
        for person in (annotator, other_annotator):
            LabelFactory(
                assignment__item=item,
                assignment__annotator=person,
                assignment__served_at=now,
                outcome="B",
                chose_left=None,  # labels of this fixture say nothing of the side
            )
        if key == "split":
            am.Adjudication.objects.create(item=item, lead=lead, outcome="tie")
    return Flagged(dataset, pairs, [first, second])


def test_it_flags_each_reason_with_the_human_label(flagged: Flagged, tmp_path: Path) -> None:
    rules = flag_rules(flagged.dataset, margin=0.5)
    result = flags_to_file(rules, fmt="parquet", path=tmp_path / "flags.parquet")

    frame = pd.read_parquet(tmp_path / "flags.parquet").set_index("source_key")
    assert sorted(frame.index) == ["close", "flip", "refusal", "split", "voted"]  # not "clean"
    reasons = {key: list(value) for key, value in frame["reasons"].items()}
    assert reasons == {
        "flip": ["swap_inconsistent"],
        "close": ["low_margin"],
        "split": ["judges_disagree"],
        "refusal": ["ethics_refusal"],
        "voted": ["swap_inconsistent"],
    }
    assert list(frame.loc["close", "low_margin_judges"]) == ["small-judge v1"]
    assert list(frame.loc["flip", "inconsistent_judges"]) == ["big-judge v1"]
    assert frame.loc["refusal", "class_b"] == "ethical_refusal"
    assert bool(frame.loc["refusal", "ethics_refusal"]) is True
    assert frame.loc["refusal", "human_label"] == "B"  # both annotators said B
    assert frame.loc["refusal", "human_label_source"].startswith("audit labels")
    assert frame.loc["split", "human_label"] == "tie"  # the adjudication wins
    assert frame.loc["split", "human_label_source"].startswith("adjudication")
    assert frame.loc["voted", "human_label"] == "B"
    assert frame.loc["voted", "human_label_source"] == "imported votes"
    assert frame["human_label"].isna().sum() == 2
    assert result["flagged"] == 5 and result["pairs"] == 6
    assert result["reasons"] == {
        "ethics_refusal": 1,
        "swap_inconsistent": 2,
        "low_margin": 1,
        "judges_disagree": 1,
    }
    assert result["rules"]["shifted_slice"].startswith("not checked")


def test_it_writes_the_same_rows_as_json_lines(flagged: Flagged, tmp_path: Path) -> None:
    flags_to_file(
        flag_rules(flagged.dataset, margin=0.5), fmt="parquet", path=tmp_path / "f.parquet"
    )
    flags_to_file(flag_rules(flagged.dataset, margin=0.5), fmt="jsonl", path=tmp_path / "f.jsonl")

    lines = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    frame = pd.read_parquet(tmp_path / "f.parquet")
    as_lists = frame.map(lambda v: list(v) if hasattr(v, "tolist") else v)
    assert lines == json.loads(as_lists.to_json(orient="records"))


def test_it_takes_the_latest_audits_margin_and_says_when_there_is_none(
    flagged: Flagged, tmp_path: Path
) -> None:
    unchecked = flag_rules(flagged.dataset)
    assert unchecked.margin is None
    am.Audit.objects.filter(dataset=flagged.dataset).update(
        selection={"thresholds": {"margin": 0.5}}
    )
    rules = flag_rules(flagged.dataset)

    result = flags_to_file(rules, fmt="jsonl", path=tmp_path / "f.jsonl")
    none = flags_to_file(unchecked, fmt="jsonl", path=tmp_path / "g.jsonl")

    assert rules.margin == 0.5 and "selection" in result["rules"]["low_margin"]
    assert result["reasons"]["low_margin"] == 1
    assert none["reasons"]["low_margin"] == 0
    assert none["rules"]["low_margin"].startswith("not checked")


def test_it_keeps_to_the_judges_asked_for(flagged: Flagged, tmp_path: Path) -> None:
    rules = flag_rules(flagged.dataset, judge_ids=[flagged.judges[1].pk], margin=0.5)
    result = flags_to_file(rules, fmt="jsonl", path=tmp_path / "f.jsonl")
    # one judge: no flips (only the big judge flips) and no disagreement
    assert result["reasons"]["swap_inconsistent"] == result["reasons"]["judges_disagree"] == 0
    assert result["reasons"]["low_margin"] == 1


def test_it_exports_from_the_command(flagged: Flagged, tmp_path: Path) -> None:
    out = StringIO()
    path = tmp_path / "flags.jsonl"
    call_command(
        "export_flags",
        "--dataset",
        "train-set",
        "--margin",
        "0.5",
        "--output",
        str(path),
        stdout=out,
    )

    assert "5 of 6 pairs flagged" in out.getvalue()
    assert len(path.read_text().splitlines()) == 5
    assert json.loads((tmp_path / "flags.jsonl.manifest.json").read_text())["flagged"] == 5
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("export_flags", "--dataset", "nope", "--output", str(path))
    with pytest.raises(CommandError, match="judge id 999"):
        call_command(
            "export_flags", "--dataset", "train-set", "--judge", "999", "--output", str(path)
        )


def test_it_serves_the_flags_to_leads_over_the_api_and_the_page(
    flagged: Flagged, lead_client: Client, annotator_client: Client
) -> None:
    api = lead_client.get(
        "/api/datasets/train-set/flags/", {"file_format": "parquet", "margin": 0.5}
    )
    bad = lead_client.get("/api/datasets/train-set/flags/", {"margin": "-1"})
    denied = annotator_client.get("/api/datasets/train-set/flags/")
    page = lead_client.get("/reports/dataset/train-set/flags.jsonl?margin=0.5")
    page_denied = annotator_client.get("/reports/dataset/train-set/flags.jsonl")
    detail = lead_client.get("/datasets/train-set/")

    assert api.status_code == 200
    assert len(pd.read_parquet(io.BytesIO(api.content))) == 5
    assert bad.status_code == 400 and "margin" in bad.json()
    assert denied.status_code == 403 and page_denied.status_code == 403
    assert page["Content-Disposition"] == 'attachment; filename="train-set-flags.jsonl"'
    assert len(page.content.decode().splitlines()) == 5
    assert b"/reports/dataset/train-set/flags.parquet" in detail.content
