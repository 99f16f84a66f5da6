"""The judge comparison page in real Chromium (strict CSP, no script errors): a lead picks two
versions with the GET form and sees the summary, the planted slice first and the SVG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.analysis.test_judge_compare import build_planted
from tests.browser.helpers import log_in, member, screenshot_dir

pytestmark = pytest.mark.browser


@pytest.fixture
def planted(transactional_db: None) -> dict[str, Any]:
    """Committed, for the live server's thread (the module's shared rows are not)."""
    return build_planted()


def test_a_lead_compares_two_versions_on_the_page(
    live_server: Any,
    page: Any,
    planted: dict[str, Any],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    member("lena-lead", lead=True)
    log_in(page, live_server, "lena-lead")
    page.goto(f"{live_server.url}/reports/dataset/planted/compare/")
    form = page.get_by_test_id("compare-form")
    form.get_by_label("Baseline (v1)").select_option(str(planted["v1"]))
    form.get_by_label("Candidate (v2)").select_option(str(planted["v2"]))
    form.get_by_role("button", name="Compare").click()

    summary = page.get_by_test_id("compare-summary")
    expect(summary).to_contain_text("judge-x v2 against judge-x v1")
    expect(summary).to_contain_text("Flip rate: 0.1")  # 16 of 160 pairs
    expect(page.locator("#shifted tbody tr").first).to_contain_text("Category: coding")
    expect(page.locator("#slices svg")).to_be_visible()
    assert f"a={planted['v1']}" in page.url and f"b={planted['v2']}" in page.url
    page.screenshot(path=str(screenshot_dir(tmp_path) / "judge-compare.png"), full_page=True)
