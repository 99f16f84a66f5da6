"""The snapshot's shape (analysis.snapshot): every snapshot the code writes reads back as the
typed model, and the model gives back the stored JSON key for key, number for number.

Besides the subjects here, ``tests/analysis/conftest.py`` checks every snapshot that any
analysis test stores the same way (``snapshot_shape_checked``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from analysis import services
from analysis.models import MetricSnapshot
from analysis.snapshot import Result, SnapshotMetrics, metrics_parse, unknown_keys
from tests.analysis import test_snapshot, test_studies
from tests.factories import DatasetFactory, JudgeFactory, PairFactory, VerdictFactory

N_BOOT = 20


def stored(snapshot: MetricSnapshot) -> tuple[Any, Any]:
    """The snapshot's JSON as the database gives it back."""
    snapshot.refresh_from_db()
    return snapshot.metrics, snapshot.counts


def text(data: Any) -> str:
    """JSON text with sorted keys: 1 and 1.0, True and 1 differ, as they do in a report."""
    return json.dumps(data, sort_keys=True, allow_nan=False)


def assert_round_trip(snapshot: MetricSnapshot) -> SnapshotMetrics:
    metrics, counts = stored(snapshot)
    typed = snapshot.typed
    assert unknown_keys(typed) == []
    assert unknown_keys(snapshot.typed_counts) == []
    assert text(typed.as_json()) == text(metrics)
    assert text(snapshot.typed_counts.as_json()) == text(counts)
    return typed


def test_it_reads_the_demo_like_audit_with_both_orders_and_an_adjudication(db: None) -> None:
    data = test_snapshot.build_audit()

    typed = assert_round_trip(services.snapshot_compute(audit=data.audit, n_boot=N_BOOT))

    both, one = data.judge_ids
    assert typed.position.judges[both].method == "both_orders"
    assert typed.position.judges[both].orders is not None
    assert typed.position.judges[one].method is None
    assert typed.subject.kind == "audit" and typed.progress.overlap_k == 3
    assert [h.id for h in typed.raters.humans] == sorted(data.human_ids)


def test_it_reads_the_planted_study_with_every_study(db: None) -> None:
    built = test_studies.build(300, seed=11)

    typed = assert_round_trip(services.snapshot_compute(dataset=built.dataset, n_boot=N_BOOT))

    assert typed.studies is not None
    assert typed.studies.refusal.reason is None and typed.studies.refusal.gaps
    assert typed.studies.style.lc_win_rates.by_rater()
    assert typed.studies.ppi is None  # a dataset has no sampling design


def test_it_reads_an_audit_with_ppi_and_a_confidence_sequence(db: None) -> None:
    audited = test_studies.build_audit(n_pairs=400, n_hard=40, n_random=40)

    typed = assert_round_trip(services.snapshot_compute(audit=audited.audit, n_boot=N_BOOT))

    assert typed.studies is not None and typed.studies.ppi is not None
    rater = f"j:{audited.built.judge.pk}"
    rows = typed.studies.ppi.by_model[rater].rows
    assert rows and all(row.n_labelled is not None for row in rows)
    assert typed.studies.sequential is not None
    assert typed.studies.sequential.judges[rater].path


def test_it_reads_an_empty_dataset(db: None) -> None:
    typed = assert_round_trip(services.snapshot_compute(dataset=DatasetFactory(), n_boot=N_BOOT))

    ceiling = typed.figures.S1.ceiling.percent_agreement
    assert ceiling is not None and not ceiling.defined and ceiling.reason
    assert typed.raters.judges == []


def test_it_reads_a_dataset_without_votes(db: None) -> None:
    dataset = DatasetFactory()
    judge = JudgeFactory(name="lonely judge")
    for k in range(6):
        pair = PairFactory(dataset=dataset)
        VerdictFactory(pair=pair, judge=judge, outcome="AB"[k % 2], outcome_ab="AB"[k % 2])

    typed = assert_round_trip(services.snapshot_compute(dataset=dataset, n_boot=N_BOOT))

    assert typed.raters.humans == [] and len(typed.raters.judges) == 1
    assert typed.consensus.dawid_skene is not None
    assert typed.consensus.dawid_skene.reason == "no human votes"


def test_it_refuses_a_snapshot_of_another_shape() -> None:
    with pytest.raises(ValidationError, match=r"figures\.S1\.ceiling\.percent_agreement\.n"):
        metrics_parse({"figures": {"S1": {"ceiling": {"percent_agreement": {"n": "many"}}}}})


def test_it_keeps_whole_numbers_and_fractions_apart() -> None:
    stored = {"value": 1, "n": 3, "ci": [0.5, 1.0], "details": {"a": True, "b": 2.0}}

    dumped = text(Result.model_validate(stored).as_json())

    assert dumped == '{"ci": [0.5, 1.0], "details": {"a": true, "b": 2.0}, "n": 3, "value": 1}'
