"""Metric snapshots: every figure of an audit or a dataset, stored with the counts behind it.

- :func:`snapshot_compute` reads the votes (``analysis.selectors``), computes the figures
  with :mod:`analysis.metrics` and stores a :class:`~analysis.models.MetricSnapshot`. Older
  snapshots stay: they are the trend.
- :func:`snapshot_request` is what a write calls (after a label, an adjudication, an import):
  it asks for a fresh snapshot once the transaction commits and never makes the caller wait.

Coalescing (a burst of labels triggers one recomputation) is ``config.tasks.enqueue``'s
``coalesce`` key, one per subject:

1. On commit, the request sets a *pending* flag for the subject in the shared cache; only
   the request that creates it sends the task, with a short countdown
   (``TRIBUNAL_SNAPSHOT_DELAY``, default 0.2 s) that gathers the burst; the others return.
2. The task (:func:`snapshot_refresh`) takes a per-process lock for the subject, *then*
   releases the flag (``coalesce_release``), *then* reads. A label that commits before the
   release is in the data read after it; one that commits after finds no flag and sends the
   next run. No label is left out, and at most one run per subject waits behind the one
   computing.
3. Each snapshot stores a *watermark* (counts and latest ids of labels, adjudications,
   verdicts, votes). A run whose watermark equals the latest snapshot's stops there, so a
   duplicate task costs a few aggregate queries.

Where the work runs, and what a broker outage does, is ``config.tasks``'s business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from analysis import selectors
from analysis.figures import LEVEL, N_BOOT, figures_compute
from analysis.models import MetricSnapshot
from analysis.snapshot import counts_parse, metrics_parse

# What a write calls lives in analysis.snapshot_requests (no pandas, for the web process);
# the report views and the tests reach it here too, beside the task body.
from analysis.snapshot_requests import (  # noqa: F401
    SNAPSHOT_TASK,
    coalesce_key,
    running_key,
    snapshot_delay,
    snapshot_pending,
    snapshot_request,
    subject,
)
from analysis.studies import HUMAN, StudyInputs, studies_compute
from analysis.vote_table import MAJORITY, VoteTable
from annotation.models import Audit, AuditItem
from config.tasks import COALESCE_SECONDS, coalesce_release, enqueue
from corpus.models import Dataset, Pair
from judges import selectors as judges_selectors
from judges.models import Judge

log = logging.getLogger(__name__)

PENDING_SECONDS = 60  # the running flag of a computation outlives it by at most ten times this


def study_inputs(
    table: VoteTable, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> StudyInputs:
    """What :mod:`analysis.studies` needs beyond the vote table: the pairs' classes and
    features, the judges' criteria and, for an audit, its design and the whole dataset's
    verdicts (the population of the prediction-powered estimates)."""
    votes = table.votes[table.votes["kind"].isin(["majority", "judge"])]
    verdicts = votes[["item", "rater", "value"]].replace({"rater": {MAJORITY: HUMAN}})
    items = table.items["item"]
    judges = {rater: info.label for rater, info in table.judges.items()}
    judge_ids = [info.judge_id for info in table.judges.values()]
    if audit is not None:
        dataset_id = audit.dataset_id
        sampled = AuditItem.objects.sampled().filter(audit=audit)  # no gold items
        pairs = Pair.objects.filter(audit_items__in=sampled)
        pair_filter: dict[str, Any] = {"pair__audit_items__in": sampled}
    else:
        assert dataset is not None
        dataset_id = dataset.pk
        pairs = Pair.objects.filter(dataset=dataset)
        pair_filter = {"pair__dataset": dataset}
    details = selectors.pair_details(pairs, dataset_id)
    study = StudyInputs(
        verdicts=verdicts,
        judges=judges,
        details=details.frame[details.frame["pair_id"].isin(items)],
        length_unit=details.length_unit,
        classifier=details.classifier,
        prompts=table.items.set_index("item")["prompt"],
        criteria=selectors.judge_criteria(pair_filter, judge_ids),
        **_families(details.frame, table),
    )
    if audit is None:
        return study
    return replace(
        study,
        population=selectors.population_groups(dataset_id, judge_ids),
        design=selectors.audit_design(audit),
        labels=selectors.audit_label_sequence(audit),
    )


def _families(details: pd.DataFrame, table: VoteTable) -> dict[str, Any]:
    """Each model name's family and each judge's (``j:<id>``), a lead's choice or the
    default from the name (judges.selectors), for the self-family preference."""
    names = pd.unique(pd.concat([details["model_a"], details["model_b"]]).dropna())
    models = judges_selectors.model_families([str(n) for n in names if n])
    by_id = {info.judge_id: rater for rater, info in table.judges.items()}
    versions = list(Judge.objects.filter(pk__in=list(by_id)))
    judges = judges_selectors.judge_families(versions)
    return {
        "model_families": {name: row.family for name, row in models.items()},
        "judge_families": {by_id[pk]: row.family for pk, row in judges.items()},
    }


# --- snapshots -------------------------------------------------------------------------------


def watermark_for(*, audit: Audit | None = None, dataset: Dataset | None = None) -> dict[str, Any]:
    if audit is not None:
        return selectors.audit_watermark(audit)
    assert dataset is not None
    return selectors.dataset_watermark(dataset)


def snapshot_is_current(
    snapshot: MetricSnapshot | None,
    *,
    audit: Audit | None = None,
    dataset: Dataset | None = None,
) -> bool:
    """True when nothing the snapshot was computed from has changed since."""
    if snapshot is None:
        return False
    return bool(snapshot.typed_counts.watermark == watermark_for(audit=audit, dataset=dataset))


def default_n_boot() -> int:
    """Bootstrap resamples per figure: ``TRIBUNAL_SNAPSHOT_BOOT`` or 1,000."""
    return int(getattr(settings, "TRIBUNAL_SNAPSHOT_BOOT", N_BOOT))


def snapshot_compute(
    *,
    audit: Audit | None = None,
    dataset: Dataset | None = None,
    n_boot: int | None = None,
    level: float = LEVEL,
    seed: int = 0,
) -> MetricSnapshot:
    """Compute every figure for an audit or a dataset now and store a new snapshot.

    Runs outside any long transaction: the reads are plain SELECTs and the one write is the
    snapshot row. ``n_boot`` defaults to ``TRIBUNAL_SNAPSHOT_BOOT`` (1,000).
    """
    subject(audit, dataset)
    started = time.perf_counter()
    if n_boot is None:
        n_boot = default_n_boot()
    watermark = watermark_for(audit=audit, dataset=dataset)  # before the data: see selectors
    table = selectors.audit_votes(audit) if audit is not None else None
    if table is None:
        assert dataset is not None
        table = selectors.dataset_votes(dataset)
    metrics = figures_compute(table, n_boot=n_boot, level=level, seed=seed)
    study = study_inputs(table, audit=audit, dataset=dataset)
    metrics["studies"] = studies_compute(study, n_boot=n_boot, level=level, seed=seed)
    label_count = int(table.counts["human_votes"])
    counts = {**table.counts, "watermark": watermark}
    # The shape every reader relies on (analysis.snapshot): a writer that strays from it
    # fails here, not on a report page later.
    metrics_parse(metrics)
    counts_parse(counts)
    return MetricSnapshot.objects.create(
        audit=audit,
        dataset=dataset,
        label_count=label_count,
        counts=counts,
        metrics=metrics,
        compute_ms=round((time.perf_counter() - started) * 1000),
    )


# --- coalesced requests ----------------------------------------------------------------------


_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _subject_lock(kind: str, pk: int) -> Iterator[None]:
    """One computation per subject at a time in this process; the next one waits its turn."""
    with _locks_guard:
        lock = _locks.setdefault((kind, pk), threading.Lock())
    with lock:
        yield


def snapshot_interval() -> float:
    """Least seconds between the end of a subject's snapshot and the start of its next one
    (``TRIBUNAL_SNAPSHOT_INTERVAL``); 0 when tasks run inline (a countdown means nothing there).
    At most half the pending flag's life, so the flag outlives the wait."""
    if getattr(settings, "TRIBUNAL_TASKS_INLINE", False):
        return 0.0
    interval = float(getattr(settings, "TRIBUNAL_SNAPSHOT_INTERVAL", 0.0))
    return min(max(0.0, interval), COALESCE_SECONDS / 2)


def _too_soon(latest: MetricSnapshot | None) -> float:
    """Seconds this run must still wait so that runs of a subject keep the interval apart."""
    interval = snapshot_interval()
    if latest is None or interval <= 0:
        return 0.0
    since = (timezone.now() - latest.created_at).total_seconds()
    return max(0.0, interval - since) if since >= 0 else 0.0


def snapshot_refresh(*, kind: str, pk: int, force: bool = False) -> MetricSnapshot | None:
    """The task body: recompute unless the latest snapshot is current. Idempotent.

    Lock, then clear the pending flag, then read (module docstring). Returns the new
    snapshot, or None when nothing changed, the subject no longer exists, or the subject's
    last snapshot ended less than ``snapshot_interval()`` ago: then the run is sent again for
    when the interval ends, and the pending flag stays up meanwhile, so the labels of a busy
    audit cost one snapshot per interval whatever their rate.
    """
    with _subject_lock(kind, pk):
        audit = Audit.objects.filter(pk=pk).first() if kind == "audit" else None
        dataset = Dataset.objects.filter(pk=pk).first() if kind == "dataset" else None
        if audit is None and dataset is None:
            coalesce_release(coalesce_key(kind, pk))
            return None
        # The stored figures are not needed to decide, only when and from what they were made.
        latest = (
            selectors.snapshots_for(audit=audit, dataset=dataset)
            .order_by("-created_at", "-pk")
            .only("created_at", "counts")
            .first()
        )
        wait = 0.0 if force else _too_soon(latest)
        if wait > 0:
            # Keep the pending flag up, so the labels of the wait still coalesce on this run,
            # and come back when the interval is over.
            enqueue(SNAPSHOT_TASK, kind=kind, pk=pk, force=False, countdown=wait)
            return None
        coalesce_release(coalesce_key(kind, pk))
        if not force and snapshot_is_current(latest, audit=audit, dataset=dataset):
            return None
        try:
            cache.set(running_key(kind, pk), True, timeout=PENDING_SECONDS * 10)
        except Exception:
            log.exception("snapshot: could not set the running flag")
        try:
            return snapshot_compute(audit=audit, dataset=dataset)
        finally:
            try:
                cache.delete(running_key(kind, pk))
            except Exception:
                log.exception("snapshot: could not clear the running flag")
