"""`python manage.py export_flags --dataset NAME --output PATH [--margin X] [--judge ID ...]`

Writes the pairs whose judge verdict should not be used without a person (ethics refusal on
either side, swap-inconsistent, low margin, judges disagree), with the reasons and the human
label where one exists, keyed by source key, to PATH (JSON lines or Parquet, from the suffix or
--format) and the manifest to `PATH.manifest.json`. See analysis/flags.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.export import ExportError
from analysis.flags import FORMATS, REASONS, flag_rules, flags_to_file
from corpus.models import Dataset


class Command(BaseCommand):
    help = "Export flags for training pipelines: pairs whose judge verdict needs a person."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, metavar="NAME")
        parser.add_argument("--output", required=True, metavar="PATH")
        parser.add_argument("--format", choices=FORMATS, default=None)
        parser.add_argument(
            "--margin",
            type=float,
            default=None,
            help="low margin: |margin| below this (default: the latest audit's threshold)",
        )
        parser.add_argument(
            "--judge", type=int, action="append", default=[], metavar="ID", help="repeatable"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["output"])
        fmt = options["format"] or path.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise CommandError(f"--format: give one of {', '.join(FORMATS)}")
        if not path.parent.is_dir():
            raise CommandError(f"--output: no directory {path.parent}")
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"--dataset: no dataset named {options['dataset']!r}")
        try:
            rules = flag_rules(dataset, judge_ids=options["judge"], margin=options["margin"])
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        result = flags_to_file(rules, fmt=fmt, path=path)
        counts = " · ".join(f"{reason} {result['reasons'][reason]:,}" for reason in REASONS)
        self.stdout.write(
            f"{result['flagged']:,} of {result['pairs']:,} pairs flagged ({counts}) → {path}"
        )
