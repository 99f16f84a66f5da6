"""Issue 13.1 in real Chromium: the export button on the audit and report pages downloads the
flat table (and its manifest), whose rows are the audit's pairs and labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings

from analysis.export import pseudonym
from annotation.models import Adjudication, AuditItem, Label
from tests.browser.helpers import log_in, member
from tests.browser.test_audit_browser import _audit, _label_all, _no_reports  # noqa: F401

pytestmark = pytest.mark.browser


def test_it_downloads_the_flat_table_from_the_export_button(
    live_server: Any, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    people = [member("ana-annotator"), member("otto-annotator")]
    audit = _audit(lead, people, pairs=12, items=6)
    _label_all(audit, people[0], "left", 4)
    _label_all(audit, people[1], "right", 4)
    first = AuditItem.objects.filter(audit=audit).order_by("position").first()
    assert first is not None
    Adjudication.objects.create(item=first, lead=lead, outcome="A")
    log_in(page, live_server, "lena-lead")

    page.goto(f"{live_server.url}/audits/{audit.pk}/")
    form = page.get_by_test_id("export-form")
    expect(form).to_be_visible()
    form.get_by_label("Export").select_option("parquet")
    with page.expect_download() as caught:
        form.get_by_role("button", name="Download").click()
    download = caught.value
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    assert download.suggested_filename == f"audit-{audit.pk}-calibration.parquet"
    frame = pd.read_parquet(path).set_index("source_key")
    items = AuditItem.objects.filter(audit=audit).select_related("pair")
    assert sorted(frame.index) == sorted(item.pair.source_key for item in items)
    for person in people:
        column = "label_" + pseudonym(person.pk, secret=settings.SECRET_KEY).replace("-", "_")
        given = dict(
            Label.objects.filter(item__audit=audit, annotator=person).values_list(
                "item__pair__source_key", "outcome"
            )
        )
        assert frame[column].dropna().to_dict() == given
    assert frame.loc[first.pair.source_key, "final_label"] == "A"
    assert bool(frame.loc[first.pair.source_key, "adjudicated"]) is True
    assert int(frame["adjudicated"].sum()) == 1

    # The report page carries the same button; CSV through it, and the manifest beside it.
    page.goto(f"{live_server.url}/reports/audit/{audit.pk}/")
    form = page.get_by_test_id("export-form")
    form.get_by_label("Export").select_option("csv")
    with page.expect_download() as caught:
        form.get_by_role("button", name="Download").click()
    csv_path = tmp_path / "download.csv"
    caught.value.save_as(csv_path)
    assert len(pd.read_csv(csv_path)) == items.count() == 6
    with page.context.expect_page() as opened:
        form.get_by_role("button", name="Manifest").click()
    manifest_page = opened.value
    manifest_page.wait_for_load_state()
    manifest = json.loads(manifest_page.locator("body").inner_text())
    assert manifest["format"] == "csv" and manifest["schema"] == "flat"
    assert manifest["counts"]["pairs"] == 6 and manifest["counts"]["adjudicated"] == 1
    manifest_page.close()
