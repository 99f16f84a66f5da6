"""Reads of datasets reused by pages, the API and other apps. Each owns its joins."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf

from corpus.models import Dataset, HumanVote, Pair, Response


def dataset_list_with_counts() -> QuerySet[Dataset]:
    return Dataset.objects.annotate(
        pair_count=Count("pairs", distinct=True),
    ).order_by("name")


def dataset_summary(dataset: Dataset) -> dict[str, int]:
    return {
        "pairs": Pair.objects.filter(dataset=dataset).count(),
        "human_votes": HumanVote.objects.filter(pair__dataset=dataset).count(),
    }


def count_of(model: Any, path: str) -> Coalesce:
    """The number of `model` rows whose `path` is the outer dataset, as a subquery (three
    joined counts would multiply each other's rows)."""
    rows = (
        model.objects.filter(**{path: OuterRef("pk")})
        .order_by()
        .values(path)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def datasets_with_counts() -> QuerySet[Dataset]:
    """Datasets with `pair_count` and `vote_count` (imported human votes)."""
    return Dataset.objects.annotate(
        pair_count=count_of(Pair, "dataset"),
        vote_count=count_of(HumanVote, "pair__dataset"),
    ).order_by("name")


def dataset_categories(dataset: Dataset) -> list[dict[str, Any]]:
    """Pairs per category (a pair's own category, else its prompt's), largest first."""
    category = Coalesce(NullIf("category", Value("")), "prompt__category")
    rows = (
        Pair.objects.filter(dataset=dataset)
        .annotate(shown=category)
        .order_by()
        .values("shown")
        .annotate(n=Count("pk"))
    )
    counts = [{"category": row["shown"] or "", "pairs": row["n"]} for row in rows]
    return sorted(counts, key=lambda row: (-row["pairs"], row["category"]))


def dataset_models(dataset: Dataset) -> list[dict[str, Any]]:
    """Responses per model name, largest first. Model names: leads only."""
    rows = (
        Response.objects.filter(prompt__dataset=dataset)
        .order_by()
        .values("model_name")
        .annotate(n=Count("pk"))
    )
    counts = [{"model": row["model_name"], "responses": row["n"]} for row in rows]
    return sorted(counts, key=lambda row: (-row["responses"], row["model"]))


def dataset_pairs(
    dataset: Dataset, *, category: str | None = None, model: str | None = None
) -> QuerySet[Pair]:
    """A dataset's pairs in import order, with the texts and model names (leads only)."""
    pairs = Pair.objects.filter(dataset=dataset).select_related(
        "prompt", "response_a", "response_b"
    )
    if category:
        pairs = pairs.filter(Q(category=category) | Q(category="", prompt__category=category))
    if model:
        pairs = pairs.filter(Q(response_a__model_name=model) | Q(response_b__model_name=model))
    return pairs.order_by("pk")


# --- Selection ----------------------------------------------------------------------------
