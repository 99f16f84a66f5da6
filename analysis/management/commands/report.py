"""`python manage.py report (--audit ID | --dataset NAME) --format json|md`

Prints the figures of an audit or a dataset: the latest snapshot when nothing changed since
it was computed, otherwise a fresh one (computed here, synchronously, and stored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import plots, selectors, services
from analysis.management.subject import add_subject_arguments, subject_from_options
from analysis.models import MetricSnapshot
from analysis.report_studies import JudgeShown, studies_model
from analysis.report_summary import judge_headline, slice_figures
from analysis.serializers import SnapshotOutput
from analysis.snapshot import (
    Consensus,
    Figures,
    JudgeConfusion,
    JudgePosition,
    JudgeRater,
    Position,
    Progress,
    Ranking,
    Result,
    Shape,
    SliceDimension,
    Studies,
)

CHANCE = {"S1": "1/3", "S2": "1/2"}


class Command(BaseCommand):
    help = "Print an audit's or a dataset's agreement figures as JSON or Markdown."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument(
            "--recompute", action="store_true", help="compute a new snapshot even if current"
        )
        parser.add_argument(
            "--n-boot",
            type=int,
            default=None,
            metavar="N",
            help="bootstrap resamples for a new snapshot (default 1,000)",
        )
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")

    def handle(self, *args: Any, **options: Any) -> None:
        n_boot = options["n_boot"]
        if n_boot is not None and n_boot < 0:
            raise CommandError(f"--n-boot must be 0 or more, got {n_boot}")
        audit, dataset = subject_from_options(options)
        if n_boot is None:
            n_boot = services.default_n_boot()
        snapshot = selectors.snapshot_latest(audit=audit, dataset=dataset)
        current = services.snapshot_is_current(snapshot, audit=audit, dataset=dataset)
        same_settings = snapshot is not None and _settings(snapshot) == (n_boot, options["seed"])
        if options["recompute"] or not current or not same_settings:
            self.stderr.write("computing a new snapshot…")
            snapshot = services.snapshot_compute(
                audit=audit, dataset=dataset, n_boot=n_boot, seed=options["seed"]
            )
        assert snapshot is not None
        if options["format"] == "json":
            self.stdout.write(json.dumps(snapshot_json(snapshot), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(markdown_report(snapshot))


def _settings(snapshot: MetricSnapshot) -> tuple[Any, Any]:
    settings = snapshot.typed.settings
    given = settings.model_fields_set
    return (
        settings.n_boot if "n_boot" in given else None,
        settings.seed if "seed" in given else None,
    )


def snapshot_json(snapshot: MetricSnapshot) -> dict[str, Any]:
    data = dict(SnapshotOutput(snapshot).data)
    return json.loads(json.dumps(data, default=str))


# --- Markdown ----------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _r(result: Result | None) -> str:
    return plots.result_text(result)


def _n(result: Result | None) -> int | None:
    return result.n if result is not None and "n" in result.model_fields_set else None


def _judge_rows(
    judges: Sequence[JudgeRater],
    figures_of: Callable[[str], Shape | None],
    keys: Sequence[str],
) -> list[list[Any]]:
    """A row per judge: its label, then each of ``keys`` from ``figures_of(judge id)``."""
    rows = []
    for judge in judges:
        figures = figures_of(judge.id)
        rows.append([judge.label, *(_r(getattr(figures, key, None)) for key in keys)])
    return rows


def markdown_report(snapshot: MetricSnapshot) -> str:
    m = snapshot.typed
    subject = m.subject
    settings = m.settings
    figures = m.figures
    judges = m.raters.judges
    humans = m.human_names()
    counts = snapshot.typed_counts
    level = settings.level
    lines = [
        f"# Agreement report: {subject.kind} `{subject.name}`",
        "",
        f"Snapshot {snapshot.pk}, computed {snapshot.created_at:%Y-%m-%d %H:%M} UTC in "
        f"{snapshot.compute_ms:,} ms from {counts.items:,} pairs "
        f"({counts.prompts:,} prompts), {counts.human_votes:,} human votes "
        f"from {counts.humans:,} people, {counts.verdicts:,} judge verdicts "
        f"({counts.unparsed_verdicts:,} without an outcome, left out).",
        "",
        f"Intervals: {level:.0%} percentile bootstrap, {settings.n_boot:,} resamples "
        f"of prompts, seed {settings.seed}. **S1**: ties kept, a verdict that flips "
        "when the sides are swapped counts as a tie (chance 1/3). **S2**: only votes where both "
        "raters prefer a side (chance 1/2). Agreement is MT-Bench's: a judge's verdict against "
        "every human vote on the item; human-human compares every two people on an item. The "
        "human majority: most common vote, no strict majority = tie"
        + ("; an adjudication overrides it." if subject.kind == "audit" else "."),
        "",
    ]
    lines += _progress(m.progress, subject.kind)
    lines += ["## Each judge against the people", ""]
    rows: list[list[Any]] = []
    for judge in judges:
        cells, n = judge_headline(figures, judge.id)
        rows.append([judge.label, *map(_r, cells), n])
    s1, s2 = figures.S1, figures.S2
    ceiling_n = _n(s1.ceiling.percent_agreement)
    rows.append(
        [
            "human-human (ceiling)",
            _r(s1.ceiling.percent_agreement),
            _r(s2.ceiling.percent_agreement),
            _r(s1.ceiling.cohen_kappa),
            "",
            "",
            "",
            ceiling_n,
        ]
    )
    baseline = s1.baseline.vs_humans
    answer = baseline.details.get("answer") if baseline else None
    baseline_n = _n(baseline)
    rows.append(
        [
            f'always "{answer}" (baseline)' if answer else "constant answer (baseline)",
            _r(baseline),
            _r(s2.baseline.vs_humans),
            "0 by construction",
            _r(s1.baseline.vs_majority),
            _r(s2.baseline.vs_majority),
            "0 by construction",
            baseline_n,
        ]
    )
    lines += _table(
        [
            "rater",
            "S1 vs human votes",
            "S2 vs human votes",
            "Cohen's kappa vs votes (S1)",
            "S1 vs majority",
            "S2 vs majority",
            "Cohen's kappa vs majority (S1)",
            "items",
        ],
        rows,
    )
    if judges and humans:
        lines += ["### Each judge against each person (agreement, S1 / S2)", ""]
        rows = []
        for judge in judges:
            row = [judge.label]
            one, two = s1.judges.get(judge.id), s2.judges.get(judge.id)
            for human in humans:
                first = one.vs_each_human.get(human) if one else None
                second = two.vs_each_human.get(human) if two else None
                row.append(f"{_r(first)} / {_r(second)}")
            rows.append(row)
        lines += _table(["judge", *humans.values()], rows)
        pairs = s1.human_pairs
        if pairs:
            lines += ["### Each two people (S1)", ""]
            lines += _table(
                ["people", "agreement", "Cohen's kappa"],
                [
                    [
                        f"{humans.get(p.a, p.a)} / {humans.get(p.b, p.b)}",
                        _r(p.percent_agreement),
                        _r(p.cohen_kappa),
                    ]
                    for p in pairs
                ],
            )
        lines += ["### Other coefficients (vs human votes, S1)", ""]
        rows = _judge_rows(
            judges,
            lambda judge: found.vs_humans if (found := s1.judges.get(judge)) else None,
            ["scott_pi", "gwet_ac", "cohen_kappa_linear"],
        )
        lines += _table(["judge", "Scott's pi", "Gwet's AC1", "Cohen's kappa, linear"], rows)
    lines += _reliability(figures)
    lines += _confusion(m.confusion, judges)
    lines += _position(m.position, judges, humans)
    for data in m.slices.values():
        lines += _slice(data, judges)
    lines += _ranking(m.ranking, judges, given="ranking" in m.model_fields_set)
    lines += _consensus(m.consensus, humans)
    lines += _studies(m.studies, judges)
    return "\n".join(lines).rstrip() + "\n"


def _progress(progress: Progress, kind: str) -> list[str]:
    if kind == "audit":
        return [
            f"Progress: {progress.labels:,} of {progress.labels_needed:,} "
            f"labels, {progress.items_complete:,} of {progress.items:,} "
            f"items complete (k = {progress.overlap_k}), "
            f"{progress.adjudicated:,} adjudicated.",
            "",
        ]
    return []


def _reliability(figures: Figures) -> list[str]:
    rows = []
    for label, s1, s2 in (
        ("people", figures.S1.ceiling, figures.S2.ceiling),
        ("people and judges", figures.S1.all_raters, figures.S2.all_raters),
    ):
        for metric, name in (
            ("fleiss_kappa", "Fleiss' kappa"),
            ("krippendorff_alpha", "Krippendorff's alpha"),
        ):
            rows.append([f"{name}, {label}", _r(getattr(s1, metric)), _r(getattr(s2, metric))])
    return ["## Reliability", "", *_table(["coefficient", "S1", "S2"], rows)]


def _confusion(confusion: Mapping[str, JudgeConfusion], judges: Sequence[JudgeRater]) -> list[str]:
    lines = ["## Confusion matrices (rows: judge; columns: human majority; S1)", ""]
    any_table = False
    for judge in judges:
        found = confusion.get(judge.id)
        table = found.vs_majority if found else None
        if table is None or not table.total:
            continue
        any_table = True
        lines += [f"**{_md(judge.label)}**", ""]
        lines += _table(
            ["judge \\ majority", *table.categories],
            [[category, *row] for category, row in zip(table.categories, table.rows, strict=True)],
        )
    return lines if any_table else []


def _position(
    position: Position, judges: Sequence[JudgeRater], humans: Mapping[str, str]
) -> list[str]:
    lines = ["## Position bias", ""]
    rows = []
    for judge in judges:
        data = position.judges.get(judge.id) or JudgePosition()
        rows.append(
            [
                judge.label,
                _r(data.consistency),
                _r(data.fairness),
                data.n or 0,
                "" if data.primacy is None else data.primacy,
                "" if data.recency is None else data.recency,
            ]
        )
    lines += _table(
        ["judge", "consistency", "preference fairness", "pairs", "primacy", "recency"], rows
    )
    if position.annotators:
        lines += ["Annotators' share of side choices that picked the left response:", ""]
        lines += _table(
            ["annotator", "side choices", "left rate [Wilson CI]", "p (no preference)"],
            [
                [
                    humans.get(a.rater, a.rater),
                    a.n,
                    _r(Result.of(a.rate, a.ci)),
                    plots.number_text(a.p_value),
                ]
                for a in position.annotators
            ],
        )
    return lines


def _slice(data: SliceDimension, judges: Sequence[JudgeRater]) -> list[str]:
    label = data.label
    header = [label.lower(), "items", "prompts", "ceiling S1", "ceiling S2"]
    for judge in judges:
        header += [f"{judge.label} S1", f"{judge.label} S2", f"{judge.label} kappa S1"]
    rows = []
    for row in data.rows:
        figures = slice_figures(row, [judge.id for judge in judges])
        prompts = "" if row.prompts is None else row.prompts
        rows.append([row.value, row.items, prompts, *map(_r, figures)])
    lines = [f"## By {label.lower()}", "", *_table(header, rows)]
    if data.omitted:
        lines += [f"{data.omitted:,} smaller slices not shown.", ""]
    return lines


def _ranking(ranking: Ranking, judges: Sequence[JudgeRater], *, given: bool) -> list[str]:
    lines = ["## Model rankings (Bradley-Terry, ties as half wins)", ""]
    if not given or not ranking.model_fields_set or "reason" in ranking.model_fields_set:
        return [*lines, f"undefined: {ranking.reason or 'not computed'}", ""]
    people = ranking.humans
    if people is not None and people.reason:
        lines += [f"From the human votes: undefined: {people.reason}", ""]
    else:
        lines += _table(
            ["rank", "model (human votes)", "strength [CI]"],
            [
                [m.rank, m.model, _r(Result.of(m.strength, m.ci))]
                for m in (people.models if people else [])
            ],
        )
    rows = _judge_rows(
        judges,
        lambda judge: ranking.judges.get(judge),
        ["kendall_tau", "spearman_rho", "separability"],
    )
    lines += _table(["judge", "Kendall tau vs people", "Spearman rho", "separability"], rows)
    return lines


def _consensus(consensus: Consensus, humans: Mapping[str, str]) -> list[str]:
    model = consensus.dawid_skene
    if model is None or not model.accuracy:
        return []
    return [
        "## Annotator reliability (Dawid-Skene)",
        "",
        *_table(
            ["person", "estimated accuracy"],
            [[humans.get(r, r), plots.number_text(v)] for r, v in model.accuracy.items()],
        ),
    ]


def _cell(cell: Mapping[str, Any] | None) -> str:
    """A report_studies cell as text: value, interval and p-value where there are some."""
    if not cell:
        return ""
    if cell.get("undefined"):
        return f"undefined: {cell['reason']}" if cell.get("reason") else "—"
    return " ".join(part for part in (cell["value"], cell.get("ci", ""), cell.get("p", "")) if part)


def _cells(record: Mapping[str, Any], *keys: str) -> list[str]:
    return [_cell(record[key]) for key in keys]


def _titled_table(
    title: str, reason: str | None, header: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[str]:
    """A "### title" and its table, or in its place the reason it is undefined."""
    if reason:
        return [f"### {title}", "", f"undefined: {reason}", ""]
    return [f"### {title}", "", *_table(header, rows)]


def _studies(studies: Studies | None, judges: Sequence[JudgeRater]) -> list[str]:
    shown = [JudgeShown(j.id, j.label, plots.PALETTE[0], j.model_id) for j in judges]
    model = studies_model(studies, shown)
    if not model:
        return []
    lines = ["## Refusal gap (METHODS.md section 4)", ""]
    refusal = model["refusal"]
    if refusal.get("reason"):
        lines += [f"undefined: {refusal['reason']}", ""]
    else:
        counts = ", ".join(f"{name} {n:,}" for name, n in refusal["class_counts"])
        lines += [
            f"{refusal['pairs']:,} pairs with both responses classified (classifier "
            f"`{refusal['classifier']}`): {counts}. Lengths in {refusal['length_unit']}.",
            "",
            "### Win, loss and tie rates by response class (95% Wilson intervals)",
            "",
            *_table(
                ["rater", "class", "responses", "win", "loss", "tie", "win/loss"],
                [
                    [r["rater"], r["class"], r["n"], *_cells(r, "win", "loss", "tie"), r["wl"]]
                    for r in refusal["rates"]
                ],
            ),
        ]
        if refusal["rates_vs_normal"]:
            lines += [
                "### Against normal (compliant) responses only",
                "",
                *_table(
                    ["rater", "class", "pairs", "win", "loss", "tie"],
                    [
                        [r["rater"], r["class"], r["n"], *_cells(r, "win", "loss", "tie")]
                        for r in refusal["rates_vs_normal"]
                    ],
                ),
            ]
        for fit in refusal["lpm"]:
            lines += _titled_table(
                f"{fit['rater']}: linear probability model (points; win 1, loss 0, "
                "ties left out; cluster-robust by pair)",
                fit.get("reason"),
                ["term", "coefficient", "95% CI", "p", "note"],
                [[r["term"], r["coef"], r["ci"], r["p"], r["note"]] for r in fit.get("rows", [])],
            )
        for gap in refusal["gaps"]:
            rows = [
                [r["class"], *_cells(r, "human", "judge", "gap", "half")]
                for r in gap.get("rows") or []
            ]
            lines += _titled_table(
                f"{gap['label']}: gap against people (points, judge minus people)",
                None if rows else gap["reason"],
                ["class", "people", "judge", "gap [95% CI]", "gap, ties as 1/2"],
                [*rows, ["length (per SD)", "", "", _cell(gap.get("length")), ""]],
            )
    style = model["style"]
    lines += ["## Style and length (METHODS.md section 5)", ""]
    if style.get("reason"):
        lines += [f"undefined: {style['reason']}", ""]
    else:
        for judge in style["judges"]:
            rows = [
                [r["feature"], *_cells(r, "human", "judge", "net")] for r in judge.get("rows") or []
            ]
            lines += _titled_table(
                f"{judge['label']}: sensitivity net of people's (points)",
                None if rows else judge["reason"],
                ["feature", "people", "judge", "judge - people [95% CI]"],
                rows,
            )
        if style["lc_models"]:
            header = ["model"]
            for rater in style["lc_raters"]:
                header += [f"{rater['name']} raw", f"{rater['name']} length-controlled"]
            rows = []
            for entry in style["lc_models"]:
                row = [entry["model"]]
                for cell in entry["cells"]:
                    row += [_cell(cell["raw"]), _cell(cell["lc"])] if cell else ["", ""]
                rows.append(row)
            lines += ["### Length-controlled win rates", "", *_table(header, rows)]
    ppi = model.get("ppi")
    if ppi:
        lines += ["## Few labels, many verdicts: PPI++ human win rates", ""]
        if ppi.get("reason"):
            lines += [f"undefined: {ppi['reason']}", ""]
        else:
            lines += [f"{ppi['labelled']:,} labelled pairs; {ppi['method']}.", ""]
            for table in ppi["tables"]:
                lines += _titled_table(
                    f"By {table['by']}, with {table['judge']}",
                    table.get("reason"),
                    [
                        table["by"],
                        "labelled",
                        "judged",
                        "judge alone",
                        "labels alone",
                        "PPI",
                        "lambda",
                        f"more labels for +/-{model['half_width_pts']} pts",
                    ],
                    [
                        [
                            r["group"],
                            r["labelled"],
                            r["judged"],
                            *_cells(r, "judge_only", "classical", "ppi"),
                            r["lam"],
                            "" if r["more"] is None else f"{r['more']:,.0f}",
                        ]
                        for r in table.get("rows", [])
                    ],
                )
    sequential = model.get("sequential")
    if sequential:
        lines += ["## Anytime-valid agreement with the labels (S1)", ""]
        if sequential.get("reason"):
            lines += [f"undefined: {sequential['reason']}", ""]
        else:
            lines += _table(
                ["judge", "confidence sequence", "fixed-n interval", "to stop"],
                [
                    [
                        j["label"],
                        j.get("current", ""),
                        j.get("fixed", ""),
                        j.get("projection") or j.get("reason", ""),
                    ]
                    for j in sequential["judges"]
                ],
            )
    return lines
