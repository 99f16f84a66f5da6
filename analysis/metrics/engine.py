"""The two-rater engine: many agreement figures, and their bootstrap replicates, at once.

Every two-rater figure (a judge against the human votes, the majority or one person; people
among themselves; the constant answer) is a statistic of a q x q table that is a sum of
per-item tables. A :class:`Stack` lays those per-item tables side by side (one
:class:`Block` per figure); :func:`evaluate` sums them per prompt once, and ONE cluster
resampling (:func:`analysis.metrics.bootstrap.group_resample_sums`) gives every figure's
replicates. The figures of a snapshot (and of a slice) are then computed on the same
resamples, so two judges' intervals are paired, and the cost does not grow with the number
of figures. A prompt on which a figure has no pair of votes is drawn too and adds nothing,
so for these ratios only the number of contributing prompts varies between replicates.

The coefficients (METHODS.md section 2), with p_ij the joint proportions of two raters over
q categories and agreement weights w_ij, are (p_a - p_e) / (1 - p_e), p_a = sum w_ij p_ij:

- Cohen's kappa (Cohen 1960; weighted, Cohen 1968): p_e = sum w_ij p_i. p_.j
- Scott's pi (Scott 1955): p_e = sum w_ij pi_i pi_j, pi_k = (p_k. + p_.k) / 2
- Gwet's AC1 / AC2 (Gwet 2008; 2014, ch. 4): p_e = T_w / (q (q-1)) sum_k pi_k (1 - pi_k)

:func:`statistics` is the one implementation; the single-figure functions of
:mod:`analysis.metrics.agreement` (``cohen_kappa`` and friends) call it too. Pure numpy: no
Django, no pandas objects in or out except the cluster codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.metrics import bootstrap
from analysis.metrics.outcomes import (
    NO_ITEMS,
    ONE_CATEGORY,
    Estimate,
    Result,
    Undefined,
    result_json,
)

Weights = Literal["unweighted", "linear", "quadratic"]
COEFFICIENTS = ("percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac")
WEIGHTS: tuple[Weights, ...] = ("unweighted", "linear", "quadratic")
_EPS = 1e-12


def kind_of(name: str, weights: Weights = "unweighted") -> str:
    """The key of a coefficient with its weights: ``cohen_kappa``, ``cohen_kappa_linear``..."""
    return name if weights == "unweighted" or name == "percent_agreement" else f"{name}_{weights}"


# kind -> (coefficient, weights); percent agreement is always unweighted.
TWO_RATER_KINDS: dict[str, tuple[str, Weights]] = {
    kind_of(name, weights): (name, "unweighted" if name == "percent_agreement" else weights)
    for name in COEFFICIENTS
    for weights in WEIGHTS
}


def weight_matrix(q: int, weights: Weights = "unweighted") -> np.ndarray:
    """Agreement weights w_ij for q ordered categories (1 on the diagonal).

    unweighted: identity; linear: 1 - |i-j|/(q-1); quadratic: 1 - (i-j)^2/(q-1)^2.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be unweighted, linear or quadratic, got {weights!r}")
    if weights == "unweighted" or q < 2:
        return np.eye(q)
    distance = np.abs(np.subtract.outer(np.arange(q), np.arange(q))) / (q - 1)
    return 1.0 - (distance if weights == "linear" else distance**2)


def outer(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Per item, the q x q table of (rater vote, reference vote) pairs, flattened."""
    q = mine.shape[1]
    return (mine[:, :, np.newaxis] * theirs[:, np.newaxis, :]).reshape(len(mine), q * q)


def among(counts: np.ndarray) -> np.ndarray:
    """Per item, every unordered pair of distinct raters' votes, each orientation weighted
    1/2 (as :func:`analysis.metrics.human_ceiling` counts them), flattened."""
    q = counts.shape[1]
    table = counts[:, :, np.newaxis] * counts[:, np.newaxis, :]
    table[:, np.arange(q), np.arange(q)] -= counts
    return table.reshape(len(counts), q * q) / 2.0


def statistics(
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
    totals = np.asarray(totals, dtype=float)
    parts = totals @ margins
    n = parts[:, -1]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        r = parts[:, :q] / n[:, np.newaxis]
        c = parts[:, q : 2 * q] / n[:, np.newaxis]
        pi = (r + c) / 2.0
        for kind in kinds:
            name, weights = TWO_RATER_KINDS[kind]
            if weights == "unweighted":
                w, p_a = identity, parts[:, 2 * q] / n
            elif weights == "linear":
                w, p_a = linear, parts[:, 2 * q + 1] / n
            else:
                w = weight_matrix(q, weights)
                p_a = (totals @ w.ravel()) / n
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
            out[kind] = (np.where((n > 0) & (1.0 - p_e > _EPS), value, np.nan), p_e)
    return out


@dataclass(frozen=True)
class Block:
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


def _compact(table: np.ndarray, q: int) -> np.ndarray:
    """Per item: (agreeing pairs, pairs) of a flattened q x q table."""
    return np.column_stack([table[:, :: q + 1].sum(axis=1), table.sum(axis=1)])


@dataclass
class Stack:
    """Per-item q x q tables of many figures, side by side."""

    parts: list[np.ndarray] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
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
        self.blocks.append(Block(key, self.width, q, used, kinds, details, compact))
        self.parts.append(part)
        self.width += part.shape[1]
        self._matrix = None

    def matrix(self, n: int) -> np.ndarray:
        if self._matrix is None:
            self._matrix = np.hstack(self.parts) if self.parts else np.zeros((n, 0))
        return self._matrix

    def select(self, keep: Callable[[Block], bool], kinds: tuple[str, ...]) -> Stack:
        """The stack restricted to some blocks (and statistics), renumbered."""
        chosen = Stack()
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


def evaluate(
    rows: np.ndarray,
    clusters: np.ndarray,
    blocks: Sequence[Block],
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
        bootstrap.group_resample_sums(
            rows, groups, cluster_codes, n_groups, boot["n_boot"], boot["seed"]
        )
        if boot["n_boot"] > 0 and len(rows)
        else None
    )
    points: list[tuple[Block, str, np.ndarray, np.ndarray]] = []
    boots: list[np.ndarray] = []
    for block in blocks:
        width = block.stop - block.start
        point = block_statistics(block, totals[:, block.start : block.stop])
        resampled = (
            # An explicit row count: a block without columns (nobody rated anything) has
            # width 0, which reshape(-1, 0) cannot infer (issue 15.1).
            block_statistics(
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
        intervals = bootstrap.percentile_intervals(stacked, boot["level"])
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
                    **table_details(block, kind, cells, float(p_es[group])),
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


def block_statistics(block: Block, totals: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not block.compact:
        return statistics(totals, block.q, block.kinds)
    # (agreeing pairs, pairs) columns: the agreement share only.
    with np.errstate(divide="ignore", invalid="ignore"):
        value = totals[:, 0] / totals[:, 1]
    share = np.where(totals[:, 1] > 0, value, np.nan)
    return {"percent_agreement": (share, np.full(len(totals), np.nan))}


def table_details(
    block: Block, kind: str, cells: np.ndarray, p_e: float
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
