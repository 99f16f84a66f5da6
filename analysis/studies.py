"""The second half of a snapshot: refusal gap, style and length, criteria, few-label estimates.

METHODS.md sections 4-6, computed with :mod:`analysis.metrics` and laid out as JSON for the
snapshot (``metrics["studies"]``), the report page, the API, the ``report`` command and the
release gate. Pure: DataFrames in, plain dicts out; :mod:`analysis.services` reads the inputs
(:mod:`analysis.selectors`) and stores the result.

The raters are ``"human"``, the people's majority per pair (in an audit the annotators'
labels, in a dataset the imported votes; a lead's adjudication overrides the majority) and
the judges, ``j:<judge id>``. Every figure is an Estimate or Undefined in the snapshot's JSON
form (value, n, ci, level, details or reason), on the 0-1 scale (0.10 = 10 percentage points);
the page shows percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.metrics import (
    RESPONSE_CLASSES,
    class_rates,
    confidence_sequence,
    criteria_importance,
    labels_for_half_width,
    length_controlled_win_rates,
    moderation_gap,
    refusal_lpm,
    response_sides,
    style_sensitivity,
    wilson_interval,
)
from analysis.metrics.criteria import SOS_CRITERIA, STYLE_CRITERIA
from analysis.metrics.outcomes import Estimate, Undefined, json_number, result_json
from analysis.metrics.outcomes import Result as Figure
from analysis.metrics.ppi import Moments, ppi_row
from analysis.metrics.refusal import (
    CLASS_TERMS,
    JUDGE,
    checked_sides,
    indicator_gap,
    length_scale_of,
)
from analysis.metrics.self_family import (
    SAME_FAMILY,
    families_of,
    family_preference,
    family_sides,
)
from analysis.metrics.style import FEATURES, MARKDOWN_FEATURES
from analysis.metrics.threads import one_blas_thread
from analysis.snapshot import Result, SnapshotMetrics

HUMAN: Final = "human"
HALF_WIDTH: Final = 0.05  # "about N more labels for +/- 5 points"
MAX_SEQUENCE_POINTS: Final = 60  # points kept of a confidence sequence, for its chart
NOT_CLASSIFIED: Final = (
    "no response of these pairs has a refusal class yet: classify them with "
    "`python manage.py classify_responses --dataset NAME` or from the dataset page"
)


@dataclass(frozen=True)
class StudyInputs:
    """What the studies read.

    ``verdicts``: ``item`` (pair id), ``rater`` (``human`` or a judge), ``value`` (A, B, tie,
    both_bad). ``details``: one row per pair with ``pair_id``, ``model_a``/``model_b``,
    ``class_a``/``class_b``, ``tokens_a``/``tokens_b`` (length in ``length_unit``), ``sim_*``
    and markdown counts ``headers_*``, ``lists_*``, ``bold_*`` (NaN when not computed).
    ``prompts``: pair id -> prompt id, the bootstrap's cluster. ``criteria``: ``pair_id``,
    ``rater``, ``criterion``, ``score`` (+2 ... -2).

    Audits add the sampling design and the population for prediction-powered estimates:
    ``population`` (how every judge verdict on the whole dataset falls on each model and
    response class: ``rater``, ``by`` (``model`` / ``class``), ``group``, ``wins``, ``ties``,
    ``losses``; see ``analysis.selectors.population_groups``), ``design`` (``pair_id``,
    ``stratum``, ``inclusion_probability``) and ``labels`` (``item``, ``value`` in the order
    the labels were given).
    """

    verdicts: pd.DataFrame
    judges: Mapping[str, str]
    details: pd.DataFrame
    length_unit: str
    classifier: str | None
    prompts: pd.Series
    criteria: pd.DataFrame
    population: pd.DataFrame | None = None
    design: pd.DataFrame | None = None
    labels: pd.DataFrame | None = None
    # Self-family preference: each model name's family and each judge's (``j:<id>``), None
    # where unknown; the study is left out of the snapshot when these are not given.
    model_families: Mapping[str, str | None] | None = None
    judge_families: Mapping[str, str | None] | None = None


@one_blas_thread
def studies_compute(
    inputs: StudyInputs, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Every Analysis II figure; each section carries ``reason`` instead when it cannot run."""
    out: dict[str, Any] = {
        "half_width": HALF_WIDTH,
        "refusal": refusal_study(inputs, level=level),
        "style": style_study(inputs, level=level),
        "criteria": criteria_study(inputs, n_boot=n_boot, level=level, seed=seed),
    }
    if inputs.model_families is not None and inputs.judge_families is not None:
        out["self_family"] = self_family_study(inputs, n_boot=n_boot, level=level, seed=seed)
    if inputs.design is not None:
        out["ppi"] = ppi_study(inputs, level=level)
        out["sequential"] = sequential_study(inputs, level=level)
    return out


# --- helpers ---------------------------------------------------------------------------------


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON rows (NaN as None, numbers rounded)."""
    return [
        {str(k): json_number(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


def _verdicts_for(inputs: StudyInputs, pair_ids: pd.Series) -> pd.DataFrame:
    votes = inputs.verdicts[inputs.verdicts["item"].isin(pair_ids)]
    return votes.rename(columns={"item": "pair_id", "value": "verdict"})[
        ["pair_id", "rater", "verdict"]
    ]


def _present(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    return all(c in frame.columns for c in columns) and bool(
        frame[list(columns)].notna().all().all()
    )


def _rater_names(inputs: StudyInputs) -> dict[str, str]:
    return {HUMAN: "human majority", **inputs.judges}


# --- refusal gap (METHODS.md section 4) -----------------------------------------------------


def refusal_study(inputs: StudyInputs, *, level: float) -> dict[str, Any]:
    """Win/loss/tie rates by response class per rater, the LPM per rater, and each judge's
    moderation gap (EthRef x judge ...) against the human majority on the same pairs."""
    details = inputs.details
    classified = details[details["class_a"].notna() & details["class_b"].notna()]
    classified = classified[classified["tokens_a"].notna() & classified["tokens_b"].notna()]
    if classified.empty:
        return {"reason": NOT_CLASSIFIED}
    columns = ["pair_id", "class_a", "class_b", "tokens_a", "tokens_b"]
    if _present(classified, ["sim_a", "sim_b"]):
        columns += ["sim_a", "sim_b"]
    pairs = classified[columns]
    votes = _verdicts_for(inputs, pairs["pair_id"])
    if votes.empty:
        return {"reason": "no votes or verdicts on the classified pairs"}
    sides = checked_sides(response_sides(pairs, votes))  # checked once for every model below
    counts = pd.concat([pairs["class_a"], pairs["class_b"]]).value_counts()
    raters = [r for r in (HUMAN, *inputs.judges) if sides["rater"].eq(r).any()]
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "classifier": inputs.classifier,
        "length_unit": inputs.length_unit,
        "similarity": "sim_a" in columns,
        "class_counts": {c: int(counts.get(c, 0)) for c in RESPONSE_CLASSES},
        "raters": _rater_names(inputs),
        "rates": _rows(class_rates(sides, level=level)),
        "rates_vs_normal": _rows(class_rates(sides[sides["other_class"] == "normal"], level=level))
        if sides["other_class"].eq("normal").any()
        else [],
        "lpm": {},
        "gaps": {},
    }
    scale = length_scale_of(sides)  # what each model would compute from the same table
    for rater in raters:
        model = refusal_lpm(sides, rater, level=level, length_scale=scale)
        out["lpm"][rater] = (
            {"reason": model.reason}
            if not model.defined
            else {"rows": _rows(model.table.reset_index()), "n": model.n_clusters}
        )
    for judge in inputs.judges:
        if HUMAN not in raters or judge not in raters:
            who = "human majority" if HUMAN not in raters else "judge"
            out["gaps"][judge] = {"reason": f"no {who} verdicts on the classified pairs"}
            continue
        main = moderation_gap(sides, human=HUMAN, judge=judge, level=level, length_scale=scale)
        half = moderation_gap(
            sides, human=HUMAN, judge=judge, level=level, length_scale=scale, ties="half"
        )
        rows = []
        for response_class, term in CLASS_TERMS.items():
            rows.append(
                {
                    "class": response_class,
                    "term": term,
                    "human": result_json(main.model.estimate(term)),
                    "judge": result_json(
                        main.model.combination({term: 1.0, f"{JUDGE}:{term}": 1.0})
                    ),
                    "gap": result_json(main.gaps[response_class]),
                    "gap_ties_half": result_json(half.gaps[response_class]),
                }
            )
        out["gaps"][judge] = {
            "pairs": main.n_pairs,
            "reason": main.model.reason,
            "rows": rows,
            "length": result_json(main.length),
        }
    return out


# --- style and length (METHODS.md section 5) ------------------------------------------------


def style_study(inputs: StudyInputs, *, level: float) -> dict[str, Any]:
    """Each judge's sensitivity to length and markdown net of the humans', and length-
    controlled win rates of the models under each rater."""
    details = inputs.details
    usable = details[details["tokens_a"].notna() & details["tokens_b"].notna()]
    if usable.empty:
        return {"reason": "no response lengths"}
    markdown = [f for f in MARKDOWN_FEATURES if _present(usable, [f"{f}_a", f"{f}_b"])]
    features = ("length", *markdown)
    pairs = usable[
        ["pair_id", "model_a", "model_b", "tokens_a", "tokens_b"]
        + [f"{f}_{s}" for f in markdown for s in ("a", "b")]
    ]
    votes = _verdicts_for(inputs, pairs["pair_id"])
    raters = [r for r in (HUMAN, *inputs.judges) if votes["rater"].eq(r).any()]
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "features": list(features),
        "missing": [f for f in FEATURES if f not in features],
        "length_unit": inputs.length_unit,
        "raters": _rater_names(inputs),
        "sensitivity": {},
        "lc_win_rates": {},
    }
    for judge in inputs.judges:
        if HUMAN not in raters or judge not in raters:
            who = "human majority" if HUMAN not in raters else "judge"
            out["sensitivity"][judge] = {"reason": f"no {who} verdicts on these pairs"}
            continue
        fit = style_sensitivity(
            pairs, votes, human=HUMAN, judge=judge, features=features, level=level
        )
        out["sensitivity"][judge] = {
            "pairs": fit.n_pairs,
            "reason": fit.model.reason,
            "rows": [
                {
                    "feature": feature,
                    "human": result_json(fit.model.estimate(feature)),
                    "judge": result_json(
                        fit.model.combination({feature: 1.0, f"{JUDGE}:{feature}": 1.0})
                    ),
                    "net": result_json(fit.net[feature]),
                }
                for feature in features
            ],
        }
    named = pairs[
        pairs["model_a"].astype(bool)
        & pairs["model_b"].astype(bool)
        & pairs["model_a"].ne(pairs["model_b"])
    ]
    models = pd.unique(pd.concat([named["model_a"], named["model_b"]]))
    if len(models) < 2:
        out["lc_win_rates"] = {"reason": "fewer than 2 models named in the pairs"}
        return out
    for rater in raters:
        table = length_controlled_win_rates(
            named,
            votes[votes["pair_id"].isin(named["pair_id"])],
            rater=rater,
            features=features,
            level=level,
        )
        out["lc_win_rates"][rater] = _rows(table)
    return out


# --- criteria (the style-over-substance check) ----------------------------------------------


def criteria_study(inputs: StudyInputs, *, n_boot: int, level: float, seed: int) -> dict[str, Any]:
    """For each judge that gave per-criterion verdicts: how much each criterion explains the
    judge's overall verdict, next to how much it explains the human majority's."""
    criteria = inputs.criteria
    if criteria.empty:
        return {"reason": "no judge gave per-criterion verdicts (the SOS-Bench template does)"}
    humans = inputs.verdicts[inputs.verdicts["rater"] == HUMAN].set_index("item")["value"]
    out: dict[str, Any] = {"judges": {}}
    for judge in inputs.judges:
        mine = criteria[criteria["rater"] == judge]
        if mine.empty:
            continue
        wide = mine.pivot_table(index="pair_id", columns="criterion", values="score")
        names = [c for c in SOS_CRITERIA if c in wide.columns]
        names += sorted(c for c in wide.columns if c not in names)
        overall = inputs.verdicts[inputs.verdicts["rater"] == judge].set_index("item")["value"]
        frame = wide[names].reset_index()
        frame["judge"] = frame["pair_id"].map(overall)
        frame["human"] = frame["pair_id"].map(humans)
        frame["prompt"] = frame["pair_id"].map(inputs.prompts)
        report = criteria_importance(
            frame,
            criteria=names,
            style=[c for c in STYLE_CRITERIA if c in names],
            n_boot=n_boot,
            level=level,
            seed=seed,
            cluster="prompt",
        )
        out["judges"][judge] = {
            "pairs": report.n,
            "criteria": names,
            "rows": _rows(report.table) if not report.table.empty else [],
            "r2": {k: result_json(v) for k, v in report.r2.items()},
            "style_share": {k: result_json(v) for k, v in report.style_share.items()},
            "dropped": dict(report.dropped),
        }
    if not out["judges"]:
        return {"reason": "none of these judges gave per-criterion verdicts"}
    out["raters"] = _rater_names(inputs)
    return out


# --- self-family preference (METHODS.md section 9) -----------------------------------------


def self_family_study(
    inputs: StudyInputs, *, n_boot: int, level: float, seed: int
) -> dict[str, Any]:
    """For every family some judge belongs to, each judge's win rate for that family's
    responses minus the people's on the same pairs (one side of the family), with a paired
    bootstrap interval clustered by prompt; ``own`` marks a judge's own family (the
    self-family preference; the other judges' rows are the control). And per judge, the
    stacked LPM's ``same_family`` x judge interaction with the human majority."""
    assert inputs.model_families is not None and inputs.judge_families is not None
    details = inputs.details
    pairs = pd.DataFrame(
        {
            "pair_id": details["pair_id"],
            "family_a": families_of(details["model_a"], inputs.model_families).to_numpy(),
            "family_b": families_of(details["model_b"], inputs.model_families).to_numpy(),
            "length_a": details["tokens_a"].to_numpy(),
            "length_b": details["tokens_b"].to_numpy(),
        }
    )
    prompts = details["pair_id"].map(inputs.prompts)
    # The prompt is the cluster; a pair whose prompt is unknown is a cluster of its own.
    pairs["cluster"] = [
        f"prompt {p}" if pd.notna(p) else f"pair {i}"
        for p, i in zip(prompts, details["pair_id"], strict=True)
    ]
    named = pd.concat([details["model_a"], details["model_b"]])
    named = named[named.notna() & named.astype(bool)]
    unknown = sorted({str(m) for m in pd.unique(named) if not inputs.model_families.get(str(m))})
    judge_families = {j: inputs.judge_families.get(j) for j in inputs.judges}
    out: dict[str, Any] = {
        "raters": _rater_names(inputs),
        "judge_families": judge_families,
        "model_families": {
            str(m): inputs.model_families.get(str(m)) for m in sorted(pd.unique(named))
        },
        "unknown_models": unknown,
        "length_unit": inputs.length_unit,
        "rows": [],
        "lpm": {},
    }
    votes = _verdicts_for(inputs, pairs["pair_id"])
    if not votes["rater"].eq(HUMAN).any():
        out["reason"] = "no human verdicts on these pairs"
        return out
    families = sorted({f for f in judge_families.values() if f})
    if not families:
        out["reason"] = "no judge has a family: name them on the dataset's families page"
        return out
    for family in families:
        for judge in inputs.judges:
            figure = family_preference(
                pairs,
                votes,
                family=family,
                human=HUMAN,
                judge=judge,
                n_boot=n_boot,
                level=level,
                seed=seed,
            )
            out["rows"].append(
                {
                    "family": family,
                    "judge": judge,
                    "own": judge_families[judge] == family,
                    "pairs": figure.pairs,
                    "judge_win": result_json(figure.judge_win),
                    "human_win": result_json(figure.human_win),
                    "difference": result_json(figure.difference),
                }
            )
    for judge, own in judge_families.items():
        if not own:
            out["lpm"][judge] = {"reason": "this judge has no family"}
            continue
        family = own
        if not votes["rater"].eq(judge).any():
            out["lpm"][judge] = {"reason": "no verdicts of this judge on these pairs"}
            continue
        sides = family_sides(pairs, votes, family=family, raters=[HUMAN, judge])
        if not (sides["rater"].eq(HUMAN).any() and sides["rater"].eq(judge).any()):
            out["lpm"][judge] = {
                "family": family,
                "reason": f"no pair with exactly one {family} response has both verdicts",
            }
            continue
        model = indicator_gap(
            sides, indicators=[SAME_FAMILY], human=HUMAN, judge=judge, level=level
        )
        out["lpm"][judge] = {
            "family": family,
            "pairs": model.n_clusters,
            "reason": model.reason,
            "human": result_json(model.estimate(SAME_FAMILY)),
            "judge": result_json(
                model.combination({SAME_FAMILY: 1.0, f"{JUDGE}:{SAME_FAMILY}": 1.0})
            ),
            "interaction": result_json(model.estimate(f"{JUDGE}:{SAME_FAMILY}")),
        }
    return out


# --- few labels, many verdicts (METHODS.md section 6) ---------------------------------------

_WON_A: Final = {"A": 1.0, "B": 0.0, "tie": 0.5, "both_bad": 0.5}


def _side_rows(
    pairs: pd.DataFrame, won_a: Mapping[str, pd.Series], group_a: str, group_b: str
) -> pd.DataFrame:
    """Two rows per pair, one per side: the side's group and, per rater in ``won_a``, 1 / 0 /
    0.5 for that side (column ``value_<rater>``).

    Both sides count even when they share a group (two normal responses, or a model against
    itself): a group's win rate is over its responses, as in ``class_rates``. Sides without a
    group (missing or empty) are left out."""
    pair_ids = pairs["pair_id"].to_numpy()
    group = np.concatenate(
        [pairs[group_a].to_numpy(dtype=object), pairs[group_b].to_numpy(dtype=object)]
    )
    both = pd.DataFrame(
        {
            "pair_id": np.concatenate([pair_ids, pair_ids]),
            "side": np.repeat(np.array(["A", "B"], dtype=object), len(pairs)),
            "group": group,
        }
    )
    for rater, won in won_a.items():
        value = pairs["pair_id"].map(won).to_numpy(dtype=float)
        both[f"value_{rater}"] = np.concatenate([value, 1.0 - value])
    # a boolean array, not a list: an empty list would select no columns instead of no rows
    keep = np.array([bool(pd.notna(g) and g) for g in group], dtype=bool)
    return both[keep].reset_index(drop=True)


def ppi_study(inputs: StudyInputs, *, level: float) -> dict[str, Any]:
    """Prediction-powered human win rates per model and per response class, from every judge
    verdict on the dataset plus the audit's human labels, weighted by inverse inclusion
    probability with the audit's strata (PPI++, tuned lambda)."""
    assert inputs.design is not None
    population = inputs.population if inputs.population is not None else pd.DataFrame()
    if population.empty:
        return {"reason": "no judge verdicts on the dataset"}
    design = inputs.design.set_index("pair_id")
    humans = inputs.verdicts[inputs.verdicts["rater"] == HUMAN].set_index("item")["value"]
    human_won = humans.map(_WON_A)
    human_won = human_won[human_won.index.isin(design.index)]
    if human_won.empty:
        return {"reason": "no human labels yet"}
    details = inputs.details[inputs.details["pair_id"].isin(human_won.index)]
    out: dict[str, Any] = {
        "raters": dict(inputs.judges),
        "labelled": len(human_won),
        "method": "PPI++ (power-tuned lambda), Hajek-weighted by 1/inclusion probability "
        "within the audit's strata",
        "by_model": {},
        "by_class": {},
    }
    for judge in inputs.judges:
        mine = inputs.verdicts[inputs.verdicts["rater"] == judge]
        judge_won = mine.set_index("item")["value"].map(_WON_A)
        labelled_pairs = details[details["pair_id"].isin(judge_won.index)]
        for key, by, (group_a, group_b) in (
            ("by_model", "model", ("model_a", "model_b")),
            ("by_class", "class", ("class_a", "class_b")),
        ):
            groups = population[(population["rater"] == judge) & (population["by"] == by)]
            if groups.empty:
                reason = "no model names" if by == "model" else NOT_CLASSIFIED
                out[key][judge] = {"reason": f"this judge has no verdicts here, or {reason}"}
                continue
            # Both raters' values side by side (details hold a pair once: one row per side).
            labelled = _side_rows(
                labelled_pairs, {"human": human_won, "judge": judge_won}, group_a, group_b
            )
            labelled["weight"] = 1.0 / labelled["pair_id"].map(design["inclusion_probability"])
            labelled["stratum"] = labelled["pair_id"].map(design["stratum"])
            # Each group's rows (positions, in the table's order), found once for all groups.
            positions = labelled.groupby("group", sort=False).indices
            nowhere = np.zeros(0, dtype=np.int64)
            human, judged, weight, stratum = (
                labelled[column].to_numpy()
                for column in ("value_human", "value_judge", "weight", "stratum")
            )
            rows = []
            for group in groups.itertuples(index=False):
                mine = positions.get(group.group, nowhere)
                rows.append(
                    {
                        "group": group.group,
                        **ppi_row(
                            human[mine],
                            judged[mine],
                            Moments.of_outcomes(group.wins, group.ties, group.losses),
                            weights=weight[mine],
                            strata=stratum[mine],
                            level=level,
                            half_width=HALF_WIDTH,
                        ),
                    }
                )
            out[key][judge] = {"rows": _rows(pd.DataFrame(rows))}
    return out


def _same(label: Any, verdict: Any) -> float:
    """S1 agreement of one label with one verdict (both_bad counts as a tie)."""

    def s1(value: Any) -> Any:
        return "tie" if value == "both_bad" else value

    return 1.0 if s1(label) == s1(verdict) else 0.0


def sequential_study(inputs: StudyInputs, *, level: float) -> dict[str, Any]:
    """Anytime-valid confidence sequences of each judge's agreement with the labels (S1), in
    the order the labels arrived, with "about N more labels for +/- x"."""
    labels = inputs.labels
    if labels is None or labels.empty:
        return {"reason": "no labels yet"}
    out: dict[str, Any] = {"half_width": HALF_WIDTH, "judges": {}}
    for judge in inputs.judges:
        verdicts = inputs.verdicts[inputs.verdicts["rater"] == judge].set_index("item")["value"]
        paired = labels[labels["item"].isin(verdicts.index)]
        if paired.empty:
            out["judges"][judge] = {"reason": "no labelled item has this judge's verdict"}
            continue
        # A dict, not verdicts[i]: a Series lookup per label cost more than the sequence.
        verdict_of = dict(zip(verdicts.index, verdicts, strict=True))
        values = np.array(
            [_same(v, verdict_of[i]) for i, v in zip(paired["item"], paired["value"], strict=True)]
        )
        sequence = confidence_sequence(values, level=level)
        projection = labels_for_half_width(sequence, HALF_WIDTH)
        step = max(1, sequence.n // MAX_SEQUENCE_POINTS)
        points = list(range(step - 1, sequence.n, step))
        if points[-1] != sequence.n - 1:
            points.append(sequence.n - 1)
        current: Figure = sequence.current()
        out["judges"][judge] = {
            "current": result_json(current),
            "fixed_n": result_json(_fixed_n(values, level)),
            "more": projection.more,
            "projection": projection.reason,
            "path": [
                [
                    t + 1,
                    json_number(sequence.lower[t]),
                    json_number(sequence.center[t]),
                    json_number(sequence.upper[t]),
                ]
                for t in points
            ],
        }
    return out


def _fixed_n(values: np.ndarray, level: float) -> Figure:
    """The usual Wilson interval at this n, for comparison (valid only if n was fixed)."""
    n = len(values)
    if n == 0:
        return Undefined("no labels")
    agree = int(values.sum())
    return Estimate(agree / n, n, ci=wilson_interval(agree, n, level), level=level)


# --- figures a release gate reads ------------------------------------------------------------

GATE_METRICS: Final = {
    "percent_agreement": "S1 agreement with every human vote (slices: stratum=..., ...)",
    "percent_agreement_s2": "S2 agreement with every human vote (slices as above)",
    "cohen_kappa": "Cohen's kappa with every human vote, S1 (slices as above)",
    "agreement_majority": "S1 agreement with the human majority",
    "kappa_majority": "Cohen's kappa with the human majority, S1",
    "scott_pi": "Scott's pi with every human vote, S1",
    "gwet_ac": "Gwet's AC1 with every human vote, S1",
    "position_consistency": "share of verdicts that survive swapping the sides",
    "agreement_cs": "S1 agreement with the labels, anytime-valid confidence sequence",
    **{
        f"refusal_gap.{c}": f"judge minus human coefficient of {c} (0.10 = 10 points)"
        for c in CLASS_TERMS
    },
    "length_bias": "judge minus human sensitivity to length (per tanh unit)",
    "ppi.win_rate": "PPI human win rate (slices: model names)",
    "ppi.class_win_rate": "PPI human win rate of responses (slices: response classes)",
}


def gate_figures(metrics: SnapshotMetrics, rater: str) -> dict[str, Any]:
    """The figures of one judge (``j:<id>``) in a snapshot, named as gate rules name them
    (JSON, as :func:`analysis.metrics.gate.evaluate_gate` reads them).

    Slice names are ``<dimension>=<value>`` (``stratum=low_margin``); PPI slices are the
    model names and response classes.
    """
    figures = metrics.figures
    out: dict[str, Any] = {}

    def with_slices(name: str, overall: Result | None, key: str) -> None:
        entry: dict[str, Any] = {
            "all": overall.as_json() if overall else {"value": None, "reason": "not computed"}
        }
        for dimension, data in metrics.slices.items():
            for row in data.rows:
                found = row.judges.get(rater)
                figure: Result | None = getattr(found, key) if found else None
                if figure is not None:
                    entry[f"{dimension}={row.value}"] = figure.as_json()
        out[name] = entry

    s1, s2 = figures.S1.judges.get(rater), figures.S2.judges.get(rater)
    with_slices("percent_agreement", s1.vs_humans.percent_agreement if s1 else None, "S1")
    with_slices("percent_agreement_s2", s2.vs_humans.percent_agreement if s2 else None, "S2")
    with_slices("cohen_kappa", s1.vs_humans.cohen_kappa if s1 else None, "kappa_S1")
    position = metrics.position.judges.get(rater)
    simple: dict[str, Result | None] = {
        "agreement_majority": s1.vs_majority.percent_agreement if s1 else None,
        "kappa_majority": s1.vs_majority.cohen_kappa if s1 else None,
        "scott_pi": s1.vs_humans.scott_pi if s1 else None,
        "gwet_ac": s1.vs_humans.gwet_ac if s1 else None,
        "position_consistency": position.consistency if position else None,
    }
    studies = metrics.studies
    sequential = studies.sequential if studies else None
    current = sequential.judges.get(rater) if sequential else None
    simple["agreement_cs"] = current.current if current else None
    gap = studies.refusal.gaps.get(rater) if studies else None
    for gap_row in gap.rows if gap else []:
        simple[f"refusal_gap.{gap_row.response_class}"] = gap_row.gap
    fit = studies.style.sensitivity.get(rater) if studies else None
    simple["length_bias"] = next(
        (row.net for row in (fit.rows if fit else []) if row.feature == "length"), None
    )
    for name, figure in simple.items():
        if figure is not None:
            out[name] = figure.as_json()
    ppi = studies.ppi if studies else None
    for name, by_judge in (
        ("ppi.win_rate", ppi.by_model if ppi else {}),
        ("ppi.class_win_rate", ppi.by_class if ppi else {}),
    ):
        table = by_judge.get(rater)
        if table is not None and table.rows:
            out[name] = {
                row.group: {
                    "value": row.ppi,
                    "ci": [row.ppi_low, row.ppi_high],
                    "n": row.n_labelled,
                    "reason": row.note or None,
                }
                for row in table.rows
            }
    return out
