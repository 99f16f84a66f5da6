"""Reads reused by pages, the API and tasks. Each owns its joins."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from annotation.models import Dataset


def dataset_list_with_counts() -> QuerySet[Dataset]:
    return Dataset.objects.annotate(
        pair_count=Count("pairs", distinct=True),
    ).order_by("name")


def dataset_summary(dataset: Dataset) -> dict[str, int]:
    from annotation.models import HumanVote, Pair
    from judges.models import Verdict

    return {
        "pairs": Pair.objects.filter(dataset=dataset).count(),
        "human_votes": HumanVote.objects.filter(pair__dataset=dataset).count(),
        "verdicts": Verdict.objects.filter(pair__dataset=dataset).count(),
    }
