"""Refusal classes (and text features) for a CSV file or for a dataset's responses.

    python manage.py classify_responses --input answers.csv --text-column response \\
        --output answers-classified.csv
    python manage.py classify_responses --dataset pandalm-test

Both modes use the installation's classifier: the user's transformers model when
REFUSAL_MODEL_DIR and REFUSAL_LABEL_MAP are set, else the offline default.
"""

from __future__ import annotations

from argparse import RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)

from corpus.models import Dataset
from judges import classification
from judges.management.commands.judge_create import _error_text
from judges.models import ClassificationRun
from judges.refusal import CLASSES, CsvInputError, RefusalClassifier, classify_csv

DESCRIPTION = """\
Give each response a refusal class (normal, ethical_refusal, ethical_disclaimer,
technical_refusal, technical_disclaimer) with the installation's classifier: your own
transformers model when REFUSAL_MODEL_DIR and REFUSAL_LABEL_MAP are set, else the offline
default (MiniLM embeddings + a trained head). Nothing is downloaded.

Two modes:

  CSV file   --input FILE.csv --text-column NAME --output OUT.csv
             Copies FILE.csv to OUT.csv with two columns appended, refusal_class and
             refusal_score (the probability of that class). Rows with a blank text get both
             cells empty. Nothing touches the database. Prints the count per class.

  dataset    --dataset NAME
             Classifies and featurises (lengths, markdown counts, prompt similarity) every
             response of the dataset that has no row yet for the current classifier and
             feature extractor, stores ResponseClassification and ResponseFeatures rows,
             and records the pass as a classification run (also shown on the dataset's page).
             A rerun only computes what is missing. Prints progress and the count per class.
"""


class _HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, with the description's line breaks kept."""


def _class_lines(counts: dict[str, int]) -> list[str]:
    total = sum(counts.values())
    width = max(len(name) for name in CLASSES)
    lines = []
    for name in CLASSES:
        n = int(counts.get(name, 0))
        share = f"{100 * n / total:5.1f}%" if total else "    -"
        lines.append(f"  {name:<{width}}  {n:>8,}  {share}")
    return lines


class Command(BaseCommand):
    help = DESCRIPTION

    def add_arguments(self, parser: CommandParser) -> None:
        parser.formatter_class = _HelpFormatter
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--input", metavar="FILE.csv", help="CSV mode: the file to classify")
        mode.add_argument("--dataset", metavar="NAME", help="dataset mode: the dataset's name")
        parser.add_argument(
            "--text-column", metavar="NAME", help="CSV mode: the column holding the responses"
        )
        parser.add_argument(
            "--output",
            metavar="OUT.csv",
            help="CSV mode: where to write the copy with the two columns (may be FILE.csv)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=classification.BATCH_SIZE,
            metavar="N",
            help=f"dataset mode: responses per batch and transaction "
            f"(default {classification.BATCH_SIZE})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size {options['batch_size']}: must be at least 1")
        if options["input"] is not None:
            self._classify_csv(options)
        else:
            if options["text_column"] or options["output"]:
                raise CommandError("--text-column and --output belong to the CSV mode (--input)")
            self._classify_dataset(options["dataset"], options["batch_size"])

    def _classifier(self) -> RefusalClassifier:
        try:
            return classification.refusal_classifier_configured()
        except classification.RefusalClassifierConfigError as exc:
            raise CommandError(f"the refusal classifier is not usable: {exc}") from None

    def _classify_csv(self, options: dict[str, Any]) -> None:
        missing = [f"--{n}" for n in ("text-column", "output") if not options[n.replace("-", "_")]]
        if missing:
            raise CommandError(f"--input needs {' and '.join(missing)}")
        source = Path(options["input"])
        if not source.is_file():  # before loading a model: a typo fails at once
            raise CommandError(f"{source}: no such file")
        try:
            report = classify_csv(
                source, options["text_column"], options["output"], classifier=self._classifier()
            )
        except CsvInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{report.output_path}: {report.classified:,} of {report.rows:,} rows classified "
            f"(classifier {report.classifier[:12]})"
        )
        for line in _class_lines(report.counts):
            self.stdout.write(line)
        if report.blank_lines:
            shown = ", ".join(str(n) for n in report.blank_lines[:20])
            more = " ..." if len(report.blank_lines) > 20 else ""
            self.stdout.write(
                f"{len(report.blank_lines):,} rows with no text were left unclassified "
                f"(lines {shown}{more})"
            )

    def _classify_dataset(self, name: str, batch_size: int) -> None:
        dataset = Dataset.objects.filter(name=name).first()
        if dataset is None:
            raise CommandError(f"no dataset named {name!r}")
        try:
            run, created = classification.classification_run_create(dataset=dataset)
        except ValidationError as exc:
            raise CommandError(_error_text(exc)) from None
        except classification.RefusalClassifierConfigError as exc:
            raise CommandError(f"the refusal classifier is not usable: {exc}") from None
        if not created:
            raise CommandError(
                f"run {run.pk} is already classifying {dataset} ({run.status}); wait for it "
                f"or follow it at /judges/classifications/{run.pk}/"
            )
        self.stdout.write(f"run {run.pk}: classifying the responses of {dataset}")

        def progress(snapshot: ClassificationRun) -> None:
            if snapshot.done == 0:
                self.stdout.write(
                    f"  classifier {snapshot.classifier[:12]}, features {snapshot.extractor[:12]}: "
                    f"{snapshot.total:,} responses to do, "
                    f"{snapshot.counts.get('already_done', 0):,} already done"
                )
            else:
                self.stdout.write(f"  {snapshot.done:,}/{snapshot.total:,} responses")

        run = classification.classification_run_execute(
            run.pk, batch_size=batch_size, on_progress=progress
        )
        if run.status == ClassificationRun.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}")
        c = run.counts
        self.stdout.write(
            f"done: {c.get('classified', 0):,} classifications and {c.get('featurised', 0):,} "
            f"feature rows added; {c.get('without_text', 0):,} responses have no text"
        )
        self.stdout.write(f"responses per class in {dataset}:")
        for line in _class_lines(c.get("classes") or {}):
            self.stdout.write(line)
