"""`python manage.py report (--audit ID | --dataset NAME) --format json|md`

Prints the figures of an audit or a dataset: the latest snapshot when nothing changed since
it was computed, otherwise a fresh one (computed here, synchronously, and stored). JSON is the
stored snapshot; Markdown is the report model (``analysis.report_model``, which the pages and
the API show too) through ``templates/analysis/report.md``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.loader import render_to_string

from analysis import selectors, services
from analysis.management.subject import add_subject_arguments, subject_from_options
from analysis.models import MetricSnapshot
from analysis.report_model import report_build
from analysis.serializers import SnapshotOutput


class Command(BaseCommand):
    help = "Print an audit's or a dataset's agreement figures as JSON or Markdown."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument(
            "--recompute", action="store_true", help="compute a new snapshot even if current"
        )
        parser.add_argument(
            "--n-boot",
            type=int,
            default=None,
            metavar="N",
            help="bootstrap resamples for a new snapshot (default 1,000)",
        )
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")

    def handle(self, *args: Any, **options: Any) -> None:
        n_boot = options["n_boot"]
        if n_boot is not None and n_boot < 0:
            raise CommandError(f"--n-boot must be 0 or more, got {n_boot}")
        audit, dataset = subject_from_options(options)
        if n_boot is None:
            n_boot = services.default_n_boot()
        snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
        current = services.snapshot_is_current(snapshot, audit=audit, dataset=dataset)
        same_settings = snapshot is not None and _settings(snapshot) == (n_boot, options["seed"])
        if options["recompute"] or not current or not same_settings:
            self.stderr.write("computing a new snapshot…")
            snapshot = services.snapshot_compute(
                audit=audit, dataset=dataset, n_boot=n_boot, seed=options["seed"]
            )
        assert snapshot is not None
        if options["format"] == "json":
            self.stdout.write(json.dumps(snapshot_json(snapshot), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(markdown_report(snapshot))


def _settings(snapshot: MetricSnapshot) -> tuple[Any, Any]:
    settings = snapshot.typed.settings
    given = settings.model_fields_set
    return (
        settings.n_boot if "n_boot" in given else None,
        settings.seed if "seed" in given else None,
    )


def snapshot_json(snapshot: MetricSnapshot) -> dict[str, Any]:
    data = dict(SnapshotOutput(snapshot).data)
    return json.loads(json.dumps(data, default=str))


def markdown_report(snapshot: MetricSnapshot) -> str:
    """The report model (``analysis.report_model``) as Markdown, through
    ``templates/analysis/report.md``."""
    text = render_to_string("analysis/report.md", {"report": report_build(snapshot)})
    return text.rstrip() + "\n"
