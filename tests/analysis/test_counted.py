"""Analysis counts what the audit work defined: labels of annotators set aside and gold items
never reach a figure, the study inputs or the export (`labels_counted`,
`Label.objects.counted()`, `AuditItem.objects.sampled()`)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from analysis import export, selectors, services
from annotation.models import AnnotatorExclusion, AuditItem, Stratum
from tests.analysis.test_snapshot import AuditData, build_audit, submitted_label
from tests.factories import PairFactory, PromptFactory, ResponseFactory, UserFactory


@pytest.fixture
def data(db: None) -> AuditData:
    return build_audit()


def _figures(data: AuditData) -> dict[str, Any]:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)
    return {
        "figures": snapshot.metrics["figures"],
        "raters": snapshot.metrics["raters"],
        "labels": snapshot.label_count,
        "study_labels": len(selectors.audit_label_sequence(data.audit)),
        "export_labels": sum(
            len(row["meta"]["tribunal_export"]["labels"]) for row in _export(data)
        ),
    }


def _export(data: AuditData) -> list[dict[str, Any]]:
    rows = list(export.export_rows([data.audit.pk], secret="s"))
    for row in rows:
        assert isinstance(row["meta"], dict)
    return rows


def _label(data: AuditData, user: Any, index: int, outcome: str) -> None:
    item = AuditItem.objects.get(audit=data.audit, pair_id=data.pair_ids[index])
    submitted_label(item, user, outcome, f"20000000-0000-0000-0000-{index:012d}")


def test_an_annotator_set_aside_changes_no_figure(data: AuditData) -> None:
    before = _figures(data)
    stray = UserFactory(username="stray")
    for index in range(len(data.pair_ids)):
        _label(data, stray, index, "B")
    counted = _figures(data)
    assert counted != before  # the labels count while the annotator is in
    assert counted["labels"] == before["labels"] + len(data.pair_ids)

    AnnotatorExclusion.objects.create(
        audit=data.audit, annotator=stray, excluded_by=stray, excluded_at=timezone.now()
    )

    assert _figures(data) == before
    assert selectors.audit_watermark(data.audit)["set_aside"] == [stray.pk]


def test_a_gold_item_is_not_in_the_design_the_votes_or_the_export(data: AuditData) -> None:
    prompt = PromptFactory(dataset=data.audit.dataset)
    gold_pair = PairFactory(
        prompt=prompt,
        response_a=ResponseFactory(prompt=prompt),
        response_b=ResponseFactory(prompt=prompt),
    )
    gold = AuditItem.objects.create(
        audit=data.audit,
        pair=gold_pair,
        stratum=Stratum.GOLD,
        inclusion_probability=1.0,
        position=999,
        gold_outcome="A",
    )
    submitted_label(gold, data.annotators[0], "B", "30000000-0000-0000-0000-000000000001")

    design = selectors.audit_design(data.audit)
    assert set(design["pair_id"]) == set(data.pair_ids)  # the sample, without the gold pair
    table = selectors.audit_votes(data.audit)
    assert gold_pair.pk not in set(table.items["item"])
    assert gold_pair.pk not in set(table.votes["item"])
    assert gold_pair.pk not in set(selectors.audit_label_sequence(data.audit)["item"])
    exported = _export(data)
    keys = {row["meta"]["tribunal_export"]["source_key"] for row in exported}
    assert gold_pair.source_key not in keys
    assert len(exported) == len(data.pair_ids)
    assert selectors.audit_watermark(data.audit)["items"] == len(data.pair_ids)
