"""Metric snapshots: every figure of an audit or a dataset, stored with the counts behind it.

- :func:`snapshot_compute` reads the votes (``analysis.selectors``), computes the figures
  with :mod:`analysis.metrics` and stores a :class:`~analysis.models.MetricSnapshot`. Older
  snapshots stay: they are the trend.
- :func:`snapshot_request` is what a write calls (after a label, an adjudication, an import):
  it asks for a fresh snapshot once the transaction commits and never makes the caller wait.

Coalescing (a burst of labels triggers one recomputation) is ``config.tasks.enqueue``'s
``coalesce`` key, one per subject:

1. On commit, the request sets a *pending* flag for the subject in the shared cache; only
   the request that creates it sends the task, with a short countdown
   (``TRIBUNAL_SNAPSHOT_DELAY``, default 0.2 s) that gathers the burst; the others return.
2. The task (:func:`snapshot_refresh`) takes a per-process lock for the subject, *then*
   releases the flag (``coalesce_release``), *then* reads. A label that commits before the
   release is in the data read after it; one that commits after finds no flag and sends the
   next run. No label is left out, and at most one run per subject waits behind the one
   computing.
3. Each snapshot stores a *watermark* (counts and latest ids of labels, adjudications,
   verdicts, votes). A run whose watermark equals the latest snapshot's stops there, so a
   duplicate task costs a few aggregate queries.

Where the work runs, and what a broker outage does, is ``config.tasks``'s business.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from scipy import sparse

from analysis import selectors
from analysis.metrics import (
    S1,
    S2,
    CodedVotes,
    Estimate,
    Result,
    TiePolicy,
    Undefined,
    bradley_terry,
    code_votes,
    confusion_matrix,
    dawid_skene,
    fleiss_kappa,
    kendall_tau,
    krippendorff_alpha,
    left_preference,
    majority_vote,
    position_report,
    separability,
    spearman_rho,
    weight_matrix,
    wilson_interval,
)
from analysis.metrics.gate import GateResult, GateRuleError, evaluate_gate, parse_rules
from analysis.metrics.outcomes import NO_ITEMS, ONE_CATEGORY, result_json
from analysis.metrics.outcomes import json_number as _number
from analysis.models import MetricSnapshot, ReleaseGate
from analysis.selectors import MAJORITY, VoteTable
from analysis.studies import GATE_METRICS, HUMAN, StudyInputs, gate_figures, studies_compute
from annotation.models import Audit, AuditItem
from config.tasks import coalesce_pending, coalesce_release, enqueue
from corpus.models import Dataset, Pair
from judges.models import Judge

log = logging.getLogger(__name__)

SCHEMA = 1
N_BOOT = 1000
LEVEL = 0.95
POLICIES: tuple[TiePolicy, ...] = (S1, S2)
MAX_PAIRED_PEOPLE = 12  # up to 66 pairs of people, each with its own agreement and kappa
MAX_SLICE_ROWS = 100  # per dimension: the largest slices; the rest are counted, not shown
PENDING_SECONDS = 60  # the running flag of a computation outlives it by at most ten times this
_CATEGORIES = {"S1": S1.categories, "S2": S2.categories}


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


def _position(table: VoteTable, boot: dict[str, Any]) -> dict[str, Any]:
    judges: dict[str, Any] = {}
    orders = table.orders
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


# Two-rater figures, stacked. Every two-rater figure (a judge against the human votes, the
# majority or one person; people among themselves; the constant answer) is a statistic of a
# q x q table that is a sum of per-item tables. Those per-item tables are laid side by side,
# summed per prompt once, and ONE cluster resampling gives every figure's replicates: the
# figures of a snapshot (and of a slice) are then computed on the same resamples, so two
# judges' intervals are paired, and the cost does not grow with the number of figures.
# The formulas are those of analysis.metrics.agreement (METHODS.md section 2); the tests
# check each stored value against those functions. The resampled unit is the prompt, as
# there; a prompt on which a figure has no pair of votes is drawn too and adds nothing, so
# for these ratios only the number of contributing prompts varies between replicates.

TWO_RATER_KINDS: dict[str, tuple[str, str]] = {
    "percent_agreement": ("percent_agreement", "unweighted"),
    "cohen_kappa": ("cohen_kappa", "unweighted"),
    "cohen_kappa_linear": ("cohen_kappa", "linear"),
    "scott_pi": ("scott_pi", "unweighted"),
    "gwet_ac": ("gwet_ac", "unweighted"),
}
ALL_KINDS = ("percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac")
SLICE_KINDS = ("percent_agreement", "cohen_kappa")


def _outer(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per item, the q x q table of (rater vote, reference vote) pairs, flattened."""
    q = mine.shape[1]
    return (mine[:, :, np.newaxis] * theirs[:, np.newaxis, :]).reshape(len(mine), q * q)


def _among(counts: np.ndarray) -> np.ndarray:
    """Per item, every unordered pair of distinct raters' votes, each orientation weighted
    1/2 (as :func:`analysis.metrics.human_ceiling` counts them), flattened."""
    q = counts.shape[1]
    table = counts[:, :, np.newaxis] * counts[:, np.newaxis, :]
    table[:, np.arange(q), np.arange(q)] -= counts
    return table.reshape(len(counts), q * q) / 2.0


def _statistics(
    totals: np.ndarray, q: int, kinds: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(value, p_e) of each kind for stacked flattened q x q tables (NaN where undefined).

    Every coefficient is (p_a - p_e) / (1 - p_e), p_a = sum w_ij p_ij, with
    Cohen: p_e = sum w_ij p_i. p_.j; Scott: p_e = sum w_ij pi_i pi_j; Gwet's AC:
    p_e = T_w / (q (q-1)) sum_k pi_k (1 - pi_k), pi_k = (p_k. + p_.k) / 2.
    One matrix product gives every table's margins, weighted agreements and n.
    """
    identity, linear = weight_matrix(q, "unweighted"), weight_matrix(q, "linear")
    cells = np.arange(q * q)
    margins = np.zeros((q * q, 2 * q + 3))
    margins[cells, cells // q] = 1.0  # row i
    margins[cells, q + cells % q] = 1.0  # column j
    margins[:, 2 * q] = identity.ravel()
    margins[:, 2 * q + 1] = linear.ravel()
    margins[:, 2 * q + 2] = 1.0
    parts = np.asarray(totals, dtype=float) @ margins
    n = parts[:, -1]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        r = parts[:, :q] / n[:, np.newaxis]
        c = parts[:, q : 2 * q] / n[:, np.newaxis]
        pi = (r + c) / 2.0
        for kind in kinds:
            name, weights = TWO_RATER_KINDS[kind]
            w = identity if weights == "unweighted" else linear
            p_a = parts[:, 2 * q if weights == "unweighted" else 2 * q + 1] / n
            if name == "percent_agreement":
                out[kind] = (np.where(n > 0, p_a, np.nan), np.full(len(n), np.nan))
                continue
            if name == "cohen_kappa":
                p_e = np.einsum("ri,ri->r", r @ w, c)
            elif name == "scott_pi":
                p_e = np.einsum("ri,ri->r", pi @ w, pi)
            else:
                p_e = w.sum() / (q * (q - 1)) * np.einsum("ri,ri->r", pi, 1.0 - pi)
            value = (p_a - p_e) / (1.0 - p_e)
            out[kind] = (np.where((n > 0) & (1.0 - p_e > 1e-12), value, np.nan), p_e)
    return out


@dataclass(frozen=True)
class _Block:
    """One figure's columns in the stacked per-item tables.

    A full block holds the q x q table (q * q columns); a compact one, for figures that are
    only an agreement share, holds two columns: agreeing pairs and pairs.
    """

    key: tuple[str, ...]
    start: int
    q: int
    used: np.ndarray  # per item: does this figure have a pair of votes on it?
    kinds: tuple[str, ...]
    details: Mapping[str, Any] = field(default_factory=dict)
    compact: bool = False

    @property
    def stop(self) -> int:
        return self.start + (2 if self.compact else self.q * self.q)

    def subset(self, mask: np.ndarray) -> _Block:
        return replace(self, used=self.used[mask])


def _compact(table: np.ndarray, q: int) -> np.ndarray:
    """Per item: (agreeing pairs, pairs) of a flattened q x q table."""
    return np.column_stack([table[:, :: q + 1].sum(axis=1), table.sum(axis=1)])


@dataclass
class _Stack:
    """Per-item q x q tables of many figures, side by side."""

    parts: list[np.ndarray] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    width: int = 0
    _matrix: np.ndarray | None = None

    def add(
        self,
        key: tuple[str, ...],
        part: np.ndarray,
        q: int,
        kinds: tuple[str, ...],
        **details: Any,
    ) -> None:
        compact = kinds == ("percent_agreement",)
        used = part.sum(axis=1) > 0
        if compact:
            part = _compact(part, q)
        self.blocks.append(_Block(key, self.width, q, used, kinds, details, compact))
        self.parts.append(part)
        self.width += part.shape[1]
        self._matrix = None

    def matrix(self, n: int) -> np.ndarray:
        if self._matrix is None:
            self._matrix = np.hstack(self.parts) if self.parts else np.zeros((n, 0))
        return self._matrix

    def select(self, keep: Callable[[_Block], bool], kinds: tuple[str, ...]) -> _Stack:
        """The stack restricted to some blocks (and statistics), renumbered."""
        chosen = _Stack()
        matrix = self.matrix(0)
        for block in self.blocks:
            if keep(block):
                chosen.blocks.append(
                    replace(
                        block,
                        start=chosen.width,
                        kinds=tuple(k for k in block.kinds if k in kinds),
                    )
                )
                chosen.parts.append(matrix[:, block.start : block.stop])
                chosen.width += block.stop - block.start
        return chosen


def _per_item(votes: CodedVotes, raters: list[str], where: np.ndarray, n: int) -> np.ndarray:
    """Category counts of ``raters`` per item, on the items' order in the vote table."""
    counts = votes.counts(votes.rater_codes(raters))
    full = np.zeros((n, votes.q))
    found = where >= 0
    full[where[found]] = counts[found]
    return full


def _two_rater_stack(
    table: VoteTable, coded: Mapping[str, CodedVotes], humans: list[str], judges: list[str]
) -> _Stack:
    items = pd.Index(table.items["item"].to_numpy(), dtype=object)
    stack = _Stack()
    for policy in POLICIES:
        votes = coded[policy.name]
        where = items.get_indexer(pd.Index(votes.items, dtype=object))
        q, name = votes.q, policy.name
        kinds = (*ALL_KINDS, "cohen_kappa_linear") if policy is S1 else ALL_KINDS
        people = _per_item(votes, humans, where, len(items))
        majority = _per_item(votes, [MAJORITY], where, len(items))
        stack.add(("ceiling", name), _among(people), q, ALL_KINDS, policy=name)
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
                _outer(constant, reference),
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
                    _outer(each[first], each[second]),
                    q,
                    ("percent_agreement", "cohen_kappa"),
                    policy=name,
                )
        for judge in judges:
            mine = _per_item(votes, [judge], where, len(items))
            stack.add(
                ("judge", judge, "vs_humans", name), _outer(mine, people), q, kinds, policy=name
            )
            stack.add(
                ("judge", judge, "vs_majority", name), _outer(mine, majority), q, kinds, policy=name
            )
            for human in humans:
                stack.add(
                    ("judge", judge, "human", human, name),
                    _outer(mine, each[human]),
                    q,
                    ("percent_agreement",),
                    policy=name,
                )
    return stack


def _group_replicates(
    rows: np.ndarray,
    groups: np.ndarray,
    clusters: np.ndarray,
    n_groups: int,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Bootstrap replicates of each group's column sums, resampling clusters within groups.

    For every group (a slice, or the whole table as one group) this is the percentile
    bootstrap of :func:`analysis.metrics.resample_sums`: the group's clusters (prompts) drawn
    with replacement, as many as it has. Per replicate, each cluster gets a weight (how often
    it was drawn); a group's replicate is its clusters' weights times their sums.
    Result: (n_boot, n_groups, k).
    """
    k = rows.shape[1]
    base = int(clusters.max()) + 1 if len(clusters) else 1
    cluster_of, keys = pd.factorize(groups.astype(np.int64) * base + clusters, sort=True)
    n_clusters = len(keys)  # sorted keys: each group's clusters are contiguous
    group_of_cluster = np.asarray(keys // base, dtype=np.int64)
    per_group = np.bincount(group_of_cluster, minlength=n_groups)
    bounds = np.concatenate([[0], np.cumsum(per_group)])
    indicator = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (cluster_of, np.arange(len(rows)))),
        shape=(n_clusters, len(rows)),
    )
    sums = np.asarray(indicator @ rows.astype(np.float32))  # whole numbers and halves: exact
    size_of = per_group[group_of_cluster].astype(float)  # draws pick in their own group
    low = bounds[:-1][group_of_cluster]
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, n_groups, k))
    chunk = max(1, 4_000_000 // max(n_clusters, 1))  # bounds the draws at ~32 MB
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        drawn = (rng.random((size, n_clusters)) * size_of).astype(np.int64)
        drawn += low + (np.arange(size, dtype=np.int64) * n_clusters)[:, np.newaxis]
        weights = np.bincount(drawn.ravel(), minlength=size * n_clusters)
        weights = weights.reshape(size, n_clusters).astype(np.float32)
        for group in range(n_groups):
            lo, hi = bounds[group], bounds[group + 1]
            if hi > lo:  # a contiguous copy first: BLAS on a strided block is far slower
                block = np.ascontiguousarray(weights[:, lo:hi])
                out[start : start + size, group] = block @ sums[lo:hi]
    return out


def _percentile_intervals(replicates: np.ndarray, level: float) -> np.ndarray:
    """Per column, the equal-tailed percentile interval of the finite replicates (NaN if none).

    Column-wise ``np.quantile`` (linear interpolation) over a different number of finite
    values per column, in one sort.
    """
    finite = np.isfinite(replicates)
    ordered = np.sort(np.where(finite, replicates, np.inf), axis=0)
    count = finite.sum(axis=0)
    tail = (1.0 - level) / 2.0
    bounds = np.full((2, replicates.shape[1]), np.nan)
    columns = np.flatnonzero(count > 0)
    for row, share in enumerate((tail, 1.0 - tail)):
        position = share * (count[columns] - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, count[columns] - 1)
        weight = position - low
        bounds[row, columns] = (
            ordered[low, columns] * (1.0 - weight) + ordered[high, columns] * weight
        )
    return bounds


def _evaluate(
    rows: np.ndarray,
    clusters: np.ndarray,
    blocks: Sequence[_Block],
    boot: dict[str, Any],
    groups: np.ndarray | None = None,
    n_groups: int = 1,
    lean: bool = False,
) -> list[dict[tuple[str, ...], dict[str, Any]]]:
    """Every statistic of every block, per group, with percentile CIs.

    ``groups`` (an integer code per item, -1 = in no group) splits the items into slices;
    without it the whole table is one group. Each group's figures use the replicates of one
    cluster resampling of that group. ``lean`` keeps only ``pairs`` (and the bootstrap's
    counts) in the details: slice tables show no formula parts.
    """
    if groups is None:
        groups = np.zeros(len(rows), dtype=np.int64)
    inside = groups >= 0
    rows, clusters, groups = rows[inside], clusters[inside], groups[inside]
    used = {id(b): b.used[inside] for b in blocks}
    cluster_codes = pd.factorize(clusters)[0]
    member = sparse.csr_matrix(
        (np.ones(len(rows)), (groups, np.arange(len(rows)))), shape=(n_groups, len(rows))
    )
    totals = np.asarray(member @ rows)  # (n_groups, k)
    replicates = (
        _group_replicates(rows, groups, cluster_codes, n_groups, boot["n_boot"], boot["seed"])
        if boot["n_boot"] > 0 and len(rows)
        else None
    )
    points: list[tuple[_Block, str, np.ndarray, np.ndarray]] = []
    boots: list[np.ndarray] = []
    for block in blocks:
        width = block.stop - block.start
        point = _block_statistics(block, totals[:, block.start : block.stop])
        resampled = (
            # An explicit row count: a block without columns (nobody rated anything) has
            # width 0, which reshape(-1, 0) cannot infer (issue 15.1).
            _block_statistics(
                block,
                replicates[:, :, block.start : block.stop].reshape(
                    replicates.shape[0] * replicates.shape[1], width
                ),
            )
            if replicates is not None
            else None
        )
        for kind in block.kinds:
            points.append((block, kind, *point[kind]))
            if resampled is not None:
                boots.append(resampled[kind][0].reshape(-1, n_groups))
    intervals = failed = None
    if boots:
        stacked = np.concatenate(boots, axis=1)  # (n_boot, figures * groups)
        failed = 1.0 - np.isfinite(stacked).mean(axis=0)
        intervals = _percentile_intervals(stacked, boot["level"])
    counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    base = int(cluster_codes.max()) + 1 if len(cluster_codes) else 1
    for block in blocks:
        mask = used[id(block)]
        per_group = np.bincount(groups[mask], minlength=n_groups)
        keys = pd.unique(groups[mask].astype(np.int64) * base + cluster_codes[mask])
        counts[id(block)] = (per_group, np.bincount(keys // base, minlength=n_groups))
    out: list[dict[tuple[str, ...], dict[str, Any]]] = [{} for _ in range(n_groups)]
    for index, (block, kind, values, p_es) in enumerate(points):
        n_items, n_clusters = counts[id(block)]
        for group in range(n_groups):
            column = index * n_groups + group
            n = int(n_items[group])
            cells = totals[group, block.start : block.stop]
            if lean:
                details: dict[str, Any] = {
                    "pairs": float(cells.sum() if not block.compact else cells[1])
                }
            else:
                details = {
                    **block.details,
                    **_table_details(block, kind, cells, float(p_es[group])),
                }
            value = float(values[group])
            if n == 0 or details["pairs"] <= 0:
                result: Result = Undefined(NO_ITEMS, n=n, details=details)
            elif not math.isfinite(value):
                result = Undefined(ONE_CATEGORY, n=n, details=details)
            else:
                ci = None
                if intervals is not None and failed is not None:
                    low, high = intervals[:, column]
                    if math.isfinite(low) and math.isfinite(high):
                        ci = (float(low), float(high))
                    details["boot_undefined"] = float(failed[column])
                    details["clusters"] = int(n_clusters[group])
                result = Estimate(
                    value, n, ci=ci, level=boot["level"] if ci else None, details=details
                )
            out[group].setdefault(block.key, {})[kind] = result_json(result)
    return out


def _block_statistics(
    block: _Block, totals: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not block.compact:
        return _statistics(totals, block.q, block.kinds)
    # (agreeing pairs, pairs) columns: the agreement share only.
    with np.errstate(divide="ignore", invalid="ignore"):
        value = totals[:, 0] / totals[:, 1]
    share = np.where(totals[:, 1] > 0, value, np.nan)
    return {"percent_agreement": (share, np.full(len(totals), np.nan))}


def _table_details(
    block: _Block, kind: str, cells: np.ndarray, p_e: float
) -> dict[str, float | int | str]:
    """``pairs``, ``p_a`` and ``agreements`` or ``p_e``, as analysis.metrics reports them."""
    if block.compact:
        agreements, pairs = float(cells[0]), float(cells[1])
        details: dict[str, float | int | str] = {"pairs": pairs}
        if pairs > 0:
            details.update(p_a=agreements / pairs, agreements=agreements)
        return details
    pairs = float(cells.sum())
    details = {"pairs": pairs}
    if pairs > 0:
        trace = float(np.trace(cells.reshape(block.q, block.q)))
        if kind == "percent_agreement":
            details.update(p_a=trace / pairs, agreements=trace)
        else:
            if TWO_RATER_KINDS[kind][1] == "unweighted":
                details["p_a"] = trace / pairs
            details["p_e"] = p_e
    return details


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


def _slices(table: VoteTable, stack: _Stack, boot: dict[str, Any]) -> dict[str, Any]:
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
        per_group = _evaluate(matrix, prompts, chosen.blocks, boot, groups, len(shown), lean=True)
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
            "label": selectors.SLICE_LABELS.get(dimension, dimension),
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
    results = _evaluate(
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


def study_inputs(
    table: VoteTable, *, audit: Audit | None = None, dataset: Dataset | None = None
) -> StudyInputs:
    """What :mod:`analysis.studies` needs beyond the vote table: the pairs' classes and
    features, the judges' criteria and, for an audit, its design and the whole dataset's
    verdicts (the population of the prediction-powered estimates)."""
    votes = table.votes[table.votes["kind"].isin(["majority", "judge"])]
    verdicts = votes[["item", "rater", "value"]].replace({"rater": {MAJORITY: HUMAN}})
    items = table.items["item"]
    judges = {rater: info.label for rater, info in table.judges.items()}
    judge_ids = [info.judge_id for info in table.judges.values()]
    if audit is not None:
        dataset_id = audit.dataset_id
        sampled = AuditItem.objects.sampled().filter(audit=audit)  # no gold items
        pairs = Pair.objects.filter(audit_items__in=sampled)
        pair_filter: dict[str, Any] = {"pair__audit_items__in": sampled}
    else:
        assert dataset is not None
        dataset_id = dataset.pk
        pairs = Pair.objects.filter(dataset=dataset)
        pair_filter = {"pair__dataset": dataset}
    details = selectors.pair_details(pairs, dataset_id)
    study = StudyInputs(
        verdicts=verdicts,
        judges=judges,
        details=details.frame[details.frame["pair_id"].isin(items)],
        length_unit=details.length_unit,
        classifier=details.classifier,
        prompts=table.items.set_index("item")["prompt"],
        criteria=selectors.judge_criteria(pair_filter, judge_ids),
    )
    if audit is None:
        return study
    return replace(
        study,
        population=selectors.population_groups(dataset_id, judge_ids),
        design=selectors.audit_design(audit),
        labels=selectors.audit_label_sequence(audit),
    )


# --- snapshots -------------------------------------------------------------------------------


def _subject(audit: Audit | None, dataset: Dataset | None) -> tuple[str, int]:
    if (audit is None) == (dataset is None):
        raise ValueError("give an audit or a dataset, not both")
    if audit is not None:
        return "audit", audit.pk
    assert dataset is not None
    return "dataset", dataset.pk


def watermark_for(*, audit: Audit | None = None, dataset: Dataset | None = None) -> dict[str, Any]:
    if audit is not None:
        return selectors.audit_watermark(audit)
    assert dataset is not None
    return selectors.dataset_watermark(dataset)


def snapshot_is_current(
    snapshot: MetricSnapshot | None,
    *,
    audit: Audit | None = None,
    dataset: Dataset | None = None,
) -> bool:
    """True when nothing the snapshot was computed from has changed since."""
    if snapshot is None:
        return False
    return bool(snapshot.counts.get("watermark") == watermark_for(audit=audit, dataset=dataset))


def default_n_boot() -> int:
    """Bootstrap resamples per figure: ``TRIBUNAL_SNAPSHOT_BOOT`` or 1,000."""
    return int(getattr(settings, "TRIBUNAL_SNAPSHOT_BOOT", N_BOOT))


def snapshot_compute(
    *,
    audit: Audit | None = None,
    dataset: Dataset | None = None,
    n_boot: int | None = None,
    level: float = LEVEL,
    seed: int = 0,
) -> MetricSnapshot:
    """Compute every figure for an audit or a dataset now and store a new snapshot.

    Runs outside any long transaction: the reads are plain SELECTs and the one write is the
    snapshot row. ``n_boot`` defaults to ``TRIBUNAL_SNAPSHOT_BOOT`` (1,000).
    """
    _subject(audit, dataset)
    started = time.perf_counter()
    if n_boot is None:
        n_boot = default_n_boot()
    watermark = watermark_for(audit=audit, dataset=dataset)  # before the data: see selectors
    table = selectors.audit_votes(audit) if audit is not None else None
    if table is None:
        assert dataset is not None
        table = selectors.dataset_votes(dataset)
    metrics = figures_compute(table, n_boot=n_boot, level=level, seed=seed)
    study = study_inputs(table, audit=audit, dataset=dataset)
    metrics["studies"] = studies_compute(study, n_boot=n_boot, level=level, seed=seed)
    label_count = int(table.counts["human_votes"])
    counts = {**table.counts, "watermark": watermark}
    return MetricSnapshot.objects.create(
        audit=audit,
        dataset=dataset,
        label_count=label_count,
        counts=counts,
        metrics=metrics,
        compute_ms=round((time.perf_counter() - started) * 1000),
    )


# --- coalesced requests ----------------------------------------------------------------------


# analysis.tasks imports this module; the task is looked up by name so this never imports it.
SNAPSHOT_TASK = "analysis.snapshot_refresh"


def _coalesce_key(kind: str, pk: int) -> str:
    return f"analysis:snapshot:{kind}:{pk}"


def _running_key(kind: str, pk: int) -> str:
    return f"analysis:snapshot:running:{kind}:{pk}"


def _delay() -> float:
    return max(0.0, float(getattr(settings, "TRIBUNAL_SNAPSHOT_DELAY", 0.2)))


_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def _subject_lock(kind: str, pk: int) -> Iterator[None]:
    """One computation per subject at a time in this process; the next one waits its turn."""
    with _locks_guard:
        lock = _locks.setdefault((kind, pk), threading.Lock())
    with lock:
        yield


def snapshot_request(
    *, audit: Audit | None = None, dataset: Dataset | None = None, force: bool = False
) -> None:
    """Ask for a fresh snapshot once the current transaction commits (at once outside one).

    Coalesced (module docstring): of a burst of requests only the first schedules a run, and
    the run sees every label committed before it reads. The caller never waits for it, and
    a failure to reach the cache or the broker is logged, never raised: the label is already
    saved. ``force`` recomputes even when nothing changed (the report's button): it is sent
    at once, past any pending run.
    """
    kind, pk = _subject(audit, dataset)
    if force:
        enqueue(SNAPSHOT_TASK, kind=kind, pk=pk, force=True)
    else:
        key = _coalesce_key(kind, pk)
        enqueue(SNAPSHOT_TASK, kind=kind, pk=pk, force=False, countdown=_delay(), coalesce=key)


def snapshot_pending(*, audit: Audit | None = None, dataset: Dataset | None = None) -> bool:
    """True while a run is scheduled or computing (as far as this process's cache knows)."""
    kind, pk = _subject(audit, dataset)
    if coalesce_pending(_coalesce_key(kind, pk)):
        return True
    try:
        return bool(cache.get(_running_key(kind, pk)))
    except Exception:
        return False


def snapshot_refresh(*, kind: str, pk: int, force: bool = False) -> MetricSnapshot | None:
    """The task body: recompute unless the latest snapshot is current. Idempotent.

    Lock, then clear the pending flag, then read (module docstring). Returns the new
    snapshot, or None when nothing changed or the subject no longer exists.
    """
    with _subject_lock(kind, pk):
        coalesce_release(_coalesce_key(kind, pk))
        audit = Audit.objects.filter(pk=pk).first() if kind == "audit" else None
        dataset = Dataset.objects.filter(pk=pk).first() if kind == "dataset" else None
        if audit is None and dataset is None:
            return None
        latest = selectors.snapshot_latest(audit=audit, dataset=dataset)
        if not force and snapshot_is_current(latest, audit=audit, dataset=dataset):
            return None
        try:
            cache.set(_running_key(kind, pk), True, timeout=PENDING_SECONDS * 10)
        except Exception:
            log.exception("snapshot: could not set the running flag")
        try:
            return snapshot_compute(audit=audit, dataset=dataset)
        finally:
            try:
                cache.delete(_running_key(kind, pk))
            except Exception:
                log.exception("snapshot: could not clear the running flag")


# --- release gates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GateOutcome:
    """A gate's verdict on an audit and where its figures came from."""

    result: GateResult
    judge: Judge | None  # the judge version whose figures were read
    snapshot: MetricSnapshot | None
    rules: tuple[str, ...]


def gate_rules_parse(rules: Sequence[str]) -> list[str]:
    """The rules, stripped and checked; raises ``GateRuleError`` naming the rule and field."""
    cleaned = [r.strip() for r in rules if r and r.strip() and not r.strip().startswith("#")]
    parse_rules(cleaned, known_metrics=GATE_METRICS)
    return cleaned


def gate_set(*, audit: Audit, judge: Judge, rules: Sequence[str], created_by: Any) -> ReleaseGate:
    """Write a new gate for ``audit`` (the latest gate is the one in force).

    The gate is pinned to ``judge``'s fingerprint: figures of another version of that judge
    make it INCONCLUSIVE. Raises ``ValidationError`` (fields ``rules``, ``judge``).
    """
    try:
        cleaned = gate_rules_parse(rules)
    except GateRuleError as exc:
        raise ValidationError({"rules": str(exc)}) from None
    if judge.pk not in {j.pk for j in selectors.audit_judges(audit)}:
        raise ValidationError({"judge": f"{judge} is not one of this audit's judges"})
    with transaction.atomic():
        return ReleaseGate.objects.create(
            audit=audit,
            judge=judge,
            judge_fingerprint=judge.fingerprint,
            rules=cleaned,
            created_by=created_by,
        )


def gate_latest(audit: Audit) -> ReleaseGate | None:
    return ReleaseGate.objects.filter(audit=audit).select_related("judge").first()


def _gate_judge(snapshot: MetricSnapshot | None, pinned: Judge) -> Judge | None:
    """The newest version of the pinned judge (same name) that the snapshot has figures of."""
    if snapshot is None:
        return None
    ids = [j["judge_id"] for j in (snapshot.metrics.get("raters") or {}).get("judges", [])]
    return Judge.objects.filter(pk__in=ids, name=pinned.name).order_by("-version", "-pk").first()


def gate_evaluate(
    *,
    audit: Audit,
    gate: ReleaseGate | None = None,
    rules: Sequence[str] | None = None,
    judge: Judge | None = None,
    refresh: bool = True,
) -> GateOutcome:
    """Check a gate against the audit's latest figures: PASS, FAIL or INCONCLUSIVE.

    By default the audit's gate in force; ``rules`` and ``judge`` check other rules without
    storing them (as a CI pipeline keeping its rules in its own repository would). With
    ``refresh`` a stale snapshot is recomputed first, so the answer counts every label.
    Raises ``ValueError`` when there is no gate, ``GateRuleError`` for a rule it cannot read.
    """
    if rules is None:
        gate = gate or gate_latest(audit)
        if gate is None:
            raise ValueError(f"audit {audit.pk} has no release gate: write one first")
        rules, pinned, fingerprint = gate.rules, gate.judge, gate.judge_fingerprint
    else:
        if judge is None:
            raise ValueError("checking rules needs the judge they are about")
        pinned, fingerprint = judge, judge.fingerprint
    cleaned = gate_rules_parse(rules)
    snapshot = selectors.snapshot_latest(audit=audit)
    if refresh and not snapshot_is_current(snapshot, audit=audit):
        snapshot = snapshot_compute(audit=audit)
    used = _gate_judge(snapshot, pinned)
    figures = gate_figures(snapshot.metrics, f"j:{used.pk}") if snapshot and used else {}
    result = evaluate_gate(
        cleaned,
        figures,
        fingerprint=used.fingerprint if used else None,
        pinned_fingerprint=fingerprint,
    )
    return GateOutcome(result=result, judge=used, snapshot=snapshot, rules=tuple(cleaned))


def gate_json(audit: Audit, outcome: GateOutcome, gate: ReleaseGate | None) -> dict[str, Any]:
    """The JSON of a gate's verdict (the API's and ``manage.py gate --format json``'s)."""
    result = outcome.result.as_dict()
    judge = outcome.judge
    return {
        "audit": audit.pk,
        "gate": gate.pk if gate is not None else None,
        "status": result["status"],
        "exit_code": outcome.result.exit_code,
        "reason": result["reason"],
        "labels_needed": result["labels_needed"],
        "judge": {"id": judge.pk, "name": judge.name, "version": judge.version}
        if judge is not None
        else None,
        "pinned_fingerprint": gate.judge_fingerprint if gate is not None else None,
        "fingerprint": result["fingerprint"],
        "snapshot": outcome.snapshot.pk if outcome.snapshot is not None else None,
        "rules": result["rules"],
    }
