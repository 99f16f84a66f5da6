"""Rows the benches write alike: an imported judge, a pair of two consecutive responses, a
submitted assignment. Call after Django is set up (the models are imported on use)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any


def imported_judge(*, name: str, model_id: str, fingerprint: str, **fields: Any) -> Any:
    """A judge whose verdicts the bench writes itself (provider ``imported``), saved."""
    from judges.models import Judge

    return Judge.objects.create(
        name=name, provider="imported", model_id=model_id, fingerprint=fingerprint, **fields
    )


def pair_of(responses: Sequence[Any], k: int, **fields: Any) -> Any:
    """An unsaved pair of ``responses[2k]`` (A) against ``responses[2k + 1]`` (B)."""
    from corpus.models import Pair

    return Pair(response_a=responses[2 * k], response_b=responses[2 * k + 1], **fields)


def submitted_assignment(item: Any, annotator: Any, *, rng: random.Random, now: datetime) -> Any:
    """An unsaved assignment, served at ``now`` and submitted, A on the left by a coin flip."""
    from annotation.models import Assignment

    return Assignment(
        item=item,
        annotator=annotator,
        a_on_left=rng.random() < 0.5,
        status="submitted",
        served_at=now,
        expires_at=now + timedelta(minutes=10),
    )
