"""`python manage.py model_card --audit N [--judge NAME|ID] [--format md|json] [--output PATH]`

Prints (or writes) the model-card section of each judge version the audit's latest snapshot
has figures of: what was audited, agreement against the human ceiling, response classes per
model, the refusal gap, position and length bias, and the gate. See analysis/model_card.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.export import ExportError
from analysis.model_card import judge_named, model_card, model_card_markdown
from annotation.models import Audit


class Command(BaseCommand):
    help = "Print the model-card section (Markdown or JSON) of an audit's judge versions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--audit", type=int, required=True, metavar="N")
        parser.add_argument("--judge", metavar="NAME|ID", help="default: every judge version")
        parser.add_argument("--format", choices=("md", "json"), default="md")
        parser.add_argument("--output", metavar="PATH", help="default: standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        audit = Audit.objects.select_related("dataset").filter(pk=options["audit"]).first()
        if audit is None:
            raise CommandError(f"--audit: no audit with id {options['audit']}")
        try:
            judge = judge_named(audit, options["judge"]) if options["judge"] else None
            cards = model_card(audit, judge=judge)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        if options["format"] == "json":
            text = json.dumps(cards, indent=2, ensure_ascii=False) + "\n"
        else:
            text = model_card_markdown(cards)
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"{len(cards)} judge version(s) → {options['output']}")
        else:
            self.stdout.write(text, ending="")
