"""An annotator labels with the keyboard in real Chromium; a lead adjudicates a disagreement."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotation import queue, services
from annotation.models import Adjudication, Assignment, Audit, Label
from corpus.models import Dataset
from tests.browser.demo import MODELS, PROMPTS, add_pair
from tests.browser.helpers import current_assignment, log_in, member, press_key, screenshot_dir
from tests.factories import JudgeFactory, VerdictFactory

pytestmark = pytest.mark.browser


@dataclass
class Demo:
    """The demo audit: Lena leads it, Ana and Otto label it."""

    audit: Audit
    lead: User
    ana: User
    otto: User


@pytest.fixture
def demo(live_server: Any) -> Demo:
    lead = member("lena-lead", lead=True)
    ana, otto = member("ana-annotator"), member("otto-annotator")
    return Demo(_audit(lead, [ana, otto]), lead, ana, otto)


def _audit(lead: User, annotators: list[User]) -> Audit:
    dataset = Dataset.objects.create(name="demo-questions", description="Browser test data")
    for i, (question, first, second) in enumerate(PROMPTS):
        add_pair(dataset, f"demo-{i}", question, (first, second))
    return services.audit_build(
        name="Helpfulness check, May",
        dataset=dataset,
        judges=[],
        size=len(PROMPTS),
        overlap_k=2,
        quotas={},
        thresholds={},
        seed=2,  # serves the Python question (code blocks) first, for the screenshot
        created_by=lead,
        annotators=annotators,
        allow_both_bad=True,
        allow_strength=True,
        criteria=["correctness", "clarity"],
        guidelines=(
            "Pick the response a careful expert would prefer.\n\n"
            "- **Correctness** first, then completeness, then clarity.\n"
            "- Ignore length unless it hides the answer.\n"
            "- A polite refusal of a harmless request is *not* a good answer."
        ),
    )


def test_it_labels_with_the_keyboard_and_resumes_after_a_reload(
    live_server: Any, page: Any, tmp_path: Path, demo: Demo
) -> None:
    from playwright.sync_api import expect

    audit, ana = demo.audit, demo.ana

    log_in(page, live_server, "ana-annotator")
    page.get_by_role("link", name=re.compile("Start labelling")).click()
    page.wait_for_url(f"**/audits/{audit.pk}/label/")
    expect(page.get_by_test_id("my-count")).to_have_text("0 of ~6")
    expect(page.locator("#guidelines")).to_have_attribute("open", "")
    body = page.content()
    for secret in (*MODELS, "otto-annotator"):
        assert secret not in body

    shots = screenshot_dir(tmp_path)
    page.screenshot(path=str(shots / "workspace.png"), full_page=True)
    page.set_viewport_size({"width": 820, "height": 1180})
    page.screenshot(path=str(shots / "workspace-tablet.png"), full_page=True)
    left_box = page.locator("#response-left").bounding_box()
    right_box = page.locator("#response-right").bounding_box()
    assert left_box and right_box and right_box["x"] > left_box["x"]  # still side by side
    page.set_viewport_size({"width": 1280, "height": 900})

    press_key(page, "g")  # close the guidelines
    expect(page.locator("#guidelines")).not_to_have_attribute("open", "")

    served: list[tuple[int, str]] = []
    for key, count in (("1", 1), ("2", 2), ("3", 3)):
        served.append((current_assignment(page), key))
        press_key(page, key)
        expect(page.get_by_test_id("my-count")).to_have_text(f"{count} of ~6")
        expect(page.get_by_test_id("notice")).to_have_text("Label saved.")
    expect(page.get_by_test_id("audit-count")).to_contain_text("3 of 12 labels")

    # Digits typed into the rationale are text, not choices.
    page.locator("#rationale").press_sequentially("Right one explains 1 thing, 2 ways")
    expect(page.locator("#rationale")).to_have_value("Right one explains 1 thing, 2 ways")
    expect(page.get_by_test_id("my-count")).to_have_text("3 of ~6")
    before_reload = current_assignment(page)
    page.reload()
    assert current_assignment(page) == before_reload  # the same item after a reload
    expect(page.get_by_test_id("my-count")).to_have_text("3 of ~6")
    # Escape leaves the text field; Shift+2 is "right, clearly".
    page.fill("#rationale", "Right is correct, 2 ways")
    page.keyboard.press("Escape")
    press_key(page, "Shift+Digit2")
    expect(page.get_by_test_id("my-count")).to_have_text("4 of ~6")
    served.append((before_reload, "shift-2"))

    # Undo the last one with U, then answer it again with 0 (both bad).
    press_key(page, "u")
    expect(page.get_by_test_id("notice")).to_have_text("Label undone: choose again.")
    expect(page.get_by_test_id("my-count")).to_have_text("3 of ~6")
    assert current_assignment(page) == before_reload
    expect(page.locator("#rationale")).to_have_value("Right is correct, 2 ways")
    expect(page.locator('input[name="strength"][value="2"]')).to_be_checked()
    press_key(page, "0")
    expect(page.get_by_test_id("my-count")).to_have_text("4 of ~6")
    served[-1] = (before_reload, "0")

    labels = {label.assignment_id: label for label in Label.objects.filter(annotator=ana)}
    assert len(labels) == 4
    for assignment_id, key in served:
        label = labels[assignment_id]
        a_on_left = Assignment.objects.get(pk=assignment_id).a_on_left
        expected = {
            "1": "A" if a_on_left else "B",
            "2": "B" if a_on_left else "A",
            "3": "tie",
            "0": "both_bad",
        }[key]
        assert label.outcome == expected
        assert 0 < label.time_spent_ms < 120_000  # measured by the page, capped by the server
    assert labels[before_reload].rationale == "Right is correct, 2 ways"


def test_it_lets_a_lead_adjudicate_a_disagreement(
    live_server: Any, page: Any, tmp_path: Path, demo: Demo
) -> None:
    from playwright.sync_api import expect

    audit, lead, ana, otto = demo.audit, demo.lead, demo.ana, demo.otto
    judge: Any = JudgeFactory(name="gpt-4o-judge", model_id="gpt-4o-2024-08-06")
    audit.judges.add(judge)
    for item in audit.items.select_related("pair"):
        VerdictFactory(
            judge=judge,
            pair=item.pair,
            outcome="A",
            outcome_ab="A",
            outcome_ba="B",
            consistent=False,
            margin=0.12,
        )
    # Ana prefers A everywhere, Otto prefers B everywhere: every item is a disagreement.
    for seconds, (person, outcome) in ((41, (ana, "A")), (27, (otto, "B"))):
        while (assignment := queue.queue_next(audit=audit, annotator=person)) is not None:
            queue.label_submit(
                assignment=assignment,
                choice=queue.to_side(outcome, a_on_left=assignment.a_on_left),
                submission_key=uuid.uuid4(),
                rationale=f"{'A' if outcome == 'A' else 'B'} answers the question as asked.",
                time_spent_ms=seconds * 1000,
                now=assignment.served_at + timedelta(seconds=seconds),
            )

    log_in(page, live_server, "lena-lead")
    page.goto(f"{live_server.url}/audits/{audit.pk}/")
    # The judges' cards are the judges app's fragment, which htmx loads into the page.
    expect(page.locator("#judge-cards")).to_contain_text("gpt-4o-judge v1")
    expect(page.locator("#judge-cards")).to_contain_text("6 verdicts")
    page.get_by_role("link", name=re.compile(r"Adjudicate \(6\)")).click()
    rows = page.get_by_test_id("adjudication-queue").locator("tbody tr")
    expect(rows).to_have_count(6)
    rows.first.get_by_role("link", name="Decide").click()
    expect(page.get_by_test_id("labels").locator("tbody tr")).to_have_count(2)
    content = page.content()
    for visible in (*MODELS, "ana-annotator", "otto-annotator", "gpt-4o-judge", "flips"):
        assert visible in content
    page.get_by_label("A is better").check()
    page.fill("textarea[name=note]", "A keeps the original list, as asked; B mutates it.")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "adjudication.png"), full_page=True)
    item_url = page.url
    page.get_by_role("button", name="Decide").click()
    expect(page.locator(".messages")).to_contain_text("decided")

    adjudication = Adjudication.objects.get()
    assert (adjudication.lead, adjudication.outcome) == (lead, "A")
    assert adjudication.note == "A keeps the original list, as asked; B mutates it."
    page.goto(item_url)
    expect(page.get_by_test_id("final")).to_contain_text("A is better")
    page.goto(f"{live_server.url}/audits/{audit.pk}/adjudicate/")
    expect(page.get_by_test_id("adjudication-queue").locator("tbody tr")).to_have_count(5)
