"""Sixteen annotators labelling at once on PostgreSQL: SKIP LOCKED hands out distinct items."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import connection, connections

from annotation import queue, selectors, services
from annotation.models import Audit, AuditItem, Label
from config.roles import ensure_groups
from tests.factories import DatasetFactory, PairFactory, UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (row locks and SKIP LOCKED); set DATABASE_URL=postgres://...",
    ),
]

ANNOTATORS = 16
ITEMS = 300
K = 2


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _label_until_done(
    audit: Audit, user: Any, created: list[int], errors: list[BaseException]
) -> None:
    try:
        while True:
            assignment = queue.queue_next(audit=audit, annotator=user)
            if assignment is None:
                # Items may still be held by others who have not submitted yet: wait for them
                # unless nothing is left that this annotator could label.
                if selectors.items_open_to(audit, user) == 0:
                    return
                time.sleep(0.005)
                continue
            result = queue.label_submit(
                assignment=assignment,
                choice=("left", "right", "tie")[assignment.item.position % 3],
                submission_key=uuid.uuid4(),
            )
            if result.created:
                created.append(result.label.pk)
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        connections.close_all()


def test_it_gives_every_item_exactly_k_labels_with_16_annotators_at_once(
    transactional_db: None,
) -> None:
    _, annotator_group = ensure_groups()
    people: list[Any] = [UserFactory(username=f"concurrent-{i:02d}") for i in range(ANNOTATORS)]
    for person in people:
        person.groups.add(annotator_group)
    lead = UserFactory(username="concurrent-lead")
    dataset: Any = DatasetFactory(name="concurrency")
    for i in range(ITEMS):
        PairFactory(prompt__dataset=dataset, source_key=f"c-{i:04d}")
    audit = services.audit_build(
        name="Concurrency",
        dataset=dataset,
        judges=[],
        size=ITEMS,
        overlap_k=K,
        quotas={},
        thresholds={},
        seed=3,
        created_by=lead,
        annotators=people,
    )

    created: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(ANNOTATORS)

    def run(person: Any) -> None:
        start.wait()
        _label_until_done(audit, person, created, errors)

    threads = [threading.Thread(target=run, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    counts = Counter(Label.objects.filter(item__audit=audit).values_list("item_id", flat=True))
    assert len(counts) == ITEMS
    assert set(counts.values()) == {K}
    assert set(AuditItem.objects.filter(audit=audit).values_list("label_count", flat=True)) == {K}
    per_person = Counter(
        Label.objects.filter(item__audit=audit).values_list("item_id", "annotator_id")
    )
    assert max(per_person.values()) == 1  # nobody labelled an item twice
    assert Label.objects.filter(item__audit=audit).count() == ITEMS * K
    assert sorted(created) == sorted(Label.objects.values_list("pk", flat=True))  # none lost
    # The work was shared, not done by one thread that happened to win every race.
    assert len({annotator for _, annotator in per_person}) == ANNOTATORS
