"""The datasets API: lists with counts, one dataset, and its pairs (leads only)."""

from __future__ import annotations

import pytest
from django.test import Client

from corpus.models import Dataset, HumanVote
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    PairFactory,
    PromptFactory,
    ResponseFactory,
    VerdictFactory,
)


@pytest.fixture
def arena(db: None) -> Dataset:
    """Three pairs: two maths pairs (one by model-x against model-y), one on safety."""
    dataset = DatasetFactory(name="arena", description="Arena battles")
    maths = PromptFactory(dataset=dataset, text="What is 2+2?", category="math")
    safety = PromptFactory(dataset=dataset, text="How do I pick a lock?")
    x = ResponseFactory(prompt=maths, model_name="model-x", text="4")
    y = ResponseFactory(prompt=maths, model_name="model-y", text="5")
    z = ResponseFactory(prompt=maths, model_name="model-z", text="four")
    refusal = ResponseFactory(prompt=safety, model_name="model-z", text="I can't help.")
    answer = ResponseFactory(prompt=safety, model_name="model-w", text="Use a pick.")
    first = PairFactory(prompt=maths, source_key="b-1", response_a=x, response_b=y)
    PairFactory(prompt=maths, source_key="b-2", response_a=z, response_b=y)
    third = PairFactory(
        prompt=safety, source_key="b-3", response_a=refusal, response_b=answer, category="safety"
    )
    for voter in ("u1", "u2"):
        HumanVote.objects.create(
            pair=first, source="generic", voter_id=voter, outcome="A", row_hash=voter
        )
    judge = JudgeFactory(name="gpt-judge")
    VerdictFactory(judge=judge, pair=first)
    VerdictFactory(judge=judge, pair=third)
    DatasetFactory(name="empty-set")
    return dataset


def test_it_lists_datasets_with_their_counts(lead_client: Client, arena: Dataset) -> None:
    response = lead_client.get("/api/datasets/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "arena",
            "description": "Arena battles",
            "created_at": response.json()[0]["created_at"],
            "pairs": 3,
            "human_votes": 2,
            "verdicts": 2,
        },
        {
            "name": "empty-set",
            "description": "",
            "created_at": response.json()[1]["created_at"],
            "pairs": 0,
            "human_votes": 0,
            "verdicts": 0,
        },
    ]
    assert response["X-Total-Count"] == "2"


def test_it_pages_the_list_with_link_headers(lead_client: Client, db: None) -> None:
    for i in range(5):
        DatasetFactory(name=f"set-{i}")

    first = lead_client.get("/api/datasets/", {"page_size": 2})
    last = lead_client.get("/api/datasets/", {"page_size": 2, "page": 3})

    assert [d["name"] for d in first.json()] == ["set-0", "set-1"]
    assert [d["name"] for d in last.json()] == ["set-4"]
    assert first["X-Total-Count"] == last["X-Total-Count"] == "5"
    assert 'page=2&page_size=2>; rel="next"' in first["Link"]
    assert 'rel="prev"' not in first["Link"]
    assert 'page=3&page_size=2>; rel="last"' in first["Link"]
    assert 'page=2&page_size=2>; rel="prev"' in last["Link"]
    assert 'rel="next"' not in last["Link"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page": "9"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "5000"}, "page_size"),
    ],
)
def test_it_refuses_a_bad_page_naming_the_parameter(
    lead_client: Client, arena: Dataset, query: dict[str, str], parameter: str
) -> None:
    response = lead_client.get("/api/datasets/", query)

    assert response.status_code == 400
    assert list(response.json()) == [parameter]


def test_it_answers_an_empty_list_on_the_first_page(lead_client: Client, db: None) -> None:
    response = lead_client.get("/api/datasets/")

    assert response.status_code == 200
    assert response.json() == []
    assert response["X-Total-Count"] == "0"


def test_it_shows_one_dataset_with_categories_models_and_judges(
    lead_client: Client, arena: Dataset
) -> None:
    response = lead_client.get("/api/datasets/arena/")

    body = response.json()
    judge = JudgeFactory._meta.model.objects.get(name="gpt-judge")
    assert response.status_code == 200
    assert (body["name"], body["pairs"], body["human_votes"], body["verdicts"]) == (
        "arena",
        3,
        2,
        2,
    )
    assert body["categories"] == [
        {"category": "math", "pairs": 2},
        {"category": "safety", "pairs": 1},
    ]
    assert body["models"] == [
        {"model": "model-z", "responses": 2},
        {"model": "model-w", "responses": 1},
        {"model": "model-x", "responses": 1},
        {"model": "model-y", "responses": 1},
    ]
    assert body["judges"] == [
        {
            "id": judge.pk,
            "name": "gpt-judge",
            "version": judge.version,
            "fingerprint": judge.fingerprint,
            "verdicts": 2,
        }
    ]
    assert lead_client.get("/api/datasets/no-such-set/").status_code == 404


def test_it_lists_a_datasets_pairs_with_texts_and_model_names(
    lead_client: Client, arena: Dataset
) -> None:
    response = lead_client.get("/api/datasets/arena/pairs/")

    assert response.status_code == 200
    rows = response.json()
    assert [row["key"] for row in rows] == ["b-1", "b-2", "b-3"]
    assert rows[0]["prompt"] == "What is 2+2?"
    assert rows[0]["category"] == "math"
    assert rows[0]["response_a"] == {"model": "model-x", "text": "4", "has_text": True}
    assert rows[0]["response_b"] == {"model": "model-y", "text": "5", "has_text": True}
    assert rows[2]["category"] == "safety"
    assert response["X-Total-Count"] == "3"


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ({"category": "math"}, ["b-1", "b-2"]),
        ({"category": "safety"}, ["b-3"]),
        ({"category": "poetry"}, []),
        ({"model": "model-y"}, ["b-1", "b-2"]),
        ({"model": "model-z"}, ["b-2", "b-3"]),
        ({"model": "model-z", "category": "math"}, ["b-2"]),
        ({"category": "", "model": ""}, ["b-1", "b-2", "b-3"]),
    ],
)
def test_it_filters_pairs_by_category_and_model(
    lead_client: Client, arena: Dataset, query: dict[str, str], keys: list[str]
) -> None:
    response = lead_client.get("/api/datasets/arena/pairs/", query)

    assert response.status_code == 200
    assert [row["key"] for row in response.json()] == keys


def test_it_refuses_a_bad_pair_filter_naming_the_parameter(
    lead_client: Client, arena: Dataset
) -> None:
    response = lead_client.get("/api/datasets/arena/pairs/", {"category": "x" * 101})

    assert response.status_code == 400
    assert list(response.json()) == ["category"]


@pytest.mark.parametrize("persona", ["annotator_client", "outsider_client"])
def test_it_is_for_leads_only(request: pytest.FixtureRequest, persona: str, arena: Dataset) -> None:
    client: Client = request.getfixturevalue(persona)

    responses = [
        client.get("/api/datasets/"),
        client.get("/api/datasets/arena/"),
        client.get("/api/datasets/arena/pairs/"),
        client.get("/api/datasets/no-such-set/pairs/"),  # no hint whether it exists
    ]

    assert [r.status_code for r in responses] == [403] * 4
    assert all("model-x" not in r.content.decode() for r in responses)


def test_it_asks_anonymous_callers_to_authenticate(client: Client, arena: Dataset) -> None:
    response = client.get("/api/datasets/arena/pairs/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "model-x" not in response.content.decode()


def test_it_serves_datasets_to_a_lead_with_a_token(
    lead_token_client: Client, arena: Dataset
) -> None:
    response = lead_token_client.get("/api/datasets/arena/pairs/", {"model": "model-x"})

    assert response.status_code == 200
    assert [row["key"] for row in response.json()] == ["b-1"]
