"""`python manage.py self_family (--audit ID | --dataset NAME) [--format md|json]`

Prints the self-family preference of every judge (METHODS.md section 9): per family some
judge belongs to, each judge's win rate for that family's responses next to the people's on
the same pairs, the difference with its paired bootstrap interval, and the stacked LPM's
same_family x judge coefficient. Reads the latest snapshot when nothing changed since it was
computed, otherwise computes one (as `report` does).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import plots, selectors, services
from analysis.management.subject import add_subject_arguments, subject_from_options
from analysis.snapshot import SelfFamilyStudy


class Command(BaseCommand):
    help = "Print each judge's self-family preference (judge minus people, same pairs)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        audit, dataset = subject_from_options(options)
        snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
        if not services.snapshot_is_current(snapshot, audit=audit, dataset=dataset):
            self.stderr.write("computing a new snapshot…")
            snapshot = services.snapshot_compute(audit=audit, dataset=dataset)
        assert snapshot is not None
        studies = snapshot.typed.studies
        study = studies.self_family if studies is not None else None
        if study is None:
            raise CommandError("this snapshot has no self-family figures")
        if options["format"] == "json":
            self.stdout.write(json.dumps(study.as_json(), indent=2, ensure_ascii=False))
            return
        self.stdout.write(markdown(study))


def markdown(study: SelfFamilyStudy) -> str:
    names = study.raters
    lines = [
        "# Self-family preference",
        "",
        "Judge families: "
        + ", ".join(
            f"{names.get(j, j)} → {f or '(none)'}" for j, f in study.judge_families.items()
        ),
    ]
    if study.unknown_models:
        lines.append("Models without a family (left out): " + ", ".join(study.unknown_models))
    if study.reason:
        lines += ["", f"Undefined: {study.reason}"]
    lines += [
        "",
        "| family | judge | own | pairs | judge win | people win | judge - people [95% CI] |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in study.rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    row.family,
                    names.get(row.judge, row.judge),
                    "yes" if row.own else "",
                    str(row.pairs),
                    plots.result_text(row.judge_win),
                    plots.result_text(row.human_win),
                    plots.result_text(row.difference),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "Stacked LPM, same_family x judge (ties dropped, net of length, clustered by pair):",
        "",
        "| judge | family | pairs | people | judge | interaction [95% CI] |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for judge, model in study.lpm.items():
        if model.interaction is None:
            lines.append(f"| {names.get(judge, judge)} | — | | | | {model.reason} |")
            continue
        lines.append(
            f"| {names.get(judge, judge)} | {model.family} | {model.pairs} | "
            f"{plots.result_text(model.human)} | {plots.result_text(model.judge)} | "
            f"{plots.result_text(model.interaction)} |"
        )
    return "\n".join(lines) + "\n"
