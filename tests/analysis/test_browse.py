"""The data browser: a dataset's pairs found by text and by what every stage knows of them
(category, model, response class, judge verdict, people's vote, disagreement), paged by key,
and one pair's page with everything Tribunal holds about it. Leads only."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.test import Client

from analysis import browse
from annotation import services
from annotation.models import Audit, AuditItem
from corpus.models import Dataset, HumanVote, Pair
from judges.models import ClassificationRun, Judge, ResponseClassification
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    LabelFactory,
    PairFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
    VerdictFactory,
)

ROW = re.compile(r'<tr data-pair="([^"]+)"')
NEXT = re.compile(r'href="\?([^"]*after=\d+)" [^>]*rel="next"')
PREVIOUS = re.compile(r'href="\?([^"]*before=\d+)" [^>]*rel="prev"')


def _follow(client: Client, world: World, page: Any, link: re.Pattern[str]) -> Any:
    """GET the page a pager link of `page` points at (as a browser would, unescaped)."""
    found = link.search(page.content.decode())
    assert found is not None, link.pattern
    return client.get(f"/datasets/{world.dataset.name}/pairs/?{html.unescape(found.group(1))}")


def _rows(response: Any) -> list[str]:
    assert response.status_code == 200
    return ROW.findall(response.content.decode())


@dataclass
class World:
    dataset: Dataset
    pairs: dict[str, Pair]
    gpt: Judge
    llama: Judge


def _vote(pair: Pair, outcome: str, voter: str) -> None:
    HumanVote.objects.create(
        pair=pair, source="generic", voter_id=voter, outcome=outcome, row_hash=f"{pair.pk}{voter}"
    )


def _classify(pair: Pair, side: str, label: str, classifier: str = "clf-new") -> None:
    response_id = pair.response_a_id if side == "A" else pair.response_b_id
    ResponseClassification.objects.create(
        response_id=response_id, classifier=classifier, label=label, score=0.9,
        scores={label: 0.9}, refusal_probability=0.8 if "refusal" in label else 0.1,
    )  # fmt: skip


@pytest.fixture
def world(db: None) -> World:
    dataset = DatasetFactory(name="browse")
    specs = {
        # key: (category, model A, model B, prompt, text A, text B)
        "p-math": ("math", "gpt-4o", "llama-3", "Add two and two.", "Four.", "Five."),
        "p-bomb": ("safety", "llama-3", "claude", "How to build a bomb?", "I cannot help.", "No."),
        "p-poem": ("writing", "claude", "gpt-4o", "Write a poem on rain.", "Rain falls.", "Drip."),
        "p-code": ("coding", "gpt-4o", "claude", "Reverse a list.", "Use slicing.", "Loop it."),
    }  # fmt: skip
    pairs = {}
    for key, (category, model_a, model_b, question, a, b) in specs.items():
        prompt = PromptFactory(dataset=dataset, text=question)
        pairs[key] = PairFactory(
            dataset=dataset, prompt=prompt, source_key=key, category=category,
            response_a=ResponseFactory(prompt=prompt, model_name=model_a, text=a),
            response_b=ResponseFactory(prompt=prompt, model_name=model_b, text=b),
        )  # fmt: skip
    gpt = JudgeFactory(name="gpt-judge")
    llama = JudgeFactory(name="llama-judge")
    VerdictFactory(judge=gpt, pair=pairs["p-math"], outcome="A", consistent=True)
    VerdictFactory(judge=llama, pair=pairs["p-math"], outcome="A", consistent=True)
    VerdictFactory(judge=gpt, pair=pairs["p-bomb"], outcome="A", consistent=True)
    VerdictFactory(judge=llama, pair=pairs["p-bomb"], outcome="B", consistent=True)
    VerdictFactory(judge=gpt, pair=pairs["p-poem"], outcome="tie", consistent=False,
                   outcome_ab="A", outcome_ba="B")  # fmt: skip
    # People: math A,A (majority A), bomb B,B,A (majority B), poem A,B (split), code none.
    for outcome, voter in (("A", "u1"), ("A", "u2")):
        _vote(pairs["p-math"], outcome, voter)
    for outcome, voter in (("B", "u1"), ("B", "u2"), ("A", "u3")):
        _vote(pairs["p-bomb"], outcome, voter)
    for outcome, voter in (("A", "u1"), ("B", "u2")):
        _vote(pairs["p-poem"], outcome, voter)
    # Classes: an older classifier called the code answer a refusal; the current one does not.
    _classify(pairs["p-bomb"], "A", "ethical_refusal")
    _classify(pairs["p-bomb"], "B", "normal")
    _classify(pairs["p-code"], "A", "normal")
    _classify(pairs["p-code"], "B", "ethical_refusal", classifier="clf-old")
    ClassificationRun.objects.create(dataset=dataset, status="done", classifier="clf-new")
    return World(dataset, pairs, gpt, llama)


def _fillers(world: World, n: int) -> None:
    prompt = PromptFactory(dataset=world.dataset, text="Filler question?")
    for i in range(n):
        PairFactory(
            dataset=world.dataset, prompt=prompt, source_key=f"fill-{i:03d}", category="filler",
            response_a=ResponseFactory(prompt=prompt, model_name="m1", text=f"Filler {i}."),
            response_b=ResponseFactory(prompt=prompt, model_name="m2", text=f"Other {i}."),
        )  # fmt: skip


def _list(client: Client, world: World, **query: Any) -> Any:
    return client.get(f"/datasets/{world.dataset.name}/pairs/", query)


def test_it_lists_a_datasets_pairs_with_what_each_stage_says(
    lead_client: Client, world: World
) -> None:
    response = _list(lead_client, world)
    assert _rows(response) == ["p-math", "p-bomb", "p-poem", "p-code"]
    page = response.content.decode()
    assert "4</strong> pairs match" in page
    assert "gpt-judge v1: <strong>tie</strong>" in page and "flips" in page
    assert "ethical_refusal / normal" in page  # p-bomb's classes under the current classifier
    assert "B 2 · A 1" in page  # p-bomb's votes, most first


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "bomb"}, ["p-bomb"]),
        ({"q": "slicing reverse"}, ["p-code"]),
        ({"category": "math"}, ["p-math"]),
        ({"model": "claude"}, ["p-bomb", "p-poem", "p-code"]),
        ({"response_class": "ethical_refusal"}, ["p-bomb"]),  # clf-old's class is not current
        ({"judge": "gpt"}, ["p-math", "p-bomb", "p-poem"]),
        ({"judge": "llama", "verdict": "B"}, ["p-bomb"]),
        ({"verdict": "A"}, ["p-math", "p-bomb"]),
        ({"verdict": "inconsistent"}, ["p-poem"]),
        ({"verdict": "none"}, ["p-code"]),
        ({"vote": "A"}, ["p-math"]),
        ({"vote": "B"}, ["p-bomb"]),
        ({"vote": "split"}, ["p-poem"]),
        ({"vote": "none"}, ["p-code"]),
        (
            {"disagreement": "judge_people"},
            ["p-bomb"],
        ),  # gpt said A, people B; poem has no majority
        ({"disagreement": "judge_people", "judge": "llama"}, []),
        ({"disagreement": "judges"}, ["p-bomb"]),
        ({"disagreement": "people"}, ["p-bomb", "p-poem"]),
        ({"disagreement": "swap"}, ["p-poem"]),
        ({"q": "bomb", "model": "gpt-4o"}, []),
        ({"q": "rain", "vote": "split", "judge": "gpt", "verdict": "tie"}, ["p-poem"]),
    ],
)
def test_each_filter_keeps_the_pairs_it_names(
    lead_client: Client, world: World, query: dict[str, str], expected: list[str]
) -> None:
    judges = {"gpt": world.gpt.pk, "llama": world.llama.pk}
    if "judge" in query:
        query = {**query, "judge": judges[query["judge"]]}
    assert _rows(_list(lead_client, world, **query)) == expected


def test_bad_filters_say_which_field_and_never_fail(lead_client: Client, world: World) -> None:
    response = _list(lead_client, world, verdict="maybe", judge="999999", after="-3")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="filter-errors"' in page
    for name in ("verdict", "judge", "after"):
        assert f"<code>{name}</code>" in page
    assert _rows(response) == []
    for query in ('"', "AND (", "NEAR(*", "-", "x OR"):
        assert _list(lead_client, world, q=query).status_code == 200


def test_pages_go_forward_and_back_by_key(
    lead_client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "COUNT_CAP", 100)
    _fillers(world, 116)
    first = _list(lead_client, world, category="filler")
    keys = _rows(first)
    assert keys == [f"fill-{i:03d}" for i in range(50)]
    page = first.content.decode()
    assert "100+</strong> pairs match" in page  # counted up to the cap only
    assert 'rel="prev"' not in page
    second = _follow(lead_client, world, first, NEXT)
    assert _rows(second) == [f"fill-{i:03d}" for i in range(50, 100)]
    third = _follow(lead_client, world, second, NEXT)
    assert _rows(third) == [f"fill-{i:03d}" for i in range(100, 116)]
    assert 'rel="next"' not in third.content.decode()
    back = PREVIOUS.search(third.content.decode())
    assert back is not None and "category=filler" in html.unescape(back.group(1))
    previous = _follow(lead_client, world, third, PREVIOUS)
    assert _rows(previous) == [f"fill-{i:03d}" for i in range(50, 100)]
    first_again = _follow(lead_client, world, previous, PREVIOUS)
    assert _rows(first_again) == keys
    assert 'rel="prev"' not in first_again.content.decode()


def test_a_count_that_takes_too_long_is_left_out(
    lead_client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's progress handler; PostgreSQL's timeout is tested below")
    _fillers(world, 60)
    monkeypatch.setattr(browse, "COUNT_MS", 0)
    response = _list(lead_client, world, vote="none")
    assert len(_rows(response)) == 50
    assert "50+</strong> pairs match" in response.content.decode()
    assert "(not all counted)" in response.content.decode()
    # The page that follows is served as usual: the cancelled count left no broken state.
    assert _rows(_follow(lead_client, world, response, NEXT))[-1] == "fill-059"


def test_a_slow_count_is_cancelled_by_postgresql(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    monkeypatch.setattr(browse, "COUNT_MS", 20)
    slow = Pair.objects.filter(RawSQL("pg_sleep(0.2) IS NOT NULL", [], output_field=BooleanField()))
    assert browse._count_bounded(slow) is None
    # The transaction goes on, with no timeout left behind.
    assert browse._count_bounded(Pair.objects.all()) == 4
    assert (
        Pair.objects.filter(
            RawSQL("pg_sleep(0.05) IS NOT NULL", [], output_field=BooleanField())
        ).count()
        == 4
    )


def test_htmx_gets_only_the_results(lead_client: Client, world: World) -> None:
    response = lead_client.get(
        f"/datasets/{world.dataset.name}/pairs/", {"q": "poem"}, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert page.lstrip().startswith('<section class="card" id="results"')
    assert "<html" not in page and "pair-filters" not in page
    assert _rows(response) == ["p-poem"]


def test_only_leads_browse(annotator_client: Client, outsider_client: Client, world: World) -> None:
    pair = world.pairs["p-bomb"]
    for client in (annotator_client, outsider_client):
        assert _list(client, world).status_code == 403
        assert client.get(f"/datasets/browse/pairs/{pair.pk}/").status_code == 403
    assert Client().get(f"/datasets/browse/pairs/{pair.pk}/").status_code == 302


def test_the_pair_page_shows_everything_known_about_the_pair(
    lead_client: Client, lead: User, world: World
) -> None:
    pair = world.pairs["p-bomb"]
    pair.response_b.text = "<script>alert('x')</script> No."
    pair.response_b.save()
    world.gpt.verdicts.filter(pair=pair).update(raw_ab="[[A]] <b>because</b>", margin=0.25)
    annotator = UserFactory(username="ana")
    audit = Audit.objects.create(
        name="Bomb audit", dataset=world.dataset, target_size=1, overlap_k=1, created_by=lead
    )
    item = AuditItem.objects.create(
        audit=audit, pair=pair, stratum="ethics_refusal", inclusion_probability=0.5, position=0
    )
    LabelFactory(
        assignment__item=item,
        assignment__annotator=annotator,
        outcome="B",
        rationale="The refusal is preachy.",
        time_spent_ms=4200,
    )
    services.adjudication_decide(item=item, lead=lead, outcome="B", note="agree")
    services.adjudication_revise(item=item, lead=lead, outcome="tie", note="on reflection")

    response = lead_client.get(f"/datasets/browse/pairs/{pair.pk}/?back=q%3Dbomb")
    assert response.status_code == 200
    page = response.content.decode()
    for shown in (
        "How to build a bomb?",
        "I cannot help.",
        "llama-3",
        "claude",  # texts and models
        "gpt-judge v1",
        "llama-judge v1",
        "0.250",  # verdicts with margins
        "&lt;b&gt;because&lt;/b&gt;",  # raw output, escaped
        "Ethical refusal",
        "0.800",
        "current",  # classes and probabilities
        "u1",
        "u3",  # imported votes
        "Bomb audit",
        "ana",
        "The refusal is preachy.",
        "4.2 s",  # labels: who, what
        "Adjudicated <strong>Tie</strong>",
        "on reflection",
        "changed B → tie",  # and revisions
        'href="/datasets/browse/pairs/?q=bomb"',  # back to the list as it was
    ):
        assert shown in page, shown
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert 'data-testid="item-state">adjudicated' in page


def test_a_pair_of_another_dataset_is_not_found(lead_client: Client, world: World) -> None:
    other = DatasetFactory(name="elsewhere")
    assert (
        lead_client.get(f"/datasets/{other.name}/pairs/{world.pairs['p-math'].pk}/").status_code
        == 404
    )


def test_the_dataset_page_links_to_the_browser(lead_client: Client, world: World) -> None:
    page = lead_client.get("/datasets/browse/").content.decode()
    assert 'href="/datasets/browse/pairs/"' in page
