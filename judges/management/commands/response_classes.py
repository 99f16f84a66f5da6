"""Write a dataset's refusal classes and features to a file, or store them from one.

    python manage.py response_classes export pandalm judges/data/classes/pandalm.jsonl.gz
    python manage.py response_classes load pandalm judges/data/classes/pandalm.jsonl.gz

A file is loaded only where the installation's classifier and feature extractor have the
fingerprints the file was written with (`judges.class_files`); `seed_demo` loads the files in
`judges/data/classes/`, which `export` regenerates after a classify run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from corpus.models import Dataset
from judges.class_files import ClassFileError, classes_load, classes_write


class Command(BaseCommand):
    help = "Write a dataset's response classes and features to a file, or store them from one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=("export", "load"))
        parser.add_argument("dataset", help="the dataset's name")
        parser.add_argument("file", type=Path, help="a .jsonl.gz file")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None:
            names = ", ".join(Dataset.objects.order_by("name").values_list("name", flat=True))
            raise CommandError(f"no dataset {options['dataset']!r} (datasets: {names or 'none'})")
        path: Path = options["file"]
        if options["action"] == "export":
            written = classes_write(dataset=dataset, path=path)
            self.stdout.write(f"wrote {written:,} responses of {dataset.name} to {path}")
            return
        try:
            loaded = classes_load(dataset=dataset, path=path)
        except ClassFileError as exc:
            raise CommandError(str(exc)) from None
        if loaded.refused:
            raise CommandError(loaded.refused)
        self.stdout.write(
            f"stored the classes and features of {loaded.stored:,} responses of {dataset.name} "
            f"({loaded.matched:,} lines of {path.name} matched)"
        )
