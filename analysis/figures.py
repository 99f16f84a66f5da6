"""Every figure of a snapshot, as JSON-serialisable data, from a vote table (no Django).

:func:`figures_compute` takes an :class:`~analysis.vote_table.VoteTable` (read by
:mod:`analysis.selectors`) and returns the snapshot's ``metrics`` apart from its
``studies`` (:mod:`analysis.studies`). The two-rater figures of every judge, person and
baseline come from one stack of per-item tables and one cluster resampling
(:mod:`analysis.metrics.engine`); the several-rater coefficients, position bias, consensus
and rankings from :mod:`analysis.metrics`. ``analysis.services.snapshot_compute`` stores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from analysis.metrics import (
    S1,
    S2,
    CodedVotes,
    Estimate,
    TiePolicy,
    Undefined,
    bradley_terry,
    code_votes,
    confusion_matrix,
    dawid_skene,
    drift,
    fleiss_kappa,
    kendall_tau,
    krippendorff_alpha,
    left_preference,
    majority_vote,
    position_report,
    separability,
    spearman_rho,
    wilson_interval,
)
from analysis.metrics.engine import Stack, among, evaluate, outer
from analysis.metrics.outcomes import json_number as _number
from analysis.metrics.outcomes import result_json
from analysis.metrics.threads import one_blas_thread
from analysis.vote_table import MAJORITY, SLICE_LABELS, VoteTable

SCHEMA = 1
N_BOOT = 1000
LEVEL = 0.95
POLICIES: tuple[TiePolicy, ...] = (S1, S2)
MAX_PAIRED_PEOPLE = 12  # up to 66 pairs of people, each with its own agreement and kappa
MAX_SLICE_ROWS = 100  # per dimension: the largest slices; the rest are counted, not shown
_CATEGORIES = {"S1": S1.categories, "S2": S2.categories}
ALL_KINDS = ("percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac")
SLICE_KINDS = ("percent_agreement", "cohen_kappa")


def _undefined(reason: str) -> dict[str, Any]:
    return result_json(Undefined(reason))


# --- figures ---------------------------------------------------------------------------------


def _reliability(
    coded: CodedVotes, humans: list[str], judges: list[str], boot: dict[str, Any]
) -> dict[str, Any]:
    """Fleiss' kappa and Krippendorff's alpha among the people, and with the judges."""
    everyone = [*humans, *judges]
    return {
        "ceiling": {
            "fleiss_kappa": result_json(fleiss_kappa(coded, raters=humans, **boot)),
            "krippendorff_alpha": result_json(krippendorff_alpha(coded, raters=humans, **boot)),
        },
        "all_raters": {
            "fleiss_kappa": result_json(fleiss_kappa(coded, raters=everyone, **boot)),
            "krippendorff_alpha": result_json(krippendorff_alpha(coded, raters=everyone, **boot)),
        },
    }


def _table(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "categories": [str(c) for c in frame.columns],
        "rows": [[int(v) for v in row] for row in frame.to_numpy()],
        "total": int(frame.to_numpy().sum()),
    }


def _confusion(coded: CodedVotes, humans: list[str], judges: list[str]) -> dict[str, Any]:
    """Rows: the judge's verdict; columns: the reference's (S1 categories)."""
    out: dict[str, Any] = {}
    for judge in judges:
        out[judge] = {
            "vs_majority": _table(confusion_matrix(coded, judge, reference=[MAJORITY])),
            "vs_humans": _table(confusion_matrix(coded, judge, reference=humans)),
        }
    return out


def _majority(table: VoteTable) -> pd.Series:
    votes = table.votes
    return votes[votes["rater"] == MAJORITY].set_index("item")["value"]


def _orders_figures(
    table: VoteTable, group: pd.DataFrame, people: pd.Series, boot: dict[str, Any]
) -> dict[str, Any]:
    """The figures other judge benchmarks quote, beside S1/S2: agreement with the people's
    majority counting a pair right only when both orders are (Auto-J, JudgeBench), each order
    alone, and position consistency per slice of the table (METHODS.md section 3)."""
    items = group["item"].to_numpy()
    ab, ba = group["outcome_ab"].to_numpy(), group["outcome_ba"].to_numpy()
    prompts = group["prompt"].to_numpy()
    truth = pd.Series(items).map(people).to_numpy(dtype=object)
    found = pd.notna(truth)
    agreement = (
        drift.order_agreement(ab, ba, np.where(found, truth, None), clusters=prompts, **boot)
        if found.any()
        else None
    )
    frame = table.items.set_index("item").reindex(items).reset_index()
    slices = [d for d in table.slices if d in frame]
    return {
        "agreement": agreement,
        "by_slice": drift.position_by_slice(ab, ba, frame, slices, clusters=prompts, **boot),
    }


def _position(table: VoteTable, boot: dict[str, Any]) -> dict[str, Any]:
    judges: dict[str, Any] = {}
    orders = table.orders
    people = _majority(table)
    for rater in table.judges:
        group = orders[orders["rater"] == rater]
        both = group["outcome_ab"].notna() & group["outcome_ba"].notna()
        known = group["consistent"].dropna()
        # MT-Bench's agreement files keep only "inconsistent" for a flipped verdict, not the
        # two verdicts: then the orders on file are the consistent ones, and the flag is used.
        flag_only = bool((group["consistent"].notna() & ~both).any())
        if both.any() and not flag_only:
            report = position_report(
                group["outcome_ab"].to_numpy(),
                group["outcome_ba"].to_numpy(),
                clusters=group["prompt"].to_numpy(),
                **boot,
            )
            judges[rater] = {
                "method": "both_orders",
                "consistency": result_json(report.consistency),
                "fairness": result_json(report.fairness),
                "n": report.n,
                "consistent": report.consistent,
                "primacy": report.primacy,
                "recency": report.recency,
                "other": report.other,
                "orders": _orders_figures(table, group, people, boot),
            }
        elif len(known):
            # Imported as "consistent or not" only (MT-Bench's "tie (inconsistent)").
            n, kept = len(known), int(known.astype(bool).sum())
            ci = wilson_interval(kept, n, boot["level"])
            judges[rater] = {
                "method": "consistent_flag",
                "consistency": result_json(
                    Estimate(kept / n, n, ci=ci, level=boot["level"], details={"ci": "Wilson"})
                ),
                "fairness": _undefined("the two orders' verdicts were not imported"),
                "n": n,
                "consistent": kept,
                "primacy": None,
                "recency": None,
                "other": None,
            }
        else:
            judges[rater] = {
                "method": None,
                "consistency": _undefined("verdicts ran in one order only"),
                "fairness": _undefined("verdicts ran in one order only"),
                "n": 0,
                "consistent": None,
                "primacy": None,
                "recency": None,
                "other": None,
            }
    annotators = []
    if not table.sides.empty:
        rates = left_preference(table.sides, level=boot["level"])
        for rater, row in rates.iterrows():
            annotators.append(
                {
                    "rater": str(rater),
                    "n": int(row["n"]),
                    "left": int(row["left"]),
                    "rate": _number(row["rate"]),
                    "ci": [_number(row["ci_low"]), _number(row["ci_high"])],
                    "p_value": _number(row["p_value"]),
                }
            )
    return {"judges": judges, "annotators": annotators}


def _consensus(table: VoteTable) -> dict[str, Any]:
    people = table.votes.loc[table.votes["kind"] == "human", ["item", "rater", "value"]]
    if people.empty:
        return {"majority": {}, "dawid_skene": _undefined("no human votes")}
    adjudicated = table.adjudicated.mask(table.adjudicated.eq("both_bad"), "tie")
    majority = majority_vote(people, policy=S1, tie_break="tie", adjudicated=adjudicated)
    decided = {str(k): int(v) for k, v in majority["decided_by"].value_counts().items()}
    out: dict[str, Any] = {
        "majority": {
            "items": len(majority),
            "decided_by": decided,
            "labels": {str(k): int(v) for k, v in majority["label"].value_counts().items()},
            "mean_support": _number(majority["support"].mean()),
        }
    }
    per_item = people.groupby("item").size()
    if len(table.humans) < 2 or not (per_item >= 2).any():
        out["dawid_skene"] = _undefined("fewer than 2 raters on every item")
        return out
    model = dawid_skene(people, policy=S1, adjudicated=adjudicated)
    common = model.labels.index.intersection(majority.index)
    same = model.labels.loc[common].eq(majority["label"].loc[common])
    out["dawid_skene"] = {
        "accuracy": {str(r): _number(v) for r, v in model.accuracy.items()},
        "prior": {str(c): _number(v) for c, v in model.prior.items()},
        "agrees_with_majority": _number(same.mean()) if len(same) else None,
        "iterations": model.iterations,
        "converged": bool(model.converged),
    }
    return out


def _ranking_json(ranking: Any) -> dict[str, Any]:
    if isinstance(ranking, Undefined):
        return result_json(ranking)
    rows = []
    for model, row in ranking.table.iterrows():
        rows.append(
            {
                "model": str(model),
                "strength": _number(row["strength"]),
                "ci": [_number(row["ci_low"]), _number(row["ci_high"])],
                "rank": int(row["rank"]),
                "wins": _number(row["wins"]),
                "games": _number(row["games"]),
            }
        )
    return {"n": ranking.n, "models": rows, "boot_undefined": _number(ranking.boot_undefined)}


def _rankings(table: VoteTable, boot: dict[str, Any]) -> dict[str, Any]:
    """Bradley-Terry from the people's votes and from each judge; how far the orders agree."""
    votes = table.votes[table.votes["model_a"].astype(bool) & table.votes["model_b"].astype(bool)]
    votes = votes[votes["model_a"].notna() & votes["model_b"].notna()]
    # Two samples of one model (possible in generic imports) say nothing about a ranking.
    votes = votes[votes["model_a"] != votes["model_b"]]
    models = pd.unique(pd.concat([votes["model_a"], votes["model_b"]]))
    if len(models) < 3:
        return {"reason": "fewer than 3 models named in the pairs"}
    columns = ["model_a", "model_b", "value", "prompt"]
    people = bradley_terry(votes.loc[votes["kind"] == "human", columns], cluster="prompt", **boot)
    out: dict[str, Any] = {"humans": _ranking_json(people), "judges": {}}
    for judge in table.judges:
        mine = bradley_terry(votes.loc[votes["rater"] == judge, columns], cluster="prompt", **boot)
        figures: dict[str, Any] = {"ranking": _ranking_json(mine)}
        if isinstance(mine, Undefined) or isinstance(people, Undefined):
            whose = "this judge" if isinstance(mine, Undefined) else "people"
            reason = f"no ranking from {whose}"
            figures.update(
                kendall_tau=_undefined(reason),
                spearman_rho=_undefined(reason),
                separability=_undefined(reason),
            )
        else:
            figures.update(
                kendall_tau=result_json(kendall_tau(people, mine)),
                spearman_rho=result_json(spearman_rho(people, mine)),
                separability=result_json(separability(mine)),
            )
        out["judges"][judge] = figures
    return out


def _per_item(votes: CodedVotes, raters: list[str], where: np.ndarray, n: int) -> np.ndarray:
    """Category counts of ``raters`` per item, on the items' order in the vote table."""
    counts = votes.counts(votes.rater_codes(raters))
    full = np.zeros((n, votes.q))
    found = where >= 0
    full[where[found]] = counts[found]
    return full


def _two_rater_stack(
    table: VoteTable, coded: Mapping[str, CodedVotes], humans: list[str], judges: list[str]
) -> Stack:
    items = pd.Index(table.items["item"].to_numpy(), dtype=object)
    stack = Stack()
    for policy in POLICIES:
        votes = coded[policy.name]
        where = items.get_indexer(pd.Index(votes.items, dtype=object))
        q, name = votes.q, policy.name
        kinds = (*ALL_KINDS, "cohen_kappa_linear") if policy is S1 else ALL_KINDS
        people = _per_item(votes, humans, where, len(items))
        majority = _per_item(votes, [MAJORITY], where, len(items))
        stack.add(("ceiling", name), among(people), q, ALL_KINDS, policy=name)
        for target, reference in (("vs_humans", people), ("vs_majority", majority)):
            if reference.sum():
                answer = int(np.argmax(reference.sum(axis=0)))  # ties: category order
                constant = np.zeros_like(reference)
                constant[:, answer] = (reference.sum(axis=1) > 0).astype(float)
                extra = {"answer": str(votes.categories[answer])}
            else:
                constant, extra = np.zeros_like(reference), {}
            stack.add(
                ("baseline", target, name),
                outer(constant, reference),
                q,
                ("percent_agreement",),
                policy=name,
                **extra,
            )
        each = {human: _per_item(votes, [human], where, len(items)) for human in humans}
        if len(humans) <= MAX_PAIRED_PEOPLE:
            for first, second in combinations(humans, 2):
                stack.add(
                    ("pair", first, second, name),
                    outer(each[first], each[second]),
                    q,
                    ("percent_agreement", "cohen_kappa"),
                    policy=name,
                )
        for judge in judges:
            mine = _per_item(votes, [judge], where, len(items))
            stack.add(
                ("judge", judge, "vs_humans", name), outer(mine, people), q, kinds, policy=name
            )
            stack.add(
                ("judge", judge, "vs_majority", name), outer(mine, majority), q, kinds, policy=name
            )
            for human in humans:
                stack.add(
                    ("judge", judge, "human", human, name),
                    outer(mine, each[human]),
                    q,
                    ("percent_agreement",),
                    policy=name,
                )
    return stack


def _overall(
    results: Mapping[tuple[str, ...], dict[str, Any]],
    reliability: Mapping[str, Mapping[str, Any]],
    humans: list[str],
    judges: list[str],
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for policy in POLICIES:
        name = policy.name
        figures[name] = {
            "ceiling": {**results[("ceiling", name)], **reliability[name]["ceiling"]},
            "baseline": {
                target: results[("baseline", target, name)]["percent_agreement"]
                for target in ("vs_humans", "vs_majority")
            },
            "judges": {
                judge: {
                    "vs_humans": results[("judge", judge, "vs_humans", name)],
                    "vs_majority": results[("judge", judge, "vs_majority", name)],
                    "vs_each_human": {
                        human: results[("judge", judge, "human", human, name)]["percent_agreement"]
                        for human in humans
                    },
                }
                for judge in judges
            },
            "all_raters": reliability[name]["all_raters"],
            "human_pairs": [
                {"a": key[1], "b": key[2], **value}
                for key, value in results.items()
                if key[0] == "pair" and key[3] == name
            ],
        }
    return figures


def _slices(table: VoteTable, stack: Stack, boot: dict[str, Any]) -> dict[str, Any]:
    """Per slice: each judge's S1/S2 agreement and S1 kappa with the people, and the ceiling,
    each slice from one resampling of its own prompts."""
    judges = list(table.judges)
    chosen = stack.select(
        lambda b: b.key[0] == "ceiling" or (b.key[0] == "judge" and b.key[2] == "vs_humans"),
        SLICE_KINDS,
    )
    matrix = chosen.matrix(len(table.items))
    prompts = table.items["prompt"].to_numpy()
    out: dict[str, Any] = {}
    for dimension in table.slices:
        codes, uniques = pd.factorize(table.items[dimension])
        sizes = np.bincount(codes[codes >= 0], minlength=len(uniques))
        largest = np.argsort(-sizes, kind="stable")[:MAX_SLICE_ROWS]
        shown = sorted(largest, key=lambda k: _sort_key(uniques[k]))
        group = np.full(len(uniques), -1, dtype=np.int64)
        group[shown] = np.arange(len(shown))
        groups = np.where(codes >= 0, group[np.maximum(codes, 0)], -1)
        per_group = evaluate(matrix, prompts, chosen.blocks, boot, groups, len(shown), lean=True)
        inside = groups >= 0
        distinct = pd.unique(groups[inside] * (int(prompts.max()) + 1) + prompts[inside])
        prompt_counts = np.bincount(distinct // (int(prompts.max()) + 1), minlength=len(shown))
        rows = []
        for position, code in enumerate(shown):
            results = per_group[position]
            row: dict[str, Any] = {
                "value": _number(uniques[code]),
                "items": int(sizes[code]),
                "prompts": int(prompt_counts[position]),
                "ceiling": {
                    p.name: results[("ceiling", p.name)]["percent_agreement"] for p in POLICIES
                },
                "judges": {},
            }
            for judge in judges:
                s1 = results[("judge", judge, "vs_humans", "S1")]
                s2 = results[("judge", judge, "vs_humans", "S2")]
                row["judges"][judge] = {
                    "S1": s1["percent_agreement"],
                    "S2": s2["percent_agreement"],
                    "kappa_S1": s1["cohen_kappa"],
                }
            rows.append(row)
        out[dimension] = {
            "label": SLICE_LABELS.get(dimension, dimension),
            "rows": rows,
            "omitted": max(0, len(uniques) - MAX_SLICE_ROWS),
        }
    return out


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float | np.integer | np.floating):
        return (0, value)
    return (1, str(value))


def _trend(figures: Mapping[str, Any], table: VoteTable, label_count: int) -> dict[str, Any]:
    """The few numbers a trend line needs, kept small so history reads cheaply."""

    def value(result: Mapping[str, Any]) -> Any:
        return result.get("value")

    judges = {}
    for judge in table.judges:
        judges[judge] = {
            "S1": value(figures["S1"]["judges"][judge]["vs_humans"]["percent_agreement"]),
            "S2": value(figures["S2"]["judges"][judge]["vs_humans"]["percent_agreement"]),
            "kappa_S1": value(figures["S1"]["judges"][judge]["vs_humans"]["cohen_kappa"]),
        }
    return {
        "label_count": label_count,
        "names": {j: info.label for j, info in table.judges.items()},
        "judges": judges,
        "ceiling": {
            "S1": value(figures["S1"]["ceiling"]["percent_agreement"]),
            "S2": value(figures["S2"]["ceiling"]["percent_agreement"]),
            "kappa_S1": value(figures["S1"]["ceiling"]["cohen_kappa"]),
        },
    }


def _coded(votes: pd.DataFrame, policy: TiePolicy) -> CodedVotes:
    coded = code_votes(votes, policy=policy, cluster="prompt")
    # Object-dtype rater names: the many rater lookups below are several times faster.
    return replace(coded, raters=pd.Index(list(coded.raters), dtype=object))


@one_blas_thread
def figures_compute(
    table: VoteTable, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0
) -> dict[str, Any]:
    """Every figure of a snapshot from a vote table, as JSON-serialisable data.

    Bootstrap CIs resample prompts (``cluster="prompt"``) with ``n_boot`` replicates; the
    same seed throughout, so figures over one table share their resamples.
    """
    boot: dict[str, Any] = {"n_boot": n_boot, "level": level, "seed": seed}
    humans, judges = list(table.humans), list(table.judges)
    columns = ["item", "rater", "value", "prompt"]
    coded = {p.name: _coded(table.votes[columns], p) for p in POLICIES}
    stack = _two_rater_stack(table, coded, humans, judges)
    results = evaluate(
        stack.matrix(len(table.items)), table.items["prompt"].to_numpy(), stack.blocks, boot
    )[0]
    reliability = {p.name: _reliability(coded[p.name], humans, judges, boot) for p in POLICIES}
    figures = _overall(results, reliability, humans, judges)
    label_count = int(table.counts.get("human_votes", 0))
    return {
        "schema": SCHEMA,
        "subject": table.subject,
        "settings": {
            "n_boot": n_boot,
            "level": level,
            "seed": seed,
            "cluster": "prompt",
            "policies": {
                "S1": "ties kept; a verdict that flips when the sides swap counts as a tie",
                "S2": "only votes where both raters prefer a side",
            },
            "categories": {k: list(v) for k, v in _CATEGORIES.items()},
            "majority": "majority of the people's votes; no strict majority is a tie; "
            "an adjudication overrides it",
        },
        "raters": {
            "humans": [
                {"id": r, "name": name, "votes": int((table.votes["rater"] == r).sum())}
                for r, name in table.humans.items()
            ],
            "judges": [
                {
                    "id": info.id,
                    "judge_id": info.judge_id,
                    "name": info.name,
                    "version": info.version,
                    "label": info.label,
                    "model_id": info.model_id,
                    "verdicts": info.verdicts,
                    "unparsed": info.unparsed,
                }
                for info in table.judges.values()
            ],
        },
        "progress": table.progress,
        "figures": figures,
        "confusion": _confusion(coded["S1"], humans, judges),
        "position": _position(table, boot),
        "consensus": _consensus(table),
        "ranking": _rankings(table, boot),
        "slices": _slices(table, stack, boot),
        "trend": _trend(figures, table, label_count),
    }
