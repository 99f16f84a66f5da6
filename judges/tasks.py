"""Celery tasks for judges: each takes an id, re-fetches, and calls one service. The services
enqueue them by name (`config.tasks.enqueue`), so only this module imports both."""

from __future__ import annotations

from celery import shared_task

from config.leases import sweep_register
from judges import classification, services


@shared_task(name="judges.judge_run", acks_late=True)
def judge_run(run_id: int) -> str:
    """Execute a judge run. Idempotent: a finished run is left as it is, and a redelivered
    run resumes from the verdicts already stored (each is a cache hit)."""
    return services.judge_run_execute(run_id).status


@shared_task(name="judges.classification_run", acks_late=True)
def classification_run(run_id: int) -> str:
    """Classify and featurise a dataset's responses. Idempotent: a finished or failed run is
    left as it is, and a redelivered run computes only the rows still missing."""
    return classification.classification_run_execute(run_id).status


# Workers resume the runs whose worker died (config.leases).
sweep_register("judges.judge_runs", services.judge_runs_recover)
sweep_register("judges.classification_runs", classification.classification_runs_recover)
