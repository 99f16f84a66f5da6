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
from analysis.metrics.outcomes import dig as _get
from analysis.models import MetricSnapshot
from analysis.report_studies import studies_model
from analysis.report_summary import judge_headline, slice_figures
from analysis.serializers import SnapshotOutput

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
    settings = snapshot.metrics.get("settings", {})
    return settings.get("n_boot"), settings.get("seed")


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


def _r(result: Any) -> str:
    return plots.result_text(result)


def _judge_rows(
    judges: Sequence[Mapping[str, Any]],
    figures_of: Callable[[Any], Mapping[str, Any] | None],
    keys: Sequence[str],
) -> list[list[Any]]:
    """A row per judge: its label, then each of ``keys`` from ``figures_of(judge id)``."""
    rows = []
    for judge in judges:
        figures = figures_of(judge["id"]) or {}
        rows.append([judge["label"], *(_r(figures.get(key)) for key in keys)])
    return rows


def markdown_report(snapshot: MetricSnapshot) -> str:
    m = snapshot.metrics
    subject = m.get("subject", {})
    settings = m.get("settings", {})
    figures = m.get("figures", {})
    judges = _get(m, "raters", "judges") or []
    humans = {h["id"]: h["name"] for h in _get(m, "raters", "humans") or []}
    counts = snapshot.counts
    level = settings.get("level", 0.95)
    lines = [
        f"# Agreement report: {subject.get('kind', '')} `{subject.get('name', '')}`",
        "",
        f"Snapshot {snapshot.pk}, computed {snapshot.created_at:%Y-%m-%d %H:%M} UTC in "
        f"{snapshot.compute_ms:,} ms from {counts.get('items', 0):,} pairs "
        f"({counts.get('prompts', 0):,} prompts), {counts.get('human_votes', 0):,} human votes "
        f"from {counts.get('humans', 0):,} people, {counts.get('verdicts', 0):,} judge verdicts "
        f"({counts.get('unparsed_verdicts', 0):,} without an outcome, left out).",
        "",
        f"Intervals: {level:.0%} percentile bootstrap, {settings.get('n_boot', 0):,} resamples "
        f"of prompts, seed {settings.get('seed', 0)}. **S1**: ties kept, a verdict that flips "
        "when the sides are swapped counts as a tie (chance 1/3). **S2**: only votes where both "
        "raters prefer a side (chance 1/2). Agreement is MT-Bench's: a judge's verdict against "
        "every human vote on the item; human-human compares every two people on an item. The "
        "human majority: most common vote, no strict majority = tie"
        + ("; an adjudication overrides it." if subject.get("kind") == "audit" else "."),
        "",
    ]
    lines += _progress(m.get("progress", {}), subject.get("kind"))
    lines += ["## Each judge against the people", ""]
    rows = []
    for judge in judges:
        cells, n = judge_headline(figures, judge["id"])
        rows.append([judge["label"], *map(_r, cells), n])
    rows.append(
        [
            "human-human (ceiling)",
            _r(_get(figures, "S1", "ceiling", "percent_agreement")),
            _r(_get(figures, "S2", "ceiling", "percent_agreement")),
            _r(_get(figures, "S1", "ceiling", "cohen_kappa")),
            "",
            "",
            "",
            _get(figures, "S1", "ceiling", "percent_agreement", "n"),
        ]
    )
    answer = _get(figures, "S1", "baseline", "vs_humans", "details", "answer")
    rows.append(
        [
            f'always "{answer}" (baseline)' if answer else "constant answer (baseline)",
            _r(_get(figures, "S1", "baseline", "vs_humans")),
            _r(_get(figures, "S2", "baseline", "vs_humans")),
            "0 by construction",
            _r(_get(figures, "S1", "baseline", "vs_majority")),
            _r(_get(figures, "S2", "baseline", "vs_majority")),
            "0 by construction",
            _get(figures, "S1", "baseline", "vs_humans", "n"),
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
            row = [judge["label"]]
            for human in humans:
                s1 = _get(figures, "S1", "judges", judge["id"], "vs_each_human", human)
                s2 = _get(figures, "S2", "judges", judge["id"], "vs_each_human", human)
                row.append(f"{_r(s1)} / {_r(s2)}")
            rows.append(row)
        lines += _table(["judge", *humans.values()], rows)
        pairs = _get(figures, "S1", "human_pairs") or []
        if pairs:
            lines += ["### Each two people (S1)", ""]
            lines += _table(
                ["people", "agreement", "Cohen's kappa"],
                [
                    [
                        f"{humans.get(p['a'], p['a'])} / {humans.get(p['b'], p['b'])}",
                        _r(p.get("percent_agreement")),
                        _r(p.get("cohen_kappa")),
                    ]
                    for p in pairs
                ],
            )
        lines += ["### Other coefficients (vs human votes, S1)", ""]
        rows = _judge_rows(
            judges,
            lambda judge: _get(figures, "S1", "judges", judge, "vs_humans"),
            ["scott_pi", "gwet_ac", "cohen_kappa_linear"],
        )
        lines += _table(["judge", "Scott's pi", "Gwet's AC1", "Cohen's kappa, linear"], rows)
    lines += _reliability(figures)
    lines += _confusion(m.get("confusion", {}), judges)
    lines += _position(m.get("position", {}), judges, humans)
    for data in (m.get("slices") or {}).values():
        lines += _slice(data, judges)
    lines += _ranking(m.get("ranking", {}), judges)
    lines += _consensus(m.get("consensus", {}), humans)
    lines += _studies(m.get("studies"), judges)
    return "\n".join(lines).rstrip() + "\n"


def _progress(progress: Mapping[str, Any], kind: Any) -> list[str]:
    if kind == "audit":
        return [
            f"Progress: {progress.get('labels', 0):,} of {progress.get('labels_needed', 0):,} "
            f"labels, {progress.get('items_complete', 0):,} of {progress.get('items', 0):,} "
            f"items complete (k = {progress.get('overlap_k')}), "
            f"{progress.get('adjudicated', 0):,} adjudicated.",
            "",
        ]
    return []


def _reliability(figures: Mapping[str, Any]) -> list[str]:
    rows = []
    for group, label in (("ceiling", "people"), ("all_raters", "people and judges")):
        for metric, name in (
            ("fleiss_kappa", "Fleiss' kappa"),
            ("krippendorff_alpha", "Krippendorff's alpha"),
        ):
            rows.append(
                [
                    f"{name}, {label}",
                    _r(_get(figures, "S1", group, metric)),
                    _r(_get(figures, "S2", group, metric)),
                ]
            )
    return ["## Reliability", "", *_table(["coefficient", "S1", "S2"], rows)]


def _confusion(confusion: Mapping[str, Any], judges: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Confusion matrices (rows: judge; columns: human majority; S1)", ""]
    any_table = False
    for judge in judges:
        table = _get(confusion, judge["id"], "vs_majority")
        if not table or not table.get("total"):
            continue
        any_table = True
        lines += [f"**{_md(judge['label'])}**", ""]
        lines += _table(
            ["judge \\ majority", *table["categories"]],
            [
                [category, *row]
                for category, row in zip(table["categories"], table["rows"], strict=True)
            ],
        )
    return lines if any_table else []


def _position(
    position: Mapping[str, Any], judges: Sequence[Mapping[str, Any]], humans: Mapping[str, str]
) -> list[str]:
    lines = ["## Position bias", ""]
    rows = []
    for judge in judges:
        data = _get(position, "judges", judge["id"]) or {}
        rows.append(
            [
                judge["label"],
                _r(data.get("consistency")),
                _r(data.get("fairness")),
                data.get("n") or 0,
                "" if data.get("primacy") is None else data["primacy"],
                "" if data.get("recency") is None else data["recency"],
            ]
        )
    lines += _table(
        ["judge", "consistency", "preference fairness", "pairs", "primacy", "recency"], rows
    )
    annotators = position.get("annotators") or []
    if annotators:
        lines += ["Annotators' share of side choices that picked the left response:", ""]
        lines += _table(
            ["annotator", "side choices", "left rate [Wilson CI]", "p (no preference)"],
            [
                [
                    humans.get(a["rater"], a["rater"]),
                    a["n"],
                    _r({"value": a["rate"], "ci": a["ci"]}),
                    plots.number_text(a["p_value"]),
                ]
                for a in annotators
            ],
        )
    return lines


def _slice(data: Mapping[str, Any], judges: Sequence[Mapping[str, Any]]) -> list[str]:
    label = data.get("label", "")
    header = [label.lower(), "items", "prompts", "ceiling S1", "ceiling S2"]
    for judge in judges:
        header += [f"{judge['label']} S1", f"{judge['label']} S2", f"{judge['label']} kappa S1"]
    rows = []
    for row in data.get("rows", []):
        figures = slice_figures(row, [judge["id"] for judge in judges])
        rows.append([row.get("value"), row.get("items"), row.get("prompts", ""), *map(_r, figures)])
    lines = [f"## By {label.lower()}", "", *_table(header, rows)]
    if data.get("omitted"):
        lines += [f"{data['omitted']:,} smaller slices not shown.", ""]
    return lines


def _ranking(ranking: Mapping[str, Any], judges: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Model rankings (Bradley-Terry, ties as half wins)", ""]
    if "reason" in ranking or not ranking:
        return [*lines, f"undefined: {ranking.get('reason', 'not computed')}", ""]
    people = ranking.get("humans") or {}
    if people.get("reason"):
        lines += [f"From the human votes: undefined: {people['reason']}", ""]
    else:
        lines += _table(
            ["rank", "model (human votes)", "strength [CI]"],
            [
                [m["rank"], m["model"], _r({"value": m["strength"], "ci": m["ci"]})]
                for m in people.get("models", [])
            ],
        )
    rows = _judge_rows(
        judges,
        lambda judge: _get(ranking, "judges", judge),
        ["kendall_tau", "spearman_rho", "separability"],
    )
    lines += _table(["judge", "Kendall tau vs people", "Spearman rho", "separability"], rows)
    return lines


def _consensus(consensus: Mapping[str, Any], humans: Mapping[str, str]) -> list[str]:
    model = consensus.get("dawid_skene") or {}
    if not model.get("accuracy"):
        return []
    return [
        "## Annotator reliability (Dawid-Skene)",
        "",
        *_table(
            ["person", "estimated accuracy"],
            [[humans.get(r, r), plots.number_text(v)] for r, v in model["accuracy"].items()],
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


def _studies(studies: Mapping[str, Any] | None, judges: Sequence[Mapping[str, Any]]) -> list[str]:
    model = studies_model(studies, [{**j, "colour": plots.PALETTE[0]} for j in judges])
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
