"""The report API: the same figures as JSON, for leads only."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from analysis import services
from analysis.models import MetricSnapshot
from tests.analysis.test_snapshot import AuditData


def test_it_returns_the_latest_snapshot_as_json(lead_client: Client, data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit)

    response = lead_client.get(f"/api/audits/{data.audit.pk}/report/")

    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == {"kind": "audit", "id": data.audit.pk, "name": "Refusal audit"}
    assert body["pending"] is False
    assert body["snapshot"]["id"] == snapshot.pk
    assert body["snapshot"]["label_count"] == snapshot.label_count
    assert body["snapshot"]["metrics"] == snapshot.metrics
    assert body["snapshot"]["counts"]["items"] == len(data.rows)


def test_it_asks_for_figures_when_there_are_none_yet(
    lead_client: Client, data: AuditData, lead_committed: Callable[[str, str], Any]
) -> None:
    response = lead_committed("get", f"/api/audits/{data.audit.pk}/report/")

    assert response.status_code == 202
    assert response.json()["snapshot"] is None and response.json()["pending"] is True
    computed = MetricSnapshot.objects.get()  # the run after the commit
    again = lead_client.get(f"/api/audits/{data.audit.pk}/report/")
    assert again.status_code == 200 and again.json()["snapshot"]["id"] == computed.pk


def test_it_returns_the_history_oldest_first(lead_client: Client, data: AuditData) -> None:
    first = services.snapshot_compute(audit=data.audit, n_boot=0)
    second = services.snapshot_compute(audit=data.audit, n_boot=0)

    body = lead_client.get(f"/api/audits/{data.audit.pk}/report/history/").json()

    assert [s["id"] for s in body["snapshots"]] == [first.pk, second.pk]
    judge = f"j:{data.judges[0].pk}"
    assert (
        body["snapshots"][0]["judges"][judge]["S1"]
        == (
            first.metrics["figures"]["S1"]["judges"][judge]["vs_humans"]["percent_agreement"][
                "value"
            ]
        )
    )


def test_it_recomputes_on_post(data: AuditData, lead_committed: Callable[[str, str], Any]) -> None:
    response = lead_committed("post", f"/api/audits/{data.audit.pk}/report/recompute/")

    assert response.status_code == 202
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 1


def test_it_serves_dataset_reports(
    lead_client: Client, data: AuditData, lead_committed: Callable[[str, str], Any]
) -> None:
    lead_committed("get", f"/api/datasets/{data.audit.dataset.name}/report/")
    response = lead_client.get(f"/api/datasets/{data.audit.dataset.name}/report/")

    assert response.status_code == 200
    snapshot = response.json()["snapshot"]
    assert snapshot["metrics"]["subject"]["kind"] == "dataset"
    assert lead_client.get("/api/datasets/nothing-here/report/").status_code == 404


@pytest.mark.parametrize("who", ["annotator_client", "outsider_client"])
def test_it_refuses_everyone_but_leads(
    who: str, request: pytest.FixtureRequest, data: AuditData
) -> None:
    client: Client = request.getfixturevalue(who)

    for url in (
        f"/api/audits/{data.audit.pk}/report/",
        f"/api/audits/{data.audit.pk}/report/history/",
        f"/api/datasets/{data.audit.dataset.name}/report/",
    ):
        assert client.get(url).status_code == 403
    assert client.post(f"/api/audits/{data.audit.pk}/report/recompute/").status_code == 403
    assert not MetricSnapshot.objects.exists()


def test_it_asks_anonymous_callers_to_authenticate(client: Client, data: AuditData) -> None:
    assert client.get(f"/api/audits/{data.audit.pk}/report/").status_code in (401, 403)


def test_it_serves_the_report_model_that_the_page_and_the_markdown_show(
    lead_client: Client, data: AuditData
) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=50)
    rater = snapshot.metrics["raters"]["judges"][0]
    stored = snapshot.metrics["figures"]["S1"]["judges"][rater["id"]]["vs_humans"]
    agreement = stored["percent_agreement"]
    low, high = agreement["ci"]
    expected = f"{agreement['value']:.3f} [{low:.3f}, {high:.3f}]"

    response = lead_client.get(f"/api/audits/{data.audit.pk}/report/model/")

    assert response.status_code == 200
    body = response.json()
    assert body["snapshot"] == snapshot.pk and body["pending"] is False
    report = body["report"]
    row = next(r for r in report["headline"] if r["label"] == rater["label"])
    assert row["cells"][0]["text"] == expected and row["n"] == agreement["n"]
    assert report["head"]["counts"]["items"] == len(data.rows)
    assert "<svg" not in json.dumps(report)  # the charts stay on the page
    # The same model in Markdown and on the page: the same row, the same sentences.
    out = StringIO()
    call_command("report", "--audit", str(data.audit.pk), "--format", "md", stdout=out)
    assert f"| {rater['label']} | {expected} |" in out.getvalue()
    page = lead_client.get(f"/reports/audit/{data.audit.pk}/").content.decode()
    sentences = [f["sentence"] for f in report["summary"]["findings"]]
    assert sentences and all(html.escape(s) in page for s in sentences)


def test_it_serves_a_datasets_report_model_and_leaves_others_out(
    lead_client: Client, annotator_client: Client, data: AuditData
) -> None:
    dataset = data.audit.dataset
    services.snapshot_compute(dataset=dataset, n_boot=0)

    body = lead_client.get(f"/api/datasets/{dataset.name}/report/model/").json()

    assert body["subject"]["kind"] == "dataset" and body["report"]["head"]["subject"]["kind"] == (
        "dataset"
    )
    refused = annotator_client.get(f"/api/datasets/{dataset.name}/report/model/")
    assert refused.status_code == 403
