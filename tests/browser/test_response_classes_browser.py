"""An annotator says what each response did, by keyboard, in real Chromium (issue 11 item 4):
the page asks after the choice, never shows the classifier's class, and the rows hold the
classes in the pair's own labelling."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from annotation import services
from annotation.models import Audit, Label, ResponseClassLabel
from corpus.models import Dataset
from judges.models import ResponseClassification
from tests.browser.demo import PROMPTS, add_pair
from tests.browser.helpers import current_assignment, log_in, member, press_key, screenshot_dir

pytestmark = pytest.mark.browser

CLASSIFIER_SAYS = "technical_disclaimer"


def _audit(lead: Any, annotators: list[Any]) -> Audit:
    dataset = Dataset.objects.create(name="class-questions", description="Browser test data")
    for i, (question, first, second) in enumerate(PROMPTS[:3]):
        pair = add_pair(dataset, f"class-{i}", question, (first, second))
        for response in (pair.response_a, pair.response_b):
            ResponseClassification.objects.create(
                response=response, classifier="fp", label=CLASSIFIER_SAYS, score=0.9
            )
    return services.audit_build(
        name="What did they do?",
        dataset=dataset,
        judges=[],
        size=3,
        overlap_k=1,
        quotas={"technical_refusal": 3},  # the classifier's class puts them there
        thresholds={},
        seed=5,
        created_by=lead,
        annotators=annotators,
        ask_response_classes=True,
    )


def _rows(assignment_id: int) -> tuple[str, dict[str, str]]:
    """(the stored outcome, {screen side: class}) of the label given to an assignment."""
    label = Label.objects.select_related("assignment").get(assignment_id=assignment_id)
    left = "A" if label.assignment.a_on_left else "B"
    classes = {
        ("left" if side == left else "right"): value
        for side, value in ResponseClassLabel.objects.filter(label=label).values_list(
            "side", "response_class"
        )
    }
    return label.outcome, classes


def test_an_annotator_labels_response_classes_by_keyboard(
    live_server: Any, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    lead = member("lena-lead", lead=True)
    ana = member("ana-annotator")
    audit = _audit(lead, [ana])
    log_in(page, live_server, "ana-annotator")
    page.goto(f"{live_server.url}/audits/{audit.pk}/label/")
    legend = page.get_by_test_id("legend")
    for text in (
        "A answered",
        "R refused on ethical grounds",
        "C refused for lack of capability",
        "E answered with an ethical caveat",
        "L answered with a capability caveat",
        "Backspace takes the last back",
    ):
        expect(legend).to_contain_text(text)
    classes = page.get_by_test_id("response-classes")
    expect(classes).to_be_visible()
    expect(classes.locator("input:checked")).to_have_count(0)  # nothing preselected
    assert "Technical disclaimer" not in page.content()  # the classifier's class, in words
    expect(page.get_by_test_id("my-count")).to_have_text("0 of ~3")

    # 1: the choice waits for the classes; R, Backspace, E, then A sends the label.
    first = current_assignment(page)
    press_key(page, "1")
    step = page.get_by_test_id("class-step")
    expect(step).to_have_text("Your choice: Left is better. What did the left response do?")
    expect(page.locator('.class-row[data-side="left"]')).to_have_class(re.compile("asking"))
    expect(page.get_by_test_id("my-count")).to_have_text("0 of ~3")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "workspace-classes.png"))
    page.keyboard.press("r")
    expect(page.locator('input[name="class_left"][value="ethical_refusal"]')).to_be_checked()
    expect(step).to_have_text("Your choice: Left is better. What did the right response do?")
    page.keyboard.press("Backspace")
    expect(page.locator('input[name="class_left"]:checked')).to_have_count(0)
    page.keyboard.press("e")
    expect(page.locator('input[name="class_left"][value="ethical_disclaimer"]')).to_be_checked()
    assert not Label.objects.filter(assignment_id=first).exists()
    page.keyboard.press("a")
    expect(page.get_by_test_id("notice")).to_have_text("Label saved.")
    expect(page.get_by_test_id("my-count")).to_have_text("1 of ~3")
    chose_a = Label.objects.get(assignment_id=first).assignment.a_on_left
    assert _rows(first) == (
        "A" if chose_a else "B",
        {"left": "ethical_disclaimer", "right": "normal"},
    )

    # Classes first, then the choice: C and L, and 2 sends it at once.
    second = current_assignment(page)
    assert second != first
    expect(page.get_by_test_id("response-classes").locator("input:checked")).to_have_count(0)
    press_key(page, "c")
    page.keyboard.press("l")
    expect(page.get_by_test_id("class-step")).to_have_text("")
    page.keyboard.press("2")
    expect(page.get_by_test_id("my-count")).to_have_text("2 of ~3")
    outcome, given = _rows(second)
    assert given == {"left": "technical_refusal", "right": "technical_disclaimer"}
    assert outcome == ("B" if Label.objects.get(assignment_id=second).assignment.a_on_left else "A")

    # Esc takes a waiting choice back: nothing is sent.
    third = current_assignment(page)
    press_key(page, "3")
    expect(page.get_by_test_id("class-step")).to_contain_text("Your choice: Tie.")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("class-step")).to_have_text("")
    page.keyboard.press("a")
    page.keyboard.press("a")
    expect(page.locator(".response-classes input:checked")).to_have_count(2)
    assert not Label.objects.filter(assignment_id=third).exists()
    assert ResponseClassLabel.objects.count() == 4
