"""Report pages: who may see them, what they show, how they refresh, and that they are safe."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from analysis import plots, services
from analysis.models import MetricSnapshot
from tests.analysis.test_snapshot import AuditData, build_audit

PAGE = "/reports/audit/{}/"


@pytest.mark.usefixtures("tasks_inline")
def test_it_shows_the_report_to_a_lead_with_the_figures(
    lead_client: Client, data: AuditData, committed: Callable[..., Any]
) -> None:
    with committed():
        first = lead_client.get(PAGE.format(data.audit.pk))
    assert "No figures yet: they are being computed" in first.content.decode()
    snapshot = MetricSnapshot.objects.get(audit=data.audit)  # the run after the first visit

    response = lead_client.get(PAGE.format(data.audit.pk))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Agreement report: Refusal audit" in content
    judge = f"j:{data.judges[1].pk}"
    value = snapshot.metrics["figures"]["S1"]["judges"][judge]["vs_humans"]["percent_agreement"]
    assert plots.number_text(value["value"]) in content
    assert "human \u2013 human (ceiling)" in content
    assert 'id="slice-stratum"' in content  # the sortable per-stratum table
    assert "<svg" in content and "Confusion matrices" in content


@pytest.mark.parametrize("who", ["annotator_client", "outsider_client"])
def test_it_refuses_the_report_to_anyone_but_leads(
    who: str, request: pytest.FixtureRequest, data: AuditData
) -> None:
    client: Client = request.getfixturevalue(who)

    assert client.get(PAGE.format(data.audit.pk)).status_code == 403
    assert client.get(f"/reports/dataset/{data.audit.dataset.name}/").status_code == 403
    assert client.post(f"/reports/audit/{data.audit.pk}/recompute/").status_code == 403
    assert client.get("/reports/").status_code == 403
    assert not MetricSnapshot.objects.exists()


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client, data: AuditData) -> None:
    response = client.get(PAGE.format(data.audit.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_answers_a_poll_with_nothing_until_a_newer_snapshot_exists(
    lead_client: Client, data: AuditData
) -> None:
    first = services.snapshot_compute(audit=data.audit, n_boot=0)
    poll = f"{PAGE.format(data.audit.pk)}?since={first.pk}&pending=0"

    unchanged = lead_client.get(poll, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204
    assert MetricSnapshot.objects.count() == 1  # a poll never triggers a computation

    newer = services.snapshot_compute(audit=data.audit, n_boot=0)
    changed = lead_client.get(poll, headers={"HX-Request": "true"})
    assert changed.status_code == 200
    content = changed.content.decode()
    assert content.lstrip().startswith('<div id="report-live"')
    assert f"since={newer.pk}" in content and "<html" not in content


def test_it_polls_only_while_the_audit_is_open(lead_client: Client, data: AuditData) -> None:
    services.snapshot_compute(audit=data.audit, n_boot=0)

    assert 'hx-trigger="every 3s"' in lead_client.get(PAGE.format(data.audit.pk)).content.decode()
    data.audit.status = "closed"
    data.audit.save()
    closed = lead_client.get(PAGE.format(data.audit.pk)).content.decode()
    # No polling; the refusal-instrument fragment still loads once (hx-trigger="load").
    assert 'hx-trigger="every' not in closed
    assert [t for t in re.findall(r'hx-trigger="([^"]*)"', closed)] == ["load"]


@pytest.mark.usefixtures("tasks_inline")
def test_it_recomputes_when_a_lead_asks(
    lead_client: Client, data: AuditData, committed: Callable[..., Any]
) -> None:
    services.snapshot_compute(audit=data.audit, n_boot=0)

    with committed():
        response = lead_client.post(f"/reports/audit/{data.audit.pk}/recompute/")

    assert response.status_code == 302
    assert response["Location"] == PAGE.format(data.audit.pk)
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 2
    assert lead_client.get(f"/reports/audit/{data.audit.pk}/recompute/").status_code == 405


def test_it_recomputes_into_the_fragment_for_htmx(
    lead_client: Client, data: AuditData, committed: Callable[..., Any]
) -> None:
    with committed():
        lead_client.post(f"/reports/audit/{data.audit.pk}/recompute/")
    response = lead_client.post(
        f"/reports/audit/{data.audit.pk}/recompute/", headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="report-live"')
    assert "computing newer figures" in content  # the forced run starts after the commit
    assert 'hx-trigger="every 3s"' in content


def test_it_escapes_a_malicious_judge_name_everywhere(
    lead_client: Client, lead: User, committed: Callable[..., Any]
) -> None:
    data = build_audit(judge_names=("<script>alert(1)</script>", 'x" onload="alert(2)'), lead=lead)

    with committed():
        lead_client.get(PAGE.format(data.audit.pk))
    content = lead_client.get(PAGE.format(data.audit.pk)).content.decode()

    assert "<script>alert(1)" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert 'onload="alert(2)' not in content


@pytest.mark.usefixtures("tasks_inline")
def test_it_shows_undefined_with_the_reason_never_nan(
    lead_client: Client, lead: User, committed: Callable[..., Any]
) -> None:
    everyone_says_a = [("random", "writing", ("A", "A", "A"), ("A", "A"), "A")] * 3
    data = build_audit(rows=everyone_says_a, lead=lead)

    with committed():
        lead_client.get(PAGE.format(data.audit.pk))
    content = lead_client.get(PAGE.format(data.audit.pk)).content.decode()

    assert "undefined: only one category observed" in content
    assert not re.search(r"\bnan\b", content, re.IGNORECASE)


@pytest.mark.usefixtures("tasks_inline")
def test_it_keeps_the_page_free_of_inline_script_and_style(
    lead_client: Client, data: AuditData, committed: Callable[..., Any]
) -> None:
    with committed():
        lead_client.get(PAGE.format(data.audit.pk))
    content = lead_client.get(PAGE.format(data.audit.pk)).content.decode()
    assert "<svg" in content

    assert " style=" not in content and "<style" not in content
    assert not re.search(r"<script(?![^>]*\bsrc=)", content)  # every script is a file


def test_it_shows_a_dataset_report(
    lead_client: Client, data: AuditData, lead_committed: Callable[[str, str], Any]
) -> None:
    response = lead_committed("get", f"/reports/dataset/{data.audit.dataset.name}/")

    assert response.status_code == 200
    assert MetricSnapshot.objects.filter(dataset=data.audit.dataset).count() == 1
    assert "Agreement report: refusals" in response.content.decode()
    assert lead_client.get("/reports/dataset/no-such-dataset/").status_code == 404


def test_it_lists_the_reports(lead_client: Client, data: AuditData) -> None:
    services.snapshot_compute(audit=data.audit, n_boot=0)

    content = lead_client.get("/reports/").content.decode()

    assert f'href="{PAGE.format(data.audit.pk)}"' in content
    assert "/reports/dataset/refusals/" in content


def test_it_escapes_labels_in_every_svg() -> None:
    evil = '<script>alert("x")</script>'
    svgs = [
        plots.interval_chart(
            [plots.IntervalRow(evil, 0.5, (0.4, 0.6)), plots.IntervalRow(evil, None, reason=evil)],
            title=evil,
            references=[plots.ReferenceLine(evil, 0.7, (0.6, 0.8))],
        ),
        plots.trend_chart(
            [plots.Series(evil, [(1, 0.5), (2, None), (3, 0.6)])],
            title=evil,
            x_label=evil,
            y_label=evil,
        ),
        plots.heatmap(plots.Heatmap(evil, [[1, 2], [3, 4]], [evil, "B"], ["A", evil], evil, evil)),
    ]
    for svg in svgs:
        assert "<script" not in svg
        assert "&lt;script&gt;" in svg
        assert " style=" not in svg
