"""Full-text search over pairs: what people type becomes terms, the database's own index
(FTS5 on SQLite, tsvector + GIN on PostgreSQL) finds pairs by prompt and response words, and
the index follows the pairs and their texts through the triggers of migration 0004."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from corpus import search
from corpus.models import Pair, Prompt, Response
from tests.factories import DatasetFactory, PairFactory, PromptFactory, ResponseFactory, sha


def _pair(dataset, key: str, prompt: str, a: str, b: str) -> Pair:  # type: ignore[no-untyped-def]
    question = PromptFactory(dataset=dataset, text=prompt)
    return PairFactory(
        dataset=dataset,
        prompt=question,
        source_key=key,
        response_a=ResponseFactory(prompt=question, text=a),
        response_b=ResponseFactory(prompt=question, text=b),
    )


def _keys(pairs) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(pairs.values_list("source_key", flat=True))


def _indexed() -> int:
    table = search.PG_TABLE if connection.vendor == "postgresql" else search.SQLITE_TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cursor.fetchone()[0])


def test_it_keeps_words_and_quoted_phrases_and_drops_operators() -> None:
    terms = search.search_terms('Refuse "medical  ADVICE" AND (x* OR -y) NEAR( "unclosed')
    assert [t.text for t in terms] == [
        "refuse", "medical advice", "and", "x", "or", "y", "near", "unclosed",
    ]  # fmt: skip
    assert [t.text for t in search.search_terms("gpt-4 don't")] == ["gpt 4", "don t"]
    assert search.search_terms('  "" * ( ) : ^ ') == []
    assert len(search.search_terms(" ".join(f"w{i}" for i in range(40)))) == search.MAX_TERMS
    # Every term is quoted for both engines: no operator survives into a query.
    assert search.fts5_match(terms[:3]) == '"refuse" "medical advice" "and"'
    assert search.websearch_text(terms[3:5]) == '"x" "or"'


@pytest.fixture
def texts(db: None) -> dict[str, Pair]:
    dataset = DatasetFactory(name="texts")
    return {
        "photo": _pair(
            dataset, "photo", "How do plants eat?", "By photosynthesis in the leaves.", "Soil."
        ),
        "paris": _pair(
            dataset, "paris", "What is the capital of France?", "Paris.", "Lyon, I think."
        ),
        "refusal": _pair(
            dataset,
            "refusal",
            "How do I pick a lock?",
            "I am refusing to help with breaking into homes.",
            "Use a tension wrench and a pick.",
        ),
    }


def test_it_finds_pairs_by_words_of_the_prompt_and_either_response(texts: dict) -> None:
    pairs = Pair.objects.all()
    assert _keys(search.pairs_search(pairs, "photosynthesis")) == ["photo"]
    assert _keys(search.pairs_search(pairs, "Lyon")) == ["paris"]  # response B
    # Every term must match, wherever it is: "capital" in the prompt, "paris" in A.
    assert _keys(search.pairs_search(pairs, "capital paris")) == ["paris"]
    assert _keys(search.pairs_search(pairs, "capital photosynthesis")) == []
    # Stemming: "refuse" finds "refusing"; a phrase needs its words in order.
    assert _keys(search.pairs_search(pairs, "refuse")) == ["refusal"]
    assert _keys(search.pairs_search(pairs, '"tension wrench"')) == ["refusal"]
    assert _keys(search.pairs_search(pairs, '"wrench tension"')) == []
    assert _keys(search.pairs_search(pairs, "")) == ["paris", "photo", "refusal"]


@pytest.mark.parametrize(
    "query", ['"', "AND (", "*", "NEAR(a b", "pick OR", "-lock", "a:b", "'", "\x00", "^photo"]
)
def test_a_query_with_search_syntax_never_fails(texts: dict, query: str) -> None:
    found = list(search.pairs_search(Pair.objects.all(), query))
    assert all(isinstance(pair, Pair) for pair in found)


def test_the_index_follows_pairs_and_their_texts(texts: dict) -> None:
    pairs = Pair.objects.all()
    assert _indexed() == 3
    # A text given after the pair exists (a verdict-only import later given texts).
    prompt = texts["paris"].prompt
    prompt.text = "Which city hosts the Louvre?"
    prompt.save(update_fields=["text"])
    assert _keys(search.pairs_search(pairs, "louvre")) == ["paris"]
    assert _keys(search.pairs_search(pairs, "capital")) == []
    Response.objects.filter(pk=texts["photo"].response_b_id).update(text="Chlorophyll.")
    assert _keys(search.pairs_search(pairs, "chlorophyll")) == ["photo"]
    # A pair pointed at another response is indexed with it.
    other = ResponseFactory(prompt=texts["photo"].prompt, text="Mycorrhiza helps.")
    Pair.objects.filter(pk=texts["photo"].pk).update(response_a=other)
    assert _keys(search.pairs_search(pairs, "mycorrhiza")) == ["photo"]
    assert _keys(search.pairs_search(pairs, "photosynthesis")) == []
    texts["refusal"].delete()
    assert _indexed() == 2
    assert _keys(search.pairs_search(pairs, "wrench")) == []


@pytest.fixture
def before_index() -> Iterator[None]:
    """The database without the search migration; migrated to the latest again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate([("corpus", "0003_job_lease")])
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_migrating_a_database_that_holds_pairs_indexes_them(before_index: None) -> None:
    dataset = DatasetFactory(name="older")
    prompt = Prompt.objects.create(dataset=dataset, text="Old question?", content_hash=sha("q"))
    a = Response.objects.create(prompt=prompt, text="Ancient wisdom.", content_hash=sha("a"))
    b = Response.objects.create(prompt=prompt, text="Modern answer.", content_hash=sha("b"))
    Pair.objects.create(
        dataset=dataset, source_key="old", prompt=prompt, response_a=a, response_b=b,
        content_hash=sha("old"),
    )  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert _indexed() == 1
    assert _keys(search.pairs_search(Pair.objects.all(), "ancient")) == ["old"]
