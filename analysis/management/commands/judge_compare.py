"""`python manage.py judge_compare V1 V2 (--dataset NAME | --audit ID) [--format md|json]`

Compares two judges (or two versions of one judge) on the same pairs: V1 is the baseline, V2
the candidate. Each is a judge id, its name as pages show it (``name vN``), its bare name
(the newest version) or a unique beginning of its name. Prints the flip rate, the shifted
slices (first), the flip matrix, agreement with people for both and the paired deltas with
McNemar's test, agreement in both orders, and flip rates by slice; ``--format json`` prints
the JSON the page and ``GET /api/.../compare/`` give. A usage error exits 3.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import compare
from analysis.snapshot import Comparison, Result, SliceTest
from annotation.models import Audit
from corpus.models import Dataset

USAGE_ERROR = 3
KIND_NAMES = {
    "percent_agreement": "agreement",
    "cohen_kappa": "Cohen's kappa",
    "scott_pi": "Scott's pi",
    "gwet_ac": "Gwet's AC1",
}


class Command(BaseCommand):
    help = (
        "Compare two judges (or two versions of one) on the same pairs: flip rate, shifted "
        "slices, agreement deltas."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("first", metavar="V1", help="baseline judge: id, 'name vN' or name")
        parser.add_argument("second", metavar="V2", help="candidate judge, as V1")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--dataset", metavar="NAME", help="compare on a dataset's pairs")
        where.add_argument("--audit", type=int, metavar="ID", help="compare on an audit's items")
        parser.add_argument("--format", choices=["md", "json"], default="md")
        parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--alpha", type=float, default=0.05, help="FDR level for shifts")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = audit = None
        if options["audit"] is not None:
            audit = Audit.objects.select_related("dataset").filter(pk=options["audit"]).first()
            if audit is None:
                raise CommandError(
                    f"--audit {options['audit']}: no audit with that id", returncode=USAGE_ERROR
                )
        else:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(
                    f"--dataset {options['dataset']!r}: no dataset with that name",
                    returncode=USAGE_ERROR,
                )
        judges = compare.compare_judges(dataset=dataset, audit=audit)
        where = compare.subject_name(dataset=dataset, audit=audit)
        try:
            first = compare.judge_named(judges, options["first"], where)
            second = compare.judge_named(judges, options["second"], where)
            data = compare.judges_compare(
                first=first,
                second=second,
                dataset=dataset,
                audit=audit,
                n_boot=options["n_boot"],
                seed=options["seed"],
                alpha=options["alpha"],
            )
        except (compare.JudgeNotFound, ValueError) as exc:
            raise CommandError(str(exc), returncode=USAGE_ERROR) from None
        if options["format"] == "json":
            self.stdout.write(json.dumps(data.as_json(), indent=2))
        else:
            self.stdout.write(markdown(data))


def _number(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _result(result: Result | None, digits: int = 3) -> str:
    if result is None or result.value is None:
        return f"undefined ({(result.reason if result else None) or 'not computed'})"
    text = _number(result.value, digits)
    if result.ci:
        text += f" [{_number(result.ci[0], digits)}, {_number(result.ci[1], digits)}]"
    return text


def markdown(data: Comparison) -> str:
    """The comparison as Markdown: summary, shifted slices, flip matrix, deltas, slices."""
    figures = data.figures
    settings = figures.settings
    first, second = data.first.label, data.second.label
    level = round(100 * settings.level)
    lines = [
        f"# {second} against {first}",
        "",
        f"{data.subject.kind} {data.subject.name}: {data.pairs_compared} pairs with both "
        f"verdicts, {data.pairs_labelled} of them labelled by people "
        f"({settings.n_boot} cluster-bootstrap resamples over prompts, "
        f"{level}% intervals; shifts at FDR {settings.alpha:g}).",
        "",
        f"- flip rate: {_result(figures.flip_rate)} "
        f"({figures.flip_rate.details.get('flips', 0)} flips)",
    ]
    if change := compare.change_sentence(data):
        lines.append(f"- {change}")
    agreement = figures.agreement
    if agreement:
        for kind, entry in agreement.kinds.items():
            lines.append(
                f"- {KIND_NAMES.get(kind, kind)} with people: {_result(entry.first)} -> "
                f"{_result(entry.second)}, delta {_result(entry.delta)}"
            )
        test = agreement.mcnemar
        lines.append(
            f"- McNemar: b = {test.b} (only {first} right), c = {test.c} "
            f"(only {second} right), p = {test.p_value:.3g}" + (" (exact)" if test.exact else "")
        )
    shifted = [row for row in figures.slices if row.shifted]
    lines += ["", f"## Shifted slices ({len(shifted)})", ""]
    if not shifted:
        lines.append("No slice moved more than chance allows.")
    else:
        lines += _slice_table(shifted, data)
    labels = figures.flip_matrix.labels
    lines += [
        "",
        f"## Flip matrix (rows: {first}, columns: {second})",
        "",
        "| | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for label, row in zip(labels, figures.flip_matrix.counts, strict=True):
        lines.append(f"| {label} | " + " | ".join(str(c) for c in row) + " |")
    orders = {key: getattr(figures.orders, key) for key in ("first", "second")}
    if any(entry and entry.agreement for entry in orders.values()):
        lines += [
            "",
            "## Agreement with people by presentation order",
            "",
            "| judge | both orders | original order | swapped order | position consistency |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, entry in orders.items():
            label = data.judge(key).label
            if not entry or not entry.agreement:
                continue
            agree = entry.agreement
            if agree.n == 0:  # imported verdicts often carry one order only
                lines.append(f"| {label} | — | — | — | — (not judged in both orders) |")
                continue
            lines.append(
                f"| {label} | {_result(agree.both_orders)} | {_result(agree.original_order)}"
                f" | {_result(agree.swapped_order)} | "
                f"{_result(entry.position_consistency.all)} |"
            )
    lines += ["", "## Flip rate by slice", ""]
    lines += _slice_table(figures.slices, data) if figures.slices else ["No slices."]
    return "\n".join(lines) + "\n"


def _slice_table(rows: list[SliceTest], data: Comparison) -> list[str]:
    out = [
        "| slice | pairs | flip rate [CI] | q (flip) | agreement v1 -> v2 | q (agreement) "
        "| shifted |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        ci = row.flip_rate_ci
        rate = _number(row.flip_rate) + (f" [{_number(ci[0])}, {_number(ci[1])}]" if ci else "")
        agreement = (
            f"{_number(row.agreement_first)} -> {_number(row.agreement_second)}"
            if row.agreement_first is not None
            else "—"
        )
        out.append(
            f"| {data.slice_name(row)} | {row.n} | {rate} | "
            f"{_number(row.q_flip)} | {agreement} | {_number(row.q_agreement)} | "
            f"{'yes (' + ', '.join(row.why) + ')' if row.shifted else 'no'} |"
        )
    return out
