"""Per-criterion verdicts: what drives a judge's overall verdict, and the humans'?

The SOS-Bench template (Feuer et al. 2024, "Style Outweighs Substance", arXiv 2409.15268) has
the judge give a verdict per criterion (correctness, completeness, safety, conciseness, style)
before its overall one. The style-over-substance check asks how much each criterion explains
the judge's overall verdict, next to how much the *same* criterion verdicts explain the humans'
overall verdict on the same pairs. A judge whose verdict follows its own "style" column far
more than the humans' verdict does is rewarding style over substance.

Input: one row per pair with a column per criterion and two overall columns (``judge`` and
``human`` by default). Criterion cells are the judge's graded tokens ``A>>B`` (+2), ``A>B``
(+1), ``A=B`` (0), ``B>A`` (-1), ``B>>A`` (-2), or plain ``A`` (+1) / ``B`` (-1) / ``tie`` (0),
or numbers. Overall cells are ``A`` (1), ``B`` (0), ``tie`` / ``both_bad`` (0.5), graded
tokens read by their sign, or the numbers 1 / 0 / 0.5.

Figures, per criterion and per target (judge overall, human overall):

- ``agreement``: share of pairs where the criterion and the overall verdict point to the same
  response, among pairs where neither is a tie; Wilson interval.
- ``beta``: standardised coefficient (b_k sd(x_k) / sd(y)) in the joint OLS of the overall
  outcome on all criteria, interval from HC1 standard errors (statsmodels).
- ``dominance``: the general dominance weight (Budescu 1993; Azen & Budescu 2003): the
  increase in R^2 from adding the criterion, averaged over the subsets of the other criteria,
  first within each subset size, then over sizes. The weights add up to the full model's R^2,
  so ``share`` = dominance / R^2 is "the part of the explained variance owed to this criterion".

The headline is the dominance share, because criterion verdicts are strongly collinear (a judge
that prefers A tends to prefer it on every criterion): joint-regression coefficients then
swing with small changes in the data, while dominance weights split the shared part evenly and
do not depend on the order in which criteria are entered. ``dominance_diff`` (judge minus
human) and the style share's difference get percentile intervals from a bootstrap over pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.metrics import bootstrap
from analysis.metrics.outcomes import Estimate, Result, Undefined, normal_z
from analysis.metrics.position import wilson_interval
from analysis.metrics.votes import refuse_first, require_columns

SOS_CRITERIA: Final = ("correctness", "completeness", "safety", "conciseness", "style")
STYLE_CRITERIA: Final = ("conciseness", "style")
MAX_CRITERIA: Final = 10  # 2^10 subsets per bootstrap replicate is still quick

_CRITERION_SCORES: Final[Mapping[str, float]] = {
    "a>>b": 2.0,
    "a>b": 1.0,
    "a=b": 0.0,
    "b=a": 0.0,
    "b>a": -1.0,
    "b>>a": -2.0,
    "a": 1.0,
    "b": -1.0,
    "tie": 0.0,
    "both_bad": 0.0,
}
_OVERALL_SCORES: Final[Mapping[str, float]] = {
    "a>>b": 1.0,
    "a>b": 1.0,
    "a": 1.0,
    "model_a": 1.0,
    "a=b": 0.5,
    "b=a": 0.5,
    "tie": 0.5,
    "both_bad": 0.5,
    "b>a": 0.0,
    "b>>a": 0.0,
    "b": 0.0,
    "model_b": 0.0,
}


def _scores(
    frame: pd.DataFrame, column: str, table: Mapping[str, float], allowed: tuple[float, float]
) -> np.ndarray:
    values = frame[column]
    numeric = pd.to_numeric(values, errors="coerce")
    spelled = values.astype(str).str.strip().str.lower().map(table)
    out = numeric.where(numeric.notna(), spelled)
    low, high = allowed
    refuse_first(frame, out.isna() | (out < low) | (out > high), column, "is not a verdict")
    return out.to_numpy(dtype=float)


@dataclass(frozen=True)
class CriteriaReport:
    """Per-criterion importance for the judge's and the humans' overall verdicts.

    ``table`` has one row per criterion (columns described in :func:`criteria_importance`);
    ``r2`` maps ``"judge"`` / ``"human"`` to the full model's R^2; ``style_share`` maps
    ``"judge"``, ``"human"`` and ``"difference"`` to the share of explained variance owed
    to the style criteria, with bootstrap intervals.
    """

    table: pd.DataFrame
    r2: Mapping[str, Result]
    style_share: Mapping[str, Result]
    n: int
    dropped: Mapping[str, str]


def criteria_importance(
    frame: pd.DataFrame,
    *,
    criteria: Sequence[str] = SOS_CRITERIA,
    judge: str = "judge",
    human: str = "human",
    style: Sequence[str] = STYLE_CRITERIA,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
    cluster: str | None = None,
) -> CriteriaReport:
    """How much each criterion explains the judge's and the humans' overall verdicts.

    ``frame``: ``pair_id``, one column per criterion, and the overall columns ``judge`` and
    ``human``. Rows missing any of these are left out. ``cluster`` names a column (say the
    prompt) whose groups the bootstrap resamples whole.

    ``table`` columns per criterion: ``{t}_agreement``, ``{t}_agreement_low``,
    ``{t}_agreement_high``, ``{t}_beta``, ``{t}_beta_low``, ``{t}_beta_high``,
    ``{t}_dominance``, ``{t}_share`` for t in judge, human; then ``dominance_diff`` with
    ``diff_low`` / ``diff_high`` (judge minus human; bootstrap). Constant criteria are
    dropped (listed in ``dropped``).
    """
    if isinstance(criteria, str):
        raise ValueError(f"give a list of criteria, not the string {criteria!r}")
    columns = ["pair_id", *criteria, judge, human]
    if cluster is not None:
        columns.append(cluster)
    data = require_columns(frame, columns, "criteria frame")
    data = data.dropna(subset=[*criteria, judge, human]).reset_index(drop=True)
    n = len(data)
    if n == 0:
        reason = "no pairs with every criterion and both overall verdicts"
        empty = Undefined(reason)
        return CriteriaReport(pd.DataFrame(), {"judge": empty, "human": empty}, {}, 0, dropped={})
    x_all = {c: _scores(data, c, _CRITERION_SCORES, (-2.0, 2.0)) for c in criteria}
    targets = {
        "judge": _scores(data, judge, _OVERALL_SCORES, (0.0, 1.0)),
        "human": _scores(data, human, _OVERALL_SCORES, (0.0, 1.0)),
    }
    dropped = {c: "the criterion never varies" for c in criteria if np.ptp(x_all[c]) == 0}
    kept = [c for c in criteria if c not in dropped]
    if len(kept) > MAX_CRITERIA:
        raise ValueError(f"at most {MAX_CRITERIA} criteria, got {len(kept)}")
    x = np.column_stack([x_all[c] for c in kept]) if kept else np.zeros((n, 0))
    constant = [t for t, y in targets.items() if np.ptp(y) == 0]
    if not kept or constant:
        why = (
            "every criterion is constant"
            if not kept
            else f"the {constant[0]} overall verdict never varies"
        )
        undefined = Undefined(why, n=n)
        return CriteriaReport(
            pd.DataFrame(),
            {"judge": undefined, "human": undefined},
            {},
            n,
            dropped=dropped,
        )
    z = normal_z(level)
    rows: dict[str, dict[str, Any]] = {c: {"criterion": c} for c in kept}
    r2: dict[str, Result] = {}
    for name, y in targets.items():
        weights = general_dominance(x, y)
        full = float(weights.sum())
        r2[name] = Estimate(value=full, n=n, details={"criteria": len(kept)})
        beta, low, high = _standardised_coefficients(x, y, z)
        for k, criterion in enumerate(kept):
            agree, total = _agreement(x[:, k], y)
            interval = wilson_interval(agree, total, level) or (np.nan, np.nan)
            rows[criterion].update(
                {
                    f"{name}_agreement": agree / total if total else np.nan,
                    f"{name}_agreement_low": interval[0],
                    f"{name}_agreement_high": interval[1],
                    f"{name}_agreement_n": total,
                    f"{name}_beta": beta[k],
                    f"{name}_beta_low": low[k],
                    f"{name}_beta_high": high[k],
                    f"{name}_dominance": weights[k],
                    f"{name}_share": weights[k] / full if full > 0 else np.nan,
                }
            )
    style_index = [kept.index(c) for c in style if c in kept]
    diff, style_share = _bootstrap_dominance(
        x,
        targets["judge"],
        targets["human"],
        style_index,
        n_boot=n_boot,
        level=level,
        seed=seed,
        clusters=data[cluster].to_numpy() if cluster is not None else None,
    )
    for k, criterion in enumerate(kept):
        rows[criterion]["dominance_diff"] = (
            rows[criterion]["judge_dominance"] - rows[criterion]["human_dominance"]
        )
        rows[criterion]["diff_low"], rows[criterion]["diff_high"] = diff[k]
    table = pd.DataFrame(list(rows.values()))
    return CriteriaReport(table=table, r2=r2, style_share=style_share, n=n, dropped=dropped)


def _agreement(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    criterion = np.sign(x)
    overall = np.sign(y - 0.5)
    both = (criterion != 0) & (overall != 0)
    return int((criterion[both] == overall[both]).sum()), int(both.sum())


def _standardised_coefficients(
    x: np.ndarray, y: np.ndarray, z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import statsmodels.api as sm  # here, not at the top: only the snapshot task fits models

    design = sm.add_constant(x, has_constant="add")
    fit = sm.OLS(y, design).fit(cov_type="HC1")
    scale = x.std(axis=0, ddof=1) / y.std(ddof=1)
    beta = np.asarray(fit.params, dtype=float)[1:] * scale
    se = np.asarray(fit.bse, dtype=float)[1:] * scale
    return beta, beta - z * se, beta + z * se


def _subset_r2(cov: np.ndarray, subsets: Sequence[tuple[int, ...]], y: int) -> np.ndarray:
    """R^2 of y on each subset of predictors, for a batch of covariance matrices (r, p, p)."""
    out = np.zeros((cov.shape[0], len(subsets)))
    var_y = cov[:, y, y]
    for j, subset in enumerate(subsets):
        if not subset:
            continue
        index = list(subset)
        block = cov[:, index][:, :, index]
        cross = cov[:, index, y]
        with np.errstate(invalid="ignore", divide="ignore"):
            try:
                solved = np.linalg.solve(block, cross[..., np.newaxis])[..., 0]
            except np.linalg.LinAlgError:
                solved = np.einsum("rij,rj->ri", np.linalg.pinv(block), cross)
            out[:, j] = (cross * solved).sum(axis=1) / var_y
    return out


def _dominance_from_r2(r2: np.ndarray, subsets: Sequence[tuple[int, ...]], p: int) -> np.ndarray:
    """General dominance weights (r, p) from the R^2 of every subset (r, 2^p)."""
    position = {subset: j for j, subset in enumerate(subsets)}
    weights = np.zeros((r2.shape[0], p))
    for k in range(p):
        others = [i for i in range(p) if i != k]
        for size in range(p):
            total = np.zeros(r2.shape[0])
            for subset in combinations(others, size):
                with_k = tuple(sorted((*subset, k)))
                total += r2[:, position[with_k]] - r2[:, position[subset]]
            weights[:, k] += total / comb(p - 1, size)
        weights[:, k] /= p
    return weights


def _all_subsets(p: int) -> list[tuple[int, ...]]:
    return [s for size in range(p + 1) for s in combinations(range(p), size)]


def general_dominance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """General dominance weights of the columns of ``x`` for outcome ``y`` (sum = R^2)."""
    data = np.column_stack([x, y])
    cov = np.cov(data, rowvar=False)[np.newaxis, :, :]
    p = x.shape[1]
    subsets = _all_subsets(p)
    return _dominance_from_r2(_subset_r2(cov, subsets, p), subsets, p)[0]


def _bootstrap_dominance(
    x: np.ndarray,
    judge: np.ndarray,
    human: np.ndarray,
    style_index: Sequence[int],
    *,
    n_boot: int,
    level: float,
    seed: bootstrap.Seed,
    clusters: Any,
) -> tuple[list[tuple[float, float]], dict[str, Result]]:
    """Percentile intervals of the dominance differences and of the style shares."""
    n, p = x.shape
    data = np.column_stack([x, judge, human])
    q = data.shape[1]
    point_cov = np.cov(data, rowvar=False)[np.newaxis]
    subsets = _all_subsets(p)

    def shares(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        keep = [*range(p)]
        weights = {}
        for name, column in (("judge", p), ("human", p + 1)):
            index = [*keep, column]
            sub = cov[:, index][:, :, index]
            weights[name] = _dominance_from_r2(_subset_r2(sub, subsets, p), subsets, p)
        judge_w, human_w = weights["judge"], weights["human"]
        with np.errstate(invalid="ignore", divide="ignore"):
            judge_style = judge_w[:, style_index].sum(axis=1) / judge_w.sum(axis=1)
            human_style = human_w[:, style_index].sum(axis=1) / human_w.sum(axis=1)
        return judge_w, human_w, judge_style, human_style

    _, _, judge_style, human_style = shares(point_cov)
    style: dict[str, Result] = {}
    if n_boot <= 0 or n < 3:
        intervals = [(np.nan, np.nan)] * p
        for name, value in (
            ("judge", judge_style[0]),
            ("human", human_style[0]),
            ("difference", judge_style[0] - human_style[0]),
        ):
            style[name] = _share_result(value, n, style_index, None, level)
        return intervals, style
    # Contributions whose column sums give the first and second moments: [1, z, z z'].
    outer = (data[:, :, np.newaxis] * data[:, np.newaxis, :]).reshape(n, q * q)
    contributions = np.column_stack([np.ones(n), data, outer])
    totals = bootstrap.resample_sums(contributions, clusters=clusters, n_boot=n_boot, seed=seed)
    count = totals[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = totals[:, 1 : 1 + q] / count[:, np.newaxis]
        second = totals[:, 1 + q :].reshape(-1, q, q) / count[:, np.newaxis, np.newaxis]
        cov = second - mean[:, :, np.newaxis] * mean[:, np.newaxis, :]
    judge_b, human_b, judge_style_b, human_style_b = shares(cov)
    diff = judge_b - human_b
    intervals = [
        bootstrap.percentile_interval(diff[:, k], level) or (np.nan, np.nan) for k in range(p)
    ]
    for name, value, replicates in (
        ("judge", judge_style[0], judge_style_b),
        ("human", human_style[0], human_style_b),
        ("difference", judge_style[0] - human_style[0], judge_style_b - human_style_b),
    ):
        style[name] = _share_result(value, n, style_index, replicates, level)
    return intervals, style


def _share_result(
    value: float, n: int, style_index: Sequence[int], replicates: Any, level: float
) -> Result:
    if not style_index:
        return Undefined("none of the style criteria is among the criteria", n=n)
    if not np.isfinite(value):
        return Undefined("the criteria explain none of the overall verdict", n=n)
    ci = bootstrap.percentile_interval(replicates, level) if replicates is not None else None
    return Estimate(value=float(value), n=n, ci=ci, level=level if ci else None)
