"""`python manage.py export_hf --audit ID [--audit ID ...] --output FOLDER`

Writes the audits' calibration set as a Hugging Face `datasets` folder: the flat Parquet file
under `data/`, a README.md dataset card whose YAML header declares the features, and the
manifest. `datasets.load_dataset("FOLDER")` reads it. See analysis/hf_export.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.export import ExportError
from analysis.hf_export import DATA_FILE, export_hf_folder


class Command(BaseCommand):
    help = "Export audits' calibration set as a Hugging Face datasets folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--audit", type=int, action="append", required=True, metavar="ID", help="audit id"
        )
        parser.add_argument("--output", required=True, metavar="FOLDER")

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["output"])
        if (folder / DATA_FILE).exists():
            raise CommandError(f"--output: {folder / DATA_FILE} exists; choose a new folder")
        if not folder.parent.is_dir():
            raise CommandError(f"--output: no directory {folder.parent}")
        try:
            result = export_hf_folder(audit_ids=options["audit"], folder=folder)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{result['counts']['pairs']:,} pairs → {folder} "
            f"(README.md, {DATA_FILE}, manifest.json); load with "
            f'datasets.load_dataset("{folder}")'
        )
