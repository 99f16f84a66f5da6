"""Issue 13 in real Chromium: growing an audit, gold pairs and the quality table, revising a
label and an adjudication with their history, the skip key, and a workspace that keeps both
answers, the choices and the key legend on one screen. Each test checks what the user sees
and the rows in the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotation import queue, services
from annotation.models import (
    Adjudication,
    AdjudicationRevision,
    AnnotatorExclusion,
    Assignment,
    Audit,
    AuditItem,
    Label,
    LabelRevision,
)
from annotation.signals import audit_labels_changed
from corpus.models import Dataset, Pair
from tests.annotation.test_audit_build import label_queue
from tests.browser.demo import add_pair
from tests.browser.helpers import current_assignment, log_in, member, press_key, screenshot_dir

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _no_reports() -> Iterator[None]:
    """These pages are the annotation app's; the report is not recomputed after each write.

    (The test settings would compute it inline in the request, and on main a snapshot of an
    audit with no labels yet raised ValueError in the two-rater engine's evaluate.)"""
    from analysis.apps import _snapshot_on_labels

    audit_labels_changed.disconnect(dispatch_uid="analysis.snapshot")
    yield
    audit_labels_changed.connect(_snapshot_on_labels, dispatch_uid="analysis.snapshot")


TIMES = "\N{MULTIPLICATION SIGN}"
LONG = "\n\n".join(
    f"{n}. Step {n} of the answer: check the input, keep the original list, and explain why "
    "this matters for the reader who asked."
    for n in range(1, 61)
)


def _dataset(name: str, n: int, *, long: bool = False) -> Dataset:
    dataset = Dataset.objects.create(name=name, description="browser test data")
    for i in range(n):
        question = f"Question {i}: how should a careful engineer answer this?"
        first = (LONG if long else "") + f"\n\nFirst answer to question {i}."
        second = (LONG if long else "") + f"\n\nSecond answer to question {i}."
        add_pair(
            dataset, f"{name}-{i:03d}", question, (first, second), ("model-alpha", "model-beta")
        )
    return dataset


def _audit(
    lead: User,
    annotators: list[User],
    *,
    pairs: int,
    items: int,
    long: bool = False,
    **options: Any,
) -> Audit:
    return services.audit_build(
        name="Helpfulness check, June",
        dataset=_dataset(f"june-{uuid.uuid4().hex[:6]}", pairs, long=long),
        judges=[],
        size=items,
        overlap_k=2,
        quotas={},
        thresholds={},
        seed=4,
        created_by=lead,
        annotators=annotators,
        **options,
    )


def _label_all(audit: Audit, person: User, choice: str, seconds: float) -> None:
    def side(assignment: Assignment) -> str:
        if choice != "truth":
            return choice
        if assignment.item.gold_outcome:
            return queue.to_side(assignment.item.gold_outcome, a_on_left=assignment.a_on_left)
        return "tie"

    label_queue(audit, person, side, seconds=seconds, submitted_after_s=60)


def test_it_grows_an_audit_from_its_page(live_server: Any, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    people = [member("ana-annotator"), member("otto-annotator")]
    audit = _audit(lead, people, pairs=20, items=8)
    log_in(page, live_server, "lena-lead")
    page.goto(f"{live_server.url}/audits/{audit.pk}/")
    capacity = page.get_by_test_id("capacity")
    expect(capacity).to_contain_text(
        "holds at most 16 labels (8 items \N{MULTIPLICATION SIGN} k = 2)"
    )
    expect(capacity).to_contain_text("12 pairs left to add")
    expect(page.get_by_test_id("strata")).to_contain_text("0.4000")  # 8 of 20

    page.fill("#id_n", "5")
    page.get_by_role("button", name="Add items").click()
    expect(page.locator(".messages")).to_contain_text("5 items added (5 random control)")
    expect(capacity).to_contain_text(
        "holds at most 26 labels (13 items \N{MULTIPLICATION SIGN} k = 2)"
    )
    expect(page.get_by_test_id("strata")).to_contain_text("0.6500")  # 13 of 20
    expect(page.get_by_test_id("growth")).to_contain_text("+5 random by lena-lead")
    expect(page.get_by_test_id("audit-progress")).to_contain_text("0 of 13 items complete")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "audit-grow.png"), full_page=True)

    items = AuditItem.objects.filter(audit=audit)
    assert items.count() == 13
    assert set(items.values_list("inclusion_probability", flat=True)) == {13 / 20}
    assert Audit.objects.get(pk=audit.pk).target_size == 13

    page.fill("#id_n", "8")
    page.get_by_role("button", name="Add items").click()
    expect(page.locator(".messages")).to_contain_text(
        "No items added: 8 items asked for, but this audit's strata have only 7 pairs left"
    )
    assert items.count() == 13


def test_it_adds_gold_pairs_and_flags_a_fast_annotator_in_the_quality_table(
    live_server: Any, page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    careful, fast, steady = (member(name) for name in ("careful", "fast", "steady"))
    audit = _audit(lead, [careful, fast, steady], pairs=9, items=6)
    spare = list(
        Pair.objects.filter(dataset=audit.dataset)
        .exclude(audit_items__audit=audit)
        .order_by("source_key")
    )
    log_in(page, live_server, "lena-lead")
    page.goto(f"{live_server.url}/audits/{audit.pk}/")
    page.fill("#id_lines", f"{spare[0].source_key}, A, cites the source\nnot-a-pair, B")
    page.get_by_role("button", name="Add gold pairs").click()
    expect(page.locator(".messages")).to_contain_text("not-a-pair: no pair with this source key")
    page.fill("#id_lines", f"{spare[0].source_key}, A, cites the source\n{spare[1].source_key}, B")
    page.get_by_role("button", name="Add gold pairs").click()
    expect(page.locator(".messages")).to_contain_text("2 gold pair(s) added")
    expect(page.get_by_test_id("gold").locator("tbody tr")).to_have_count(2)
    page.fill("#id_gold_percent", "20")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved.")
    assert Audit.objects.get(pk=audit.pk).gold_percent == 20
    gold = AuditItem.objects.gold().filter(audit=audit)
    assert set(gold.values_list("gold_outcome", flat=True)) == {"A", "B"}

    # Every gold draw hits, so each annotator meets both gold pairs first. careful starts
    # every item, fast completes them (complete first), steady finds only the gold left.
    monkeypatch.setattr(queue, "_percent_draw", lambda: 0)
    audit.refresh_from_db()  # the rate was set through the page
    _label_all(audit, careful, "truth", 9.0)
    _label_all(audit, fast, "left", 0.4)
    _label_all(audit, steady, "truth", 7.0)

    page.reload()
    table = page.get_by_test_id("quality")
    fast_row = table.locator('tr[data-annotator="fast"]')
    expect(fast_row).to_contain_text("0.4 s")
    expect(fast_row).to_contain_text("too fast")
    expect(fast_row).to_contain_text("100%")  # always the left side
    expect(table.locator('tr[data-annotator="careful"]')).to_contain_text("2/2")
    expect(table.locator('tr[data-annotator="careful"] .badge')).to_have_count(0)
    expect(page.get_by_test_id("gold")).to_contain_text("cites the source")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "quality-table.png"), full_page=True)

    fast_row.get_by_role("button", name="Set labels aside").click()
    expect(page.locator(".messages")).to_contain_text("fast's labels are set aside")
    expect(table.locator('tr[data-annotator="fast"]')).to_contain_text("set aside")
    exclusion = AnnotatorExclusion.objects.get(audit=audit)
    assert (exclusion.annotator, exclusion.excluded_by) == (fast, lead)
    assert Label.objects.filter(annotator=fast).count() == 8  # kept: 6 items and 2 gold
    counted = Label.objects.counted().filter(item__audit=audit)
    assert not counted.filter(annotator=fast).exists()
    assert not counted.filter(item__stratum="gold").exists()
    # The items fast completed have room again, for steady.
    sampled = AuditItem.objects.sampled().filter(audit=audit)
    assert set(sampled.values_list("label_count", flat=True)) == {1}
    expect(page.get_by_test_id("audit-progress")).to_contain_text("6 of 12")


def test_it_revises_a_label_and_an_adjudication_with_their_history(
    live_server: Any, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    ana, otto = member("ana-annotator"), member("otto-annotator")
    audit = _audit(lead, [ana, otto], pairs=3, items=3)
    _label_all(audit, otto, "right", 20.0)

    log_in(page, live_server, "ana-annotator")
    page.goto(f"{live_server.url}/audits/{audit.pk}/label/")
    first = current_assignment(page)
    press_key(page, "1")
    expect(page.get_by_test_id("notice")).to_have_text("Label saved.")
    page.goto(f"{live_server.url}/audits/{audit.pk}/mine/")
    rows = page.get_by_test_id("my-labels").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("left")
    rows.first.get_by_role("link", name="Change").click()
    expect(page.get_by_test_id("current-choice")).to_have_text("left")
    for secret in ("model-alpha", "model-beta", "otto-annotator"):
        assert secret not in page.content()
    page.fill("#rationale", "On a second look both are fine.")
    page.get_by_role("button", name="Tie").click()
    expect(page.locator(".messages")).to_contain_text("your label is now “tie”")
    expect(rows.first).to_contain_text("tie")
    expect(rows.first.locator(".badge")).to_have_text("changed")

    label = Label.objects.get(assignment_id=first)
    assert (label.outcome, label.rationale) == ("tie", "On a second look both are fine.")
    change = LabelRevision.objects.get(annotator=ana)
    a_on_left = Assignment.objects.get(pk=first).a_on_left
    assert change.before["outcome"] == ("A" if a_on_left else "B")
    assert (change.after["outcome"], change.kind, change.changed_by) == ("tie", "revised", ana)
    rows.first.get_by_role("link", name="Change").click()
    expect(page.get_by_test_id("label-history")).to_contain_text("left")
    expect(page.get_by_test_id("label-history")).to_contain_text("tie")

    # The lead decides the disagreement, then changes their mind; both are kept.
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server, "lena-lead")
    item = label.item
    page.goto(f"{live_server.url}/audits/{audit.pk}/adjudicate/{item.pk}/")
    page.get_by_label("A is better").check()
    page.fill("textarea[name=note]", "A keeps the list.")
    page.get_by_role("button", name="Decide").click()
    page.goto(f"{live_server.url}/audits/{audit.pk}/adjudicate/{item.pk}/")
    expect(page.get_by_test_id("final")).to_contain_text("A is better")
    page.get_by_label("Tie").check()
    page.fill("textarea[name=note]", "Both keep it; tie.")
    page.get_by_role("button", name="Revise").click()
    expect(page.locator(".messages")).to_contain_text("decision revised")
    expect(page.get_by_test_id("final")).to_contain_text("Tie")
    history = page.get_by_test_id("history")
    expect(history.locator("tbody tr")).to_have_count(1)
    expect(history).to_contain_text("lena-lead")
    expect(history).to_contain_text("A keeps the list.")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "adjudication-history.png"), full_page=True)

    decision = Adjudication.objects.get(item=item)
    assert (decision.outcome, decision.note, decision.lead) == ("tie", "Both keep it; tie.", lead)
    revision = AdjudicationRevision.objects.get(item=item)
    assert (revision.before["outcome"], revision.after["outcome"]) == ("A", "tie")
    assert revision.changed_by == lead


def test_it_skips_with_the_s_key(live_server: Any, page: Any) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    ana, otto = member("ana-annotator"), member("otto-annotator")
    audit = _audit(lead, [ana, otto], pairs=3, items=3)
    log_in(page, live_server, "ana-annotator")
    page.goto(f"{live_server.url}/audits/{audit.pk}/label/")
    expect(page.get_by_test_id("legend")).to_contain_text("S skip")
    expect(page.get_by_test_id("left-count")).to_have_text("3 items left for you")
    skipped = current_assignment(page)

    press_key(page, "s")
    expect(page.locator("#skip")).to_have_attribute("open", "")
    expect(page.locator("#skip-button")).to_be_focused()
    page.keyboard.press("Escape")  # changed my mind
    expect(page.locator("#skip")).not_to_have_attribute("open", "")
    assert Assignment.objects.get(pk=skipped).status == "held"

    press_key(page, "s")
    page.select_option("#skip-reason", "content missing or broken")
    page.locator("#skip-button").focus()
    page.keyboard.press("s")
    expect(page.get_by_test_id("notice")).to_have_text("Skipped.")
    expect(page.get_by_test_id("left-count")).to_have_text("2 items left for you")
    assert current_assignment(page) != skipped
    assignment = Assignment.objects.get(pk=skipped)
    assert (assignment.status, assignment.skip_reason) == ("skipped", "content missing or broken")
    assert not Label.objects.exists()


@pytest.mark.parametrize(("width", "height", "lines"), [(1400, 900, 17), (1280, 720, 11)])
def test_it_keeps_both_answers_the_choices_and_the_legend_on_one_screen(
    live_server: Any, page: Any, tmp_path: Path, width: int, height: int, lines: int
) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    ana, otto = member("ana-annotator"), member("otto-annotator")
    audit = _audit(
        lead,
        [ana, otto],
        pairs=2,
        items=2,
        long=True,
        allow_strength=True,
        criteria=["correctness", "clarity"],
        guidelines="Prefer the **correct** answer.",
    )
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, live_server, "ana-annotator")
    page.goto(f"{live_server.url}/audits/{audit.pk}/label/")
    press_key(page, "g")  # the guidelines open on the first item; close them
    expect(page.locator("#guidelines")).not_to_have_attribute("open", "")

    sizes = page.evaluate(
        """() => {
          const box = (sel) => document.querySelector(sel).getBoundingClientRect();
          const left = document.querySelector('#response-left .scroll');
          const line = parseFloat(getComputedStyle(left).lineHeight);
          return {
            page: document.scrollingElement.scrollHeight, view: innerHeight,
            left: box('#response-left .scroll'), right: box('#response-right .scroll'),
            legend: box('[data-testid=legend]'), choice: box('button.choice[data-key="3"]'),
            line: line, scrollable: left.scrollHeight > left.clientHeight,
          };
        }"""
    )
    assert sizes["page"] <= sizes["view"] + 1  # the page itself does not scroll
    for name in ("legend", "choice"):
        assert sizes[name]["top"] >= 0 and sizes[name]["bottom"] <= height, name
    assert sizes["right"]["left"] > sizes["left"]["right"] - 1  # side by side
    assert sizes["left"]["top"] == pytest.approx(sizes["right"]["top"], abs=1)
    for side in ("left", "right"):
        assert sizes[side]["height"] >= lines * sizes["line"], (side, sizes[side]["height"])
    assert sizes["scrollable"]  # a long answer scrolls inside its own box

    page.locator("#response-left .scroll").hover()
    page.mouse.wheel(0, 600)
    expect(page.locator("#response-left .scroll")).not_to_have_js_property("scrollTop", 0)
    assert page.evaluate("() => scrollY") == 0
    assert page.evaluate("() => document.querySelector('#response-right .scroll').scrollTop") == 0
    page.screenshot(path=str(screenshot_dir(tmp_path) / f"workspace-{width}x{height}.png"))
    press_key(page, "3")
    expect(page.get_by_test_id("notice")).to_have_text("Label saved.")
    assert Label.objects.get(annotator=ana).outcome == "tie"
