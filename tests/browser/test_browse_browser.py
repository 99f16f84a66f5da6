"""The data browser in real Chromium: a lead opens a dataset's pairs, types a search, and the
rows update in place (htmx) with the URL carrying the query; a filter narrows them; a row
opens the pair's page. Checks what the user sees, and that the rows are the database's."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from corpus import search
from corpus.models import Dataset, Pair
from tests.browser.helpers import log_in, member
from tests.factories import (
    JudgeFactory,
    PairFactory,
    PromptFactory,
    ResponseFactory,
    VerdictFactory,
)

pytestmark = pytest.mark.browser

QUESTIONS = [
    ("k-volcano", "Why do volcanoes erupt?", "Magma pressure builds up.", "Mountains are angry."),
    ("k-bread", "How do I bake bread?", "Knead, proof, bake at 230 °C.", "Buy it."),
    ("k-lava", "Is lava hotter than a volcano's ash?", "Lava is about 1,100 °C.", "Ash is cold."),
    ("k-tax", "How do I file taxes?", "I can't give tax advice.", "Use the official form."),
]


def _dataset() -> Dataset:
    dataset = Dataset.objects.create(name="geo", description="browser test")
    judge = JudgeFactory(name="gpt-judge")
    for key, question, a, b in QUESTIONS:
        prompt = PromptFactory(dataset=dataset, text=question)
        pair = PairFactory(
            dataset=dataset, prompt=prompt, source_key=key, category="science",
            response_a=ResponseFactory(prompt=prompt, model_name="gpt-4o", text=a),
            response_b=ResponseFactory(prompt=prompt, model_name="llama-3", text=b),
        )  # fmt: skip
        VerdictFactory(judge=judge, pair=pair, outcome="A" if key != "k-lava" else "B")
    return dataset


def _visible_keys(page: Any) -> list[str]:
    return page.locator("[data-testid=pairs] tbody tr[data-pair]").evaluate_all(
        "rows => rows.map(r => r.dataset.pair)"
    )


def test_a_lead_searches_and_filters_the_pairs(page: Any, live_server: Any) -> None:
    from playwright.sync_api import expect

    lead: User = member("lena", lead=True)
    dataset = _dataset()
    log_in(page, live_server, lead.username)
    page.goto(f"{live_server.url}/datasets/{dataset.name}/")
    page.get_by_test_id("browse-pairs").click()
    expect(page.get_by_test_id("match-count")).to_contain_text("4 pairs match")
    assert _visible_keys(page) == ["k-volcano", "k-bread", "k-lava", "k-tax"]

    # Typing searches as you go: the rows change in place and the URL holds the query.
    page.get_by_label("Text").fill("volcano")
    expect(page.get_by_test_id("match-count")).to_contain_text("2 pairs match")
    expect(page.get_by_test_id("match-count")).to_contain_text("volcano")
    assert _visible_keys(page) == ["k-volcano", "k-lava"]
    assert "q=volcano" in page.url
    expected = search.pairs_search(Pair.objects.filter(dataset=dataset), "volcano")
    assert sorted(_visible_keys(page)) == sorted(expected.values_list("source_key", flat=True))
    row = page.locator("tr[data-pair=k-lava]")
    expect(row).to_contain_text("Is lava hotter than a volcano")
    expect(row).to_contain_text("gpt-4o / llama-3")

    # A filter narrows the search; the shared URL opens the same rows.
    page.get_by_label("Judge verdict").select_option("B")
    expect(page.get_by_test_id("match-count")).to_contain_text("1 pair matches")
    assert _visible_keys(page) == ["k-lava"]
    shared = page.url
    assert "verdict=B" in shared
    page.goto(shared)
    assert _visible_keys(page) == ["k-lava"]
    expect(page.get_by_label("Text")).to_have_value("volcano")

    # Search syntax is just words: no error, no rows.
    page.get_by_label("Judge verdict").select_option("")
    page.get_by_label("Text").fill('"unclosed AND (NEAR*')
    expect(page.get_by_test_id("match-count")).to_contain_text("0 pairs match")

    # A row opens the pair's page, and its link goes back to the list as it was.
    page.get_by_label("Text").fill("bread")
    expect(page.get_by_test_id("match-count")).to_contain_text("1 pair matches")
    page.locator("tr[data-pair=k-bread] a").click()
    expect(page.get_by_role("heading", name="Pair k-bread")).to_be_visible()
    expect(page.get_by_test_id("response-a")).to_contain_text("Knead, proof")
    expect(page.get_by_test_id("verdicts")).to_contain_text("gpt-judge v1")
    page.get_by_role("link", name="← Pairs of geo").click()
    expect(page.get_by_label("Text")).to_have_value("bread")
    assert _visible_keys(page) == ["k-bread"]
