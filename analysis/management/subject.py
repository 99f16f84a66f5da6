"""What the `report` and `self_family` commands share: the subject, an audit or a dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.management.base import CommandError, CommandParser

from annotation.models import Audit
from corpus.models import Dataset


def add_subject_arguments(parser: CommandParser) -> None:
    """``--audit ID`` or ``--dataset NAME`` (one of them), and ``--format md|json``."""
    subject = parser.add_mutually_exclusive_group(required=True)
    subject.add_argument("--audit", type=int, metavar="ID", help="audit id")
    subject.add_argument("--dataset", metavar="NAME", help="dataset name")
    parser.add_argument("--format", choices=["json", "md"], default="md")


def subject_from_options(options: Mapping[str, Any]) -> tuple[Audit | None, Dataset | None]:
    """The audit or the dataset the options name; a CommandError when there is none."""
    if options["audit"] is not None:
        audit = Audit.objects.select_related("dataset").filter(pk=options["audit"]).first()
        if audit is None:
            raise CommandError(f"--audit {options['audit']}: no audit with that id")
        return audit, None
    dataset = Dataset.objects.filter(name=options["dataset"]).first()
    if dataset is None:
        known = ", ".join(Dataset.objects.values_list("name", flat=True)[:20])
        raise CommandError(
            f"--dataset {options['dataset']!r}: no such dataset"
            + (f" (known: {known})" if known else "")
        )
    return None, dataset
