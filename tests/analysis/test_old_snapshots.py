"""Snapshots stored by older code: read where what is missing can be filled, otherwise stale
(a fresh one asked for, the page's "being computed", a clear message), never a crash."""

from __future__ import annotations

import copy
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from analysis import gates, services
from analysis.models import MetricSnapshot
from analysis.snapshot import NOT_STORED, SnapshotUnreadable, metrics_parse, metrics_read
from tests.analysis.test_report_summary import stored as stored_baseline
from tests.analysis.test_snapshot import AuditData

PAGE = "/reports/audit/{}/"


def _stored_as(data: AuditData, change: Callable[[dict[str, Any]], None]) -> MetricSnapshot:
    """A snapshot of the audit whose stored figures are then rewritten as older code might
    have left them (an UPDATE, as an old row is: no save signal, no writer's check)."""
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)
    metrics = copy.deepcopy(snapshot.metrics)
    change(metrics)
    MetricSnapshot.objects.filter(pk=snapshot.pk).update(metrics=metrics)
    return snapshot


def _without_human_ids(metrics: dict[str, Any]) -> None:
    for human in metrics["raters"]["humans"]:
        del human["id"]


def _without_net(metrics: dict[str, Any]) -> None:
    for fit in metrics["studies"]["style"]["sensitivity"].values():
        for row in fit.get("rows", []):
            del row["net"]


@pytest.fixture
def unreadable(data: AuditData) -> MetricSnapshot:
    """The audit's snapshot as older code stored it, without the human raters' ids: a figure
    that cannot be filled, so the snapshot cannot be read."""
    return _stored_as(data, _without_human_ids)


@pytest.fixture
def requested(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The recomputations asked for (not run)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(services, "snapshot_request", lambda **kw: calls.append(kw))
    return calls


def test_it_reads_a_fresh_snapshot_as_the_strict_parse_does(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)

    assert metrics_read(snapshot.metrics).as_json() == metrics_parse(snapshot.metrics).as_json()
    assert snapshot.stale_reason is None


def test_it_fills_a_figure_older_code_did_not_store_as_undefined() -> None:
    stored = stored_baseline("planted")  # bench/figures_unchanged's planted study
    gaps = stored["studies"]["refusal"]["gaps"]
    assert sum(len(gap.get("rows", [])) for gap in gaps.values()) > 0
    older = copy.deepcopy(stored)
    for gap in older["studies"]["refusal"]["gaps"].values():
        for row in gap.get("rows", []):
            del row["gap_ties_half"]

    read = metrics_read(older)

    assert read.studies is not None
    for rater, gap in read.studies.refusal.gaps.items():
        for row, as_stored in zip(gap.rows, gaps[rater].get("rows", []), strict=True):
            assert row.gap_ties_half.value is None
            assert row.gap_ties_half.reason == NOT_STORED["reason"]
            assert row.gap.as_json() == as_stored["gap"]  # the rest as stored
    with pytest.raises(ValueError):
        metrics_parse(older)  # the writer's check stays strict


def test_it_names_what_it_cannot_fill(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)
    older = copy.deepcopy(snapshot.metrics)
    _without_human_ids(older)
    del older["progress"]["strata"][0]["stratum"]

    with pytest.raises(SnapshotUnreadable) as raised:
        metrics_read(older)

    assert "raters.humans[0].id: field required" in str(raised.value)
    assert "progress.strata[0].stratum: field required" in raised.value.problems


def test_it_shows_a_snapshot_with_a_filled_figure_at_once(
    lead_client: Client, data: AuditData, requested: list[dict[str, Any]]
) -> None:
    snapshot = _stored_as(data, _without_net)

    response = lead_client.get(PAGE.format(data.audit.pk))

    assert response.status_code == 200
    assert f"Snapshot {snapshot.pk} ·" in response.content.decode()
    assert requested == []  # current and readable: nothing to recompute


def test_it_treats_an_unreadable_snapshot_as_stale_on_the_page(
    lead_client: Client,
    data: AuditData,
    unreadable: MetricSnapshot,
    requested: list[dict[str, Any]],
) -> None:
    response = lead_client.get(PAGE.format(data.audit.pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert "No snapshot yet." in content and "they are being computed" in content
    assert requested == [{"audit": data.audit, "dataset": None, "force": True}]
    poll = lead_client.get(
        PAGE.format(data.audit.pk) + "?since=&pending=1", headers={"HX-Request": "true"}
    )
    assert poll.status_code == 204  # the poll waits for the fresh one, asks nothing more
    assert len(requested) == 1


@pytest.mark.usefixtures("tasks_inline")
def test_it_replaces_an_unreadable_snapshot_with_a_fresh_one(
    lead_client: Client, data: AuditData, unreadable: MetricSnapshot, committed: Callable[..., Any]
) -> None:
    with committed():
        lead_client.get(PAGE.format(data.audit.pk))

    fresh = MetricSnapshot.objects.filter(audit=data.audit).exclude(pk=unreadable.pk).get()
    assert fresh.stale_reason is None
    assert fresh.metrics["raters"]["humans"] == unreadable.metrics["raters"]["humans"]
    page = lead_client.get(PAGE.format(data.audit.pk)).content.decode()
    assert f"Snapshot {fresh.pk} ·" in page


@pytest.mark.parametrize("path", ["report/", "report/model/"])
def test_the_api_says_plainly_that_the_snapshot_is_being_recomputed(
    lead_client: Client,
    data: AuditData,
    unreadable: MetricSnapshot,
    requested: list[dict[str, Any]],
    path: str,
) -> None:
    response = lead_client.get(f"/api/audits/{data.audit.pk}/{path}")

    assert response.status_code == 202
    body = response.json()
    assert body["snapshot"] is None and body["pending"] is True
    assert "written by an older version" in body["detail"]
    assert "raters.humans[0].id: field required" in body["detail"]
    assert requested == [{"audit": data.audit, "dataset": None, "force": True}]


def test_the_other_readers_answer_without_a_traceback(
    lead_client: Client,
    lead: User,
    data: AuditData,
    unreadable: MetricSnapshot,
    requested: list[dict[str, Any]],
) -> None:
    pk = data.audit.pk
    gates.gate_set(
        audit=data.audit, judge=data.judges[0], rules=["lower(cohen_kappa) >= 0.4"], created_by=lead
    )

    outcome = gates.gate_evaluate(audit=data.audit, refresh=False)
    assert outcome.result.status == "INCONCLUSIVE" and outcome.snapshot is None

    csv = lead_client.get(f"/reports/audit/{pk}/refusal-gap.csv")
    assert csv.status_code == 503 and b"older version" in csv.content
    assert lead_client.get(f"/reports/audit/{pk}/precision/").status_code == 200
    card = lead_client.get(f"/api/audits/{pk}/model-card/")
    assert card.status_code == 400 and "older version" in card.json()["detail"]
    assert services.snapshot_is_current(unreadable, audit=data.audit)  # the counts still read
    assert requested  # each asked for a fresh snapshot


def test_the_model_card_command_exits_with_a_message(
    data: AuditData, unreadable: MetricSnapshot, requested: list[dict[str, Any]]
) -> None:
    with pytest.raises(CommandError, match="stored by an older version of Tribunal"):
        call_command("model_card", audit=data.audit.pk, stdout=StringIO())


def test_the_report_command_says_so_and_computes_a_fresh_snapshot(
    data: AuditData, unreadable: MetricSnapshot
) -> None:
    out, err = StringIO(), StringIO()

    call_command("report", audit=data.audit.pk, n_boot=0, format="md", stdout=out, stderr=err)

    assert f"snapshot {unreadable.pk} was stored by an older version" in err.getvalue()
    assert "computing a new snapshot" in err.getvalue()
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 2
    assert out.getvalue().startswith("#")
