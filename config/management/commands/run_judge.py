"""Run a judge version over a dataset or an audit, printing progress and a summary.

    python manage.py run_judge --judge gpt4o-judge:2 --dataset pandalm-test --limit 50
    python manage.py run_judge --judge gpt4o-judge --audit 3    # the audit's items, in order

A project-level command: judges run over pairs, and only the annotation app knows which pairs
an audit holds (`annotation.selectors.audit_run_scope`), so the one command that takes both
lives above the two apps.

Runs in this process (stored verdicts are cache hits, so a rerun only calls for what is
missing). ``--background`` hands the run to the task queue instead and prints its id.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Audit
from annotation.selectors import audit_run_scope
from corpus.models import Dataset
from judges import selectors, services
from judges.management.commands.judge_create import _error_text
from judges.models import JudgeRun


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def summary_lines(run: JudgeRun) -> list[str]:
    """What a run did, in plain lines (also used by the docs' examples)."""
    c = run.counts
    failed = int(c.get("failed_parses", 0))
    answered = int(c.get("parsed", 0)) + failed
    latency = c.get("mean_latency_s")
    lines = [
        f"status: {run.status}",
        f"pairs: {run.done} of {run.total}",
        f"calls: {c.get('calls', 0)} ({c.get('cache_hits', 0)} orders from the cache, "
        f"{c.get('http_requests', 0)} HTTP requests incl. retries)",
        f"parsed: {c.get('parsed', 0)} of {answered} answered orders",
        f"failed parses: {failed} ({_percent(failed, answered)})",
        f"call errors: {c.get('errors', 0)}"
        + (" (retried on the next run)" if c.get("errors") else ""),
    ]
    if latency is not None:
        lines.append(f"mean latency: {latency:.2f} s per call")
    if run.error:
        lines.append(f"error: {run.error}")
    return lines


class Command(BaseCommand):
    help = "Run a judge version over a dataset or an audit (both orders per its swap policy)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--judge", required=True, help="NAME or NAME:VERSION")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--dataset", help="dataset name")
        target.add_argument("--audit", type=int, help="audit id")
        parser.add_argument("--limit", type=int, help="judge the first N pairs only")
        parser.add_argument(
            "--background", action="store_true", help="enqueue the run instead of running here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            judge = selectors.judge_by_spec(options["judge"])
        except selectors.JudgeNotFound as exc:
            raise CommandError(str(exc)) from None
        if options["dataset"] is not None:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset named {options['dataset']!r}")
            scope: dict[str, Any] = {"dataset": dataset}
        else:
            audit = Audit.objects.select_related("dataset").filter(pk=options["audit"]).first()
            if audit is None:
                raise CommandError(f"no audit with id {options['audit']}")
            scope = audit_run_scope(audit)
        create = services.judge_run_start if options["background"] else services.judge_run_create
        try:
            run = create(judge=judge, limit=options["limit"], **scope)
        except ValidationError as exc:
            raise CommandError(_error_text(exc)) from None
        orders = "both orders" if judge.swap_policy == "both" else "one order"
        self.stdout.write(f"run {run.pk}: {judge} on {run.target}, {run.total} pairs, {orders}")
        if options["background"]:
            self.stdout.write(f"enqueued; follow it at /judges/runs/{run.pk}/")
            return
        last = [0.0]

        def progress(snapshot: JudgeRun) -> None:
            now = time.monotonic()
            if now - last[0] < 2.0 and snapshot.done < snapshot.total:
                return
            last[0] = now
            c = snapshot.counts
            self.stdout.write(
                f"  {snapshot.done}/{snapshot.total} pairs · calls {c.get('calls', 0)} · "
                f"cache hits {c.get('cache_hits', 0)} · failed parses "
                f"{c.get('failed_parses', 0)} · errors {c.get('errors', 0)}"
            )

        run = services.judge_run_execute(run.pk, on_progress=progress)
        for line in summary_lines(run):
            self.stdout.write(line)
        if run.status == JudgeRun.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}")
