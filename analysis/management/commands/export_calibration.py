"""`python manage.py export_calibration --audit ID [--audit ID ...] --format jsonl|csv|parquet
--output PATH [--layout flat|generic]`

Writes the audits' calibration set (one row per pair) to PATH and its manifest to
`PATH.manifest.json`: flat by default (one plain value per cell, for analysis), or Tribunal's
nested `generic` import schema, which imports back with `import_pairs --format generic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.export import (
    FORMATS,
    LAYOUT_HELP,
    LAYOUTS,
    ExportError,
    export_to_file,
    manifest_path,
)


class Command(BaseCommand):
    help = "Export audits' labels and verdicts as a calibration set (JSONL, CSV or Parquet)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--audit", type=int, action="append", required=True, metavar="ID", help="audit id"
        )
        parser.add_argument("--format", choices=FORMATS, default=None)
        parser.add_argument("--output", required=True, metavar="PATH", help="the data file")
        parser.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0], help=LAYOUT_HELP)

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["output"])
        fmt = options["format"] or path.suffix.lstrip(".").lower()
        if fmt not in FORMATS:
            raise CommandError(
                f"--format: give one of {', '.join(FORMATS)} (or an output file ending in one)"
            )
        if not path.parent.is_dir():
            raise CommandError(f"--output: no directory {path.parent}")
        try:
            result = export_to_file(
                audit_ids=options["audit"], fmt=fmt, path=path, layout=options["layout"]
            )
        except ExportError as exc:
            path.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        counts = result["counts"]
        self.stdout.write(
            f"{counts['pairs']:,} pairs · {counts['labels']:,} labels · "
            f"{counts['verdicts']:,} verdicts → {path} (manifest {manifest_path(path)})"
        )
