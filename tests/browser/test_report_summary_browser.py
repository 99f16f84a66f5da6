"""Issue 13 item 4 in real Chromium: a report that a lead reads top-down. At 1400x900 the
summary (gate, agreement and kappa against the ceiling, the three findings) ends within the
first screen; the contents link to sections that close and open; small slices are folded into
"other (n = ...)"; no stored code shows where words belong; every chart has numbers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from analysis import gates, services
from tests.analysis.test_snapshot import AuditData, build_audit
from tests.browser.helpers import log_in, member, screenshot_dir

pytestmark = pytest.mark.browser

SLUGS = re.compile(
    r"\b(ethics_refusal|low_margin|both_bad|technical_refusal|ethical_refusal|"
    r"ethical_disclaimer|technical_disclaimer|uncertain_class)\b"
)
# What the reader reads, without the gate rules and the rule editor's help (rule syntax that
# people type, such as refusal_gap.ethical_refusal, shown as written).
VISIBLE_TEXT = """() => {
  const copy = document.querySelector("main").cloneNode(true);
  copy.querySelectorAll("code, pre, textarea, script, #gate-form").forEach((n) => n.remove());
  return copy.innerText;
}"""
CHARTS_WITHOUT_NUMBERS = """() => Array.from(document.querySelectorAll("svg.chart"))
  .filter((svg) => !svg.classList.contains("heatmap") && !svg.querySelector("circle"))
  .map((svg) => svg.getAttribute("aria-label"))"""


@pytest.fixture
def audited(transactional_db: None, settings: Any) -> tuple[User, AuditData]:
    settings.TRIBUNAL_SNAPSHOT_BOOT = 50
    lead = member("report-lead", lead=True)
    data = build_audit(lead=lead)
    gates.gate_set(
        audit=data.audit,
        judge=data.judges[0],
        rules=["lower(percent_agreement) >= 0.5"],
        created_by=lead,
    )
    services.snapshot_compute(audit=data.audit, n_boot=50)
    return lead, data


def test_it_puts_the_summary_on_the_first_screen(
    page: Any, live_server: Any, audited: tuple[User, AuditData], tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    lead, data = audited
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, lead.username)
    page.goto(f"{live_server.url}/reports/audit/{data.audit.pk}/")

    summary = page.get_by_test_id("report-summary")
    expect(summary).to_be_visible()
    box = summary.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900, box
    page.screenshot(path=str(screenshot_dir(tmp_path) / "report-summary-test.png"))

    # Per judge version: the gate's status on the gated one, agreement and kappa with their
    # intervals, and the people's own agreement beside them.
    rows = summary.get_by_test_id("summary-judges").locator("tbody tr")
    expect(rows).to_have_count(3)
    gated = rows.filter(has_text=data.judges[0].name)
    expect(gated.locator(".badge")).to_have_text(re.compile("PASS|FAIL|INCONCLUSIVE"))
    expect(rows.filter(has_text=data.judges[1].name)).to_contain_text("not gated")
    expect(rows.last).to_contain_text("people with each other")
    for row in range(3):  # agreement as a percent with its interval, kappa to 3 decimals
        expect(rows.nth(row).locator("td").nth(2)).to_have_text(re.compile(r"\d+\.\d% \["))
        expect(rows.nth(row).locator("td").nth(3)).to_have_text(re.compile(r"-?\d\.\d{3} \["))
    # Three findings, each linking to its section; a finding states an interval.
    findings = summary.get_by_test_id("summary-findings").locator("li")
    expect(findings).to_have_count(3)
    kinds = sorted(findings.nth(i).get_attribute("data-kind") or "" for i in range(3))
    assert kinds == ["position", "refusal", "style"]
    for i in range(3):
        text = findings.nth(i).inner_text()
        status = findings.nth(i).get_attribute("data-status")
        assert status in {"finding", "inconclusive", "not-measured"}
        if status != "not-measured":
            assert "95% CI" in text, text
        if status == "inconclusive":
            assert "spans 0" in text, text

    # The contents: a link to every section, each one on the page.
    contents = page.get_by_test_id("report-contents")
    expect(contents).to_be_visible()
    links = contents.locator("a")
    assert links.count() >= 8
    for i in range(links.count()):
        target = (links.nth(i).get_attribute("href") or "")[1:]
        expect(page.locator(f"[id='{target}']")).to_have_count(1)

    # Sections close and open; a link from the contents opens a closed one.
    agreement = page.locator("#agreement details")
    expect(agreement).to_have_attribute("open", "")
    page.locator("#agreement summary").click()
    expect(agreement).not_to_have_attribute("open", "")
    expect(page.locator("#headline")).to_be_hidden()
    page.locator("#agreement summary").click()
    expect(page.locator("#headline")).to_be_visible()
    strata = page.locator("#by-stratum details")
    expect(strata).not_to_have_attribute("open", "")
    contents.get_by_role("link", name="By stratum").click()
    expect(strata).to_have_attribute("open", "")

    # Every stratum has under 10 items here: one "other" row with their count.
    folded = page.locator("#by-stratum").get_by_test_id("folded-slices")
    expect(folded).to_be_visible()
    items = len(data.rows)
    expect(folded).to_contain_text(f"other (n = {items} items in")

    # Words, not codes; and no chart without a number on it.
    page.get_by_role("button", name="Open every section").click()
    page.wait_for_load_state("networkidle")
    text = page.evaluate(VISIBLE_TEXT)
    assert not SLUGS.findall(text), [
        text[m.start() - 80 : m.end() + 40] for m in SLUGS.finditer(text)
    ]
    assert "ethics refusal" in text or "low margin" in text
    assert page.evaluate(CHARTS_WITHOUT_NUMBERS) == []


def test_sections_stay_as_the_reader_left_them_after_a_refresh(
    page: Any, live_server: Any, audited: tuple[User, AuditData]
) -> None:
    from playwright.sync_api import expect

    lead, data = audited
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server, lead.username)
    url = f"{live_server.url}/reports/audit/{data.audit.pk}/"
    page.goto(url)
    page.locator("#position summary").click()
    expect(page.locator("#position details")).not_to_have_attribute("open", "")
    page.locator("#trend summary, #rankings summary").first.click()

    # "Recompute now" swaps the figures in with htmx: the reader's choices stay.
    with page.expect_response(lambda r: "/recompute/" in r.url):
        page.get_by_role("button", name="Recompute now").click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#position details")).not_to_have_attribute("open", "")
    expect(page.locator("#rankings details, #trend details").first).to_have_attribute("open", "")
