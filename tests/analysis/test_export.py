"""Calibration-set export: the file imports back as the same labels and verdicts."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import include, path

from analysis.export import export_to_file, manifest_path, pseudonym
from annotation import models as am
from corpus import models as dm
from corpus.importers import schema
from corpus.importers.formats import generic
from corpus.importers.services import import_file
from judges import models as jm
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    LabelFactory,
    PairFactory,
    PromptFactory,
    VerdictFactory,
)

# The site's urls plus the export's, until config/urls.py includes analysis.export_urls.
urlpatterns = [path("", include("analysis.export_urls")), path("", include("config.urls"))]


def _label(item: am.AuditItem, user: User, outcome: str, *, a_on_left: bool, ms: int) -> None:
    LabelFactory(
        assignment__item=item,
        assignment__annotator=user,
        assignment__a_on_left=a_on_left,
        outcome=outcome,
        strength=2 if outcome == "A" else None,
        time_spent_ms=ms,
    )


@pytest.fixture
def audit(lead: User, annotator: User, other_annotator: User) -> am.Audit:
    dataset = DatasetFactory(name="source-set")
    audit = am.Audit.objects.create(
        name="calibration", dataset=dataset, created_by=lead, target_size=3
    )
    judges = [JudgeFactory(name="gpt-judge"), JudgeFactory(name="rm-judge", model_id="rm-7b")]
    outcomes = [("A", "A"), ("B", "tie"), ("tie", "B")]
    for position, (first, second) in enumerate(outcomes):
        pair = PairFactory(prompt=PromptFactory(dataset=dataset), category="math")
        item = am.AuditItem.objects.create(
            audit=audit,
            pair=pair,
            stratum=am.Stratum.LOW_MARGIN if position else am.Stratum.RANDOM,
            inclusion_probability=0.25 * (position + 1),
            position=position,
        )
        _label(item, annotator, first, a_on_left=True, ms=1200 + position)
        _label(item, other_annotator, second, a_on_left=False, ms=3400 + position)
        jm.Verdict.objects.create(
            judge=judges[0],
            pair=pair,
            outcome_ab="A",
            outcome_ba="B" if position else "A",
            status_ab="ok",
            status_ba="ok",
            outcome="tie" if position else "A",
            consistent=not position,
            margin=1.5 - position,
            raw_ab="[[A]]",
            raw_ba="[[A]]" if position else "[[B]]",
        )
        VerdictFactory(
            judge=judges[1],
            pair=pair,
            outcome="B",
            outcome_ab="B",
            status_ba="failed",
            raw_ba="garbage",
        )
        if position == 1:
            am.Adjudication.objects.create(item=item, lead=lead, outcome="B")
    return audit


def _votes(pairs: Any) -> set[tuple[str, str, str]]:
    return {
        (v.pair.source_key, v.voter_id, v.outcome)
        for v in dm.HumanVote.objects.filter(pair__in=pairs).select_related("pair")
    }


def _verdicts(pairs: Any) -> set[tuple[Any, ...]]:
    return {
        (
            v.pair.source_key,
            v.judge.fingerprint,
            v.outcome_ab,
            v.outcome_ba,
            v.status_ab,
            v.status_ba,
            v.margin,
            v.outcome,
            v.consistent,
            v.raw_ba,
        )
        for v in jm.Verdict.objects.filter(pair__in=pairs).select_related("pair", "judge")
    }


def _expected_votes(audit: am.Audit) -> set[tuple[str, str, str]]:
    from django.conf import settings

    return {
        (
            label.item.pair.source_key,
            pseudonym(label.annotator_id, secret=settings.SECRET_KEY),
            label.outcome,
        )
        for label in am.Label.objects.filter(item__audit=audit).select_related("item__pair")
    }


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_it_round_trips_labels_and_verdicts(audit: am.Audit, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"calibration.{fmt}"
    result = export_to_file(audit_ids=[audit.pk], fmt=fmt, path=path, layout="generic")

    target = DatasetFactory(name=f"reimported-{fmt}")
    job = import_file(dataset=target, fmt="generic", path=path)

    assert job.status == dm.ImportJob.Status.DONE, job.errors
    original = dm.Pair.objects.filter(audit_items__audit=audit)
    imported = dm.Pair.objects.filter(dataset=target)
    assert imported.count() == original.count() == result["counts"]["pairs"] == 3
    assert _votes(imported) == _expected_votes(audit)
    assert len(_votes(imported)) == 6
    assert _verdicts(imported) == _verdicts(original)
    assert {(p.source_key, p.prompt.text, p.response_a.text) for p in imported} == {
        (p.source_key, p.prompt.text, p.response_a.text) for p in original
    }
    # the imported judges are the very same versions, found by fingerprint
    assert jm.Judge.objects.count() == 2


def test_the_export_writes_the_columns_and_keys_the_generic_importer_accepts(
    audit: am.Audit, tmp_path: Path
) -> None:
    """One field list (corpus.importers.schema) for both sides: with every optional value set,
    the export writes every column and nested key the importer reads, and nothing else."""
    verdict = jm.Verdict.objects.filter(judge__name="gpt-judge").order_by("pk").first()
    assert verdict is not None
    verdict.margin_ab, verdict.margin_ba, verdict.strength = 0.5, -0.25, 2
    verdict.criteria_ab, verdict.criteria_ba = {"helpful": "A"}, {"helpful": "B"}
    verdict.save()
    dm.HumanVote.objects.create(
        pair=verdict.pair, source="arena_user", voter_id="u-1", outcome="B", strength=1
    )
    path = tmp_path / "calibration.jsonl"
    export_to_file(audit_ids=[audit.pk], fmt="jsonl", path=path, layout="generic")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    csv_path = tmp_path / "calibration.csv"
    export_to_file(audit_ids=[audit.pk], fmt="csv", path=csv_path, layout="generic")

    columns = {name for row in rows for name in row}
    vote_keys = {key for row in rows for vote in row["votes"] for key in vote}
    verdict_keys = {key for row in rows for v in row["verdicts"] for key in v}
    assert list(rows[0]) == list(schema.COLUMNS)
    assert csv_path.read_text().splitlines()[0].split(",") == list(schema.COLUMNS)
    assert (
        columns
        == set(schema.COLUMNS)
        == schema.FIELDS
        - {
            *schema.FLAT_VOTE_FIELDS,
            *schema.FLAT_VERDICT_FIELDS,
        }
    )
    assert vote_keys == set(schema.VOTE_KEYS) == generic.VOTE_KEYS
    assert verdict_keys == set(schema.VERDICT_KEYS) == generic.VERDICT_KEYS
    # ...and the importer takes all of it back, but refuses a key outside the list.
    target = DatasetFactory(name="every-key")
    job = import_file(dataset=target, fmt="generic", path=path)
    assert job.status == dm.ImportJob.Status.DONE, job.errors
    again = jm.Verdict.objects.get(
        pair__dataset=target, judge=verdict.judge, pair__source_key=verdict.pair.source_key
    )
    assert (again.margin_ab, again.margin_ba, again.strength) == (0.5, -0.25, 2)
    assert (again.criteria_ab, again.criteria_ba) == ({"helpful": "A"}, {"helpful": "B"})
    rows[0]["verdicts"][0]["outcome_abc"] = "A"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    refused = import_file(dataset=DatasetFactory(name="typo"), fmt="generic", path=path)
    assert refused.status == dm.ImportJob.Status.FAILED
    assert any("verdicts[0].outcome_abc: unknown field" in e for e in refused.errors), (
        refused.errors
    )


def test_it_writes_a_manifest_with_the_files_sha256(audit: am.Audit, tmp_path: Path) -> None:
    path = tmp_path / "calibration.parquet"
    export_to_file(audit_ids=[audit.pk], fmt="parquet", path=path)

    manifest = json.loads(manifest_path(path).read_text())

    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["counts"]["pairs"] == pq.ParquetFile(path).metadata.num_rows == 3
    assert manifest["counts"]["labels"] == am.Label.objects.count() == 6
    assert manifest["counts"]["verdicts"] == 6
    assert manifest["counts"]["adjudicated"] == 1
    assert {j["fingerprint"] for j in manifest["judges"]} == set(
        jm.Judge.objects.values_list("fingerprint", flat=True)
    )
    assert "tie" in manifest["tie_policy"]
    assert manifest["tribunal_version"]


def test_it_keeps_side_order_time_weight_and_adjudication_in_meta(
    audit: am.Audit, tmp_path: Path, annotator: User
) -> None:
    path = tmp_path / "calibration.csv"
    export_to_file(audit_ids=[audit.pk], fmt="csv", path=path, layout="generic")

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    items = {i.pair.source_key: i for i in am.AuditItem.objects.select_related("pair")}
    for row in rows:
        meta = json.loads(row["meta"])["tribunal_export"]
        item = items[row["pair_id"]]
        assert meta["stratum"] == item.stratum
        assert meta["weight"] == pytest.approx(1 / item.inclusion_probability)
        orders = {label["side_order"] for label in meta["labels"]}
        assert orders == {"A left", "B left"}
        times = sorted(label["time_spent_ms"] for label in meta["labels"])
        assert times == sorted(
            am.Label.objects.filter(item=item).values_list("time_spent_ms", flat=True)
        )
        # annotators are pseudonymous: no username in the row
        assert annotator.username not in json.dumps(row)
    adjudicated = [
        json.loads(r["meta"])["tribunal_export"]
        for r in rows
        if json.loads(r["meta"])["tribunal_export"]["audits"][0]["adjudicated"]
    ]
    assert [m["label"] for m in adjudicated] == ["B"]


def test_it_exports_from_the_command(audit: am.Audit, tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    call_command("export_calibration", "--audit", str(audit.pk), "--output", str(path))

    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert manifest_path(path).exists()


def test_it_refuses_an_unknown_audit_with_a_clear_message(db: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no audit with id 999"):
        call_command(
            "export_calibration",
            "--audit",
            "999",
            "--format",
            "csv",
            "--output",
            str(tmp_path / "x"),
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.urls(__name__)
def test_it_streams_the_download_to_leads_only(
    audit: am.Audit, lead_client: Client, annotator_client: Client
) -> None:
    response = lead_client.get(f"/reports/audit/{audit.pk}/export.jsonl")
    denied = annotator_client.get(f"/reports/audit/{audit.pk}/export.jsonl")

    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    assert len(body.splitlines()) == 3
    assert denied.status_code == 403


@pytest.mark.urls(__name__)
def test_it_serves_the_export_over_the_api(audit: am.Audit, lead: User) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(lead)
    response = client.get(f"/api/audits/{audit.pk}/export/", {"file_format": "csv"})
    bad = client.get(f"/api/audits/{audit.pk}/export/", {"file_format": "xls"})

    assert response.status_code == 200
    rows = list(csv.DictReader(b"".join(response.streaming_content).decode().splitlines()))
    assert len(rows) == 3
    assert bad.status_code == 400
    assert "file_format" in bad.json()["detail"]


@pytest.mark.urls(__name__)
def test_it_streams_a_parquet_download_that_imports_back(
    audit: am.Audit, lead_client: Client, tmp_path: Path
) -> None:
    response = lead_client.get(f"/reports/audit/{audit.pk}/export.parquet?layout=generic")
    path = tmp_path / "download.parquet"
    path.write_bytes(b"".join(response.streaming_content))

    target = DatasetFactory(name="from-download")
    job = import_file(dataset=target, fmt="generic", path=path)

    assert response["Content-Disposition"].endswith('calibration-generic.parquet"')
    assert job.status == dm.ImportJob.Status.DONE, job.errors
    assert _votes(dm.Pair.objects.filter(dataset=target)) == _expected_votes(audit)


def test_an_exported_calibration_set_imported_as_a_dataset_rechecks_a_new_judge_version(
    audit: am.Audit, tmp_path: Path
) -> None:
    """Issue 12 item 2, the second road: the calibration set exported (generic layout) and
    imported elsewhere as a dataset holds exactly the labelled pairs with their labels; a new
    judge version's verdicts on it (imported from its own file or run there) are compared with
    the old one's against those labels at once, with no new human label."""
    from analysis import compare

    path = tmp_path / "calibration.jsonl"
    export_to_file(audit_ids=[audit.pk], fmt="jsonl", path=path, layout="generic")
    target = DatasetFactory(name="calibration-set")
    assert import_file(dataset=target, fmt="generic", path=path).status == "done"
    v1 = jm.Judge.objects.get(name="gpt-judge")
    v2 = JudgeFactory(name="gpt-judge", version=2, model_id="gpt-judge-2")
    people: dict[str, list[str]] = {}
    for vote in dm.HumanVote.objects.filter(pair__dataset=target).select_related("pair"):
        people.setdefault(vote.pair.source_key, []).append(vote.outcome)
    new = {"A": "A", "B": "B", "tie": "A"}  # v2 answers A where v1 said tie
    for pair in dm.Pair.objects.filter(dataset=target):
        old = jm.Verdict.objects.get(judge=v1, pair=pair).outcome
        jm.Verdict.objects.create(
            judge=v2, pair=pair, outcome=new[old], outcome_ab=new[old], status_ab="ok"
        )

    data = compare.judges_compare(first=v1, second=v2, dataset=target, n_boot=100)

    assert data.pairs_labelled == data.pairs_compared == 3
    # A plain recount: both annotators' votes per pair, a strict majority else a tie.
    right = {1: 0, 2: 0}
    for pair in dm.Pair.objects.filter(dataset=target):
        votes = people[pair.source_key]
        truth = votes[0] if votes.count(votes[0]) * 2 > len(votes) else "tie"
        for version, judge in ((1, v1), (2, v2)):
            right[version] += jm.Verdict.objects.get(judge=judge, pair=pair).outcome == truth
    assert data.figures.agreement is not None
    agreement = data.figures.agreement.kinds["percent_agreement"]
    assert agreement.first.value == pytest.approx(right[1] / 3)
    assert agreement.second.value == pytest.approx(right[2] / 3)
    assert agreement.delta.value == pytest.approx((right[2] - right[1]) / 3)
    assert data.figures.flip_rate.value == pytest.approx(2 / 3)  # the two ties
