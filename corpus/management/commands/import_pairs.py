"""`manage.py import_pairs --format FORMAT [--dataset NAME] FILE...`"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.importers.formats import FORMATS
from corpus.importers.services import (
    ImportRequestError,
    SideFiles,
    dataset_for_import,
    format_get,
    import_files,
)
from corpus.models import Dataset, ImportJob

COUNT_LABELS = (
    ("pairs_created", "new pairs"),
    ("pairs_matched", "existing pairs joined"),
    ("votes_created", "new votes"),
    ("votes_duplicate", "duplicate votes skipped"),
    ("verdicts_created", "new verdicts"),
    ("verdicts_duplicate", "duplicate verdicts skipped"),
    ("failed_parses", "failed parses"),
    ("judges_created", "new judges"),
)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


class Command(BaseCommand):
    help = (
        "Import prompt/response pairs with their human votes and judge verdicts. Each file is "
        "all-or-nothing; rows already in the dataset are skipped, so importing a file twice "
        "adds nothing. Files named together, or imported later into the same --dataset, join "
        "on the pair key."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        width = max(len(name) for name in FORMATS)
        lines = [f"  {name:<{width}}  {spec.summary}" for name, spec in FORMATS.items()]
        kwargs["epilog"] = "formats:\n" + "\n".join(lines) + "\n\nSee docs/import-formats.md."
        kwargs["formatter_class"] = argparse.RawDescriptionHelpFormatter
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=list(FORMATS), dest="fmt")
        parser.add_argument(
            "--dataset", help="dataset name (created if new); default: the format's name"
        )
        parser.add_argument(
            "--answers",
            action="append",
            default=[],
            metavar="FILE",
            help="mt-bench, arena-hard: a model answers file (repeat for several models)",
        )
        parser.add_argument(
            "--questions",
            action="append",
            default=[],
            metavar="FILE",
            help="mt-bench, arena-hard: the questions file",
        )
        parser.add_argument(
            "--baseline",
            default="",
            metavar="MODEL",
            help="arena-hard: the baseline model, shown as A in game 1, for rows that do not "
            "name it (default gpt-4-0314)",
        )
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt: str = options["fmt"]
        verbosity: int = options["verbosity"]
        try:
            spec = format_get(fmt)
            name = options["dataset"] or spec.default_dataset
            is_new = not Dataset.objects.filter(name=name).exists()
            dataset = dataset_for_import(name=name)
        except ImportRequestError as exc:
            raise CommandError(str(exc)) from exc
        side = SideFiles(
            answers=[(Path(p), Path(p).name) for p in options["answers"]],
            questions=[(Path(p), Path(p).name) for p in options["questions"]],
            baseline=options["baseline"],
        )
        started = [time.monotonic()]

        def on_progress(rows: int, total: int) -> None:
            if verbosity < 1:
                return
            elapsed = max(time.monotonic() - started[0], 1e-6)
            self.stderr.write(
                f"  … {rows:,} of ~{total:,} rows ({rows / elapsed:,.0f} rows/s)", ending="\r"
            )

        jobs = import_files(
            dataset=dataset,
            fmt=fmt,
            paths=options["files"],
            side_files=side,
            on_progress=on_progress,
        )
        refused = [job for job in jobs if job.status != ImportJob.Status.DONE]
        for job in jobs:
            self._summary(job, dataset.name)
        if refused and is_new and len(refused) == len(jobs):
            # Nothing was imported into a dataset this command created: leave no trace of it.
            dataset.delete()
        if refused:
            names = ", ".join(job.filename for job in refused)
            raise CommandError(f"{len(refused)} of {len(jobs)} files refused: {names}")

    def _summary(self, job: ImportJob, dataset: str) -> None:
        counts = job.counts
        rows = counts.get("rows", 0)
        seconds = counts.get("seconds", 0.0) or 1e-6
        if job.status != ImportJob.Status.DONE:
            self.stdout.write(
                self.style.ERROR(
                    f"{job.filename}: refused, nothing written "
                    f"({_plural(counts.get('errors', len(job.errors)), 'error')}):"
                )
            )
            for error in job.errors:
                self.stdout.write(f"  {error}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"{job.filename} → {dataset}: {rows:,} rows in {seconds:.1f} s "
                f"({rows / seconds:,.0f} rows/s)"
            )
        )
        parts = [f"{counts.get(key, 0):,} {label}" for key, label in COUNT_LABELS]
        notes = {
            key: value
            for key, value in counts.items()
            if key not in dict(COUNT_LABELS)
            and key not in ("rows", "seconds", "prompts_created", "responses_created")
            and value
        }
        self.stdout.write("  " + " · ".join(parts))
        if notes:
            self.stdout.write(
                "  " + " · ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in notes.items())
            )
