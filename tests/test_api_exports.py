"""Calibration-set exports over the API: several audits in one file, its manifest, and the
round trip through the import API."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from analysis.export import pseudonym
from annotation import models as am
from corpus import models as dm
from judges import models as jm
from tests.analysis.test_export import _label
from tests.factories import DatasetFactory, JudgeFactory, PairFactory, PromptFactory


def _audit(name: str, dataset: dm.Dataset, lead: User, pairs: list[dm.Pair]) -> am.Audit:
    audit = am.Audit.objects.create(
        name=name, dataset=dataset, created_by=lead, target_size=len(pairs)
    )
    for position, pair in enumerate(pairs):
        am.AuditItem.objects.create(
            audit=audit,
            pair=pair,
            stratum=am.Stratum.RANDOM,
            inclusion_probability=0.5,
            position=position,
        )
    return audit


@pytest.fixture
def audits(lead: User, annotator: User, other_annotator: User) -> list[am.Audit]:
    """Two audits on two datasets: 2 + 1 pairs, two labels each, one verdict each."""
    judge = JudgeFactory(name="gpt-judge")
    made = []
    for name, size in (("first-set", 2), ("second-set", 1)):
        dataset = DatasetFactory(name=name)
        pairs = [PairFactory(prompt=PromptFactory(dataset=dataset)) for _ in range(size)]
        audit = _audit(f"{name} audit", dataset, lead, pairs)
        for item in audit.items.all():
            _label(item, annotator, "A", a_on_left=True, ms=1000)
            _label(item, other_annotator, "tie", a_on_left=False, ms=2000)
            jm.Verdict.objects.create(
                judge=judge,
                pair=item.pair,
                outcome_ab="A",
                outcome_ba="B",
                status_ab="ok",
                status_ba="ok",
                outcome="tie",
                consistent=False,
            )
        made.append(audit)
    return made


def _query(audits: list[am.Audit], **extra: str) -> str:
    params = "&".join(f"audit={a.pk}" for a in audits)
    return params + "".join(f"&{key}={value}" for key, value in extra.items())


def _body(response: Any) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


def test_it_streams_several_audits_as_one_file(lead_client: Client, audits: list[am.Audit]) -> None:
    response = lead_client.get(f"/api/exports/?{_query(audits, layout='generic')}")

    rows = [json.loads(line) for line in _body(response).decode().splitlines()]
    expected_keys = {
        f"{item.audit.dataset.name}:{item.pair.source_key}"
        for item in am.AuditItem.objects.select_related("audit__dataset", "pair")
    }
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == (
        f'attachment; filename="audits-{audits[0].pk}-{audits[1].pk}-calibration-generic.jsonl"'
    )
    assert {row["pair_id"] for row in rows} == expected_keys
    assert sum(len(row["votes"]) for row in rows) == am.Label.objects.count() == 6
    assert all(row["verdicts"][0]["fingerprint"] for row in rows)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_it_gives_the_manifest_of_the_very_bytes_it_serves(
    lead_client: Client, audits: list[am.Audit], fmt: str
) -> None:
    download = _body(lead_client.get(f"/api/exports/?{_query(audits, file_format=fmt)}"))

    manifest = lead_client.get(f"/api/exports/manifest/?{_query(audits, file_format=fmt)}")

    body = manifest.json()
    assert manifest.status_code == 200
    assert body["sha256"] == hashlib.sha256(download).hexdigest()
    assert body["bytes"] == len(download)
    assert body["format"] == fmt
    assert body["counts"]["pairs"] == 3
    assert body["counts"]["labels"] == 6
    assert body["counts"]["verdicts"] == 3
    assert [j["fingerprint"] for j in body["judges"]] == [jm.Judge.objects.get().fingerprint]
    assert "tie" in body["tie_policy"] and body["tribunal_version"]
    assert [a["id"] for a in body["audits"]] == [a.pk for a in audits]


def test_it_exports_csv_and_parquet_with_one_row_per_pair(
    lead_client: Client, audits: list[am.Audit]
) -> None:
    as_csv = _body(lead_client.get(f"/api/exports/?{_query(audits, file_format='csv')}"))
    as_parquet = _body(lead_client.get(f"/api/exports/?{_query(audits, file_format='parquet')}"))

    assert len(list(csv.DictReader(io.StringIO(as_csv.decode())))) == 3
    assert pq.read_table(io.BytesIO(as_parquet)).num_rows == 3


@pytest.mark.usefixtures("tasks_inline")
def test_it_round_trips_through_the_import_api(
    lead_token_client: Client,
    audits: list[am.Audit],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    api = lead_token_client
    query = _query(audits, file_format="parquet", layout="generic")
    download = _body(api.get(f"/api/exports/?{query}"))

    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/api/imports/",
            {
                "format": "generic",
                "dataset": "calibration",
                "file": SimpleUploadedFile("calibration.parquet", download),
            },
        )
    job = api.get(created.json()["url"]).json()

    assert created.status_code == 202
    assert job["status"] == "done", job["errors"]
    imported = dm.Pair.objects.filter(dataset__name="calibration")
    assert imported.count() == 3
    votes = {
        (v.pair.source_key, v.voter_id, v.outcome)
        for v in dm.HumanVote.objects.filter(pair__in=imported).select_related("pair")
    }
    assert votes == {
        (
            f"{label.item.audit.dataset.name}:{label.item.pair.source_key}",
            pseudonym(label.annotator_id, secret=settings.SECRET_KEY),
            label.outcome,
        )
        for label in am.Label.objects.select_related("item__audit__dataset", "item__pair")
    }
    reimported = jm.Verdict.objects.filter(pair__in=imported)
    assert {(v.judge.fingerprint, v.outcome_ab, v.outcome_ba, v.outcome) for v in reimported} == {
        (jm.Judge.objects.get().fingerprint, "A", "B", "tie")
    }
    assert jm.Judge.objects.count() == 1  # the same judge version, found by fingerprint


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("", "audit", "required"),
        ("audit=abc", "audit", "integer"),
        ("audit=0", "audit", "greater than or equal to 1"),
        (f"audit={2**70}", "audit", "less than or equal to"),  # was a 500 on SQLite
        ("audit=999999", "audit", "no audit with id 999999"),
        ("AUDITS&file_format=xls", "file_format", "not a valid choice"),
    ],
)
def test_it_refuses_a_bad_request_naming_the_parameter(
    lead_client: Client, audits: list[am.Audit], query: str, parameter: str, message: str
) -> None:
    query = query.replace("AUDITS", _query(audits))

    for url in ("/api/exports/", "/api/exports/manifest/"):
        response = lead_client.get(f"{url}?{query}")
        assert response.status_code == 400, url
        assert list(response.json()) == [parameter]
        assert message in " ".join(response.json()[parameter])


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_is_for_leads_only(
    request: pytest.FixtureRequest, persona: str, audits: list[am.Audit]
) -> None:
    client: Client = request.getfixturevalue(persona)

    for url in ("/api/exports/", "/api/exports/manifest/"):
        response = client.get(f"{url}?{_query(audits)}")
        assert response.status_code == 403
        assert not response.streaming


def test_it_asks_anonymous_callers_to_authenticate(client: Client, audits: list[am.Audit]) -> None:
    assert client.get(f"/api/exports/?{_query(audits)}").status_code == 401
    assert client.get(f"/api/exports/manifest/?{_query(audits)}").status_code == 401
