"""The Python client against a live server (real HTTP): pairs and verdicts in, an audit, its
labels, its figures and its calibration set out; and the errors a pipeline must be told."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.client import scenario
from tests.client.conftest import Server
from tribunal_client import (
    AuthError,
    BadRequest,
    Client,
    ImportFailed,
    NotFound,
    WaitTimeout,
)


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_imports_audits_reports_and_exports_over_http(server: Server, tmp_path: Path) -> None:
    rows = scenario.generic_rows()
    source = scenario.write_jsonl(tmp_path / "verdicts.jsonl", rows)
    tribunal = server.client

    job = tribunal.import_file(source, dataset=scenario.DATASET)
    assert job.status == "done" and job.errors == []
    assert job.counts["pairs_created"] == job.counts["verdicts_created"] == scenario.PAIRS
    again = tribunal.import_file(source, dataset=scenario.DATASET)  # idempotent
    assert again.id != job.id and again.counts["pairs_matched"] == scenario.PAIRS
    assert again.counts.get("pairs_created", 0) == again.counts.get("verdicts_created", 0) == 0
    [judge] = tribunal.judges(scenario.DATASET)
    assert (judge.name, judge.version, judge.verdicts) == (scenario.JUDGE, 1, scenario.PAIRS)

    audit = scenario.create_audit(tribunal, "nightly")
    assert audit.judges == (judge.id,)
    assert (audit.progress.items, audit.progress.labels_needed) == (scenario.PAIRS, scenario.PAIRS)
    with pytest.raises(WaitTimeout) as waited:
        tribunal.wait_for_labels(audit.id, timeout=0.2)
    assert f"audit {audit.id} has 0 of {scenario.PAIRS} labels" in str(waited.value)
    assert waited.value.last.progress.labels_done == 0

    assert scenario.label_as_judge(server.http, audit.id, scenario.PAIRS, rows) == scenario.PAIRS
    labelled = tribunal.wait_for_labels(audit.id, timeout=10)
    assert labelled.progress.labels_done == scenario.PAIRS

    report = tribunal.report(audit.id)
    assert report.subject == {"kind": "audit", "id": audit.id, "name": "nightly"}
    assert report.label_count == scenario.PAIRS
    figures = report.metrics["trend"]["judges"][f"j:{judge.id}"]
    # The annotator chose as the judge did, every time.
    assert figures["S1"] == figures["kappa_S1"] == 1.0

    export = tribunal.export(audit.id, tmp_path / "calibration.jsonl")
    written = export.path.read_bytes()
    assert hashlib.sha256(written).hexdigest() == export.sha256 == export.manifest["sha256"]
    assert len(written) == export.size
    assert json.loads(export.manifest_path.read_text()) == export.manifest
    exported = [json.loads(line) for line in written.decode().splitlines()]
    assert sorted(row["pair_id"] for row in exported) == sorted(r["pair_id"] for r in rows)
    assert not list(tmp_path.glob(".*.part"))


def test_it_pushes_rows_and_refuses_a_bad_file_by_line_writing_nothing(
    server: Server, tmp_path: Path
) -> None:
    tribunal = server.client
    job = tribunal.import_rows(scenario.generic_rows(3), dataset="pushed")
    assert job.status == "done" and job.counts["pairs_created"] == 3

    rows = scenario.generic_rows(4)
    rows[1]["verdicts"][0]["outcome_ab"] = "maybe"
    rows[3]["surprise"] = 1
    bad = scenario.write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ImportFailed) as refused:
        tribunal.import_file(bad, dataset="refused")
    errors = refused.value.errors
    assert any(e.startswith("bad.jsonl:2: ") and "outcome_ab" in e for e in errors), errors
    assert any(e.startswith("bad.jsonl:4: ") and "surprise" in e for e in errors), errors
    assert "bad.jsonl:2: " in str(refused.value)
    listed = {
        d["name"]: d
        for d in server.http.get(
            "/api/datasets/", headers={"Authorization": f"Token {server.lead_token}"}
        ).json()
    }
    assert listed.get("refused", {"pairs": 0})["pairs"] == 0  # all or nothing


def test_it_raises_errors_with_the_servers_message(server: Server) -> None:
    with Client(server.url, "not-a-token") as stranger, pytest.raises(AuthError) as refused:
        stranger.judges(scenario.DATASET)
    assert refused.value.status == 401 and refused.value.message == "Invalid token."

    annotator_key = scenario.token(server.http, scenario.ANNOTATOR)
    with Client(server.url, annotator_key) as annotator, pytest.raises(AuthError) as denied:
        annotator.report(1)
    assert denied.value.status == 403 and "leads" in denied.value.message.lower()

    with pytest.raises(NotFound) as missing:
        server.client.audit(999_999)
    assert missing.value.status == 404
    assert str(missing.value.url).endswith("/api/audits/999999/")

    with pytest.raises(BadRequest) as bad:
        server.client.create_audit(name="x", dataset="no-such-set", size=5)
    assert bad.value.status == 400
    assert bad.value.fields == {"dataset": ["no dataset named 'no-such-set'"]}

    with pytest.raises(AuthError) as wrong:
        Client.login(server.url, scenario.ANNOTATOR, "wrong password")
    assert "Unable to log in" in wrong.value.message
    with Client.login(server.url, scenario.ANNOTATOR, scenario.PASSWORD) as logged_in:
        assert logged_in.url == server.url + "/api/"
