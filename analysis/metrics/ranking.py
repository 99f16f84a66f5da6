"""Rank models from pairwise votes (Bradley-Terry) and compare two rankings.

Bradley-Terry (Bradley & Terry 1952): P(i beats j) = 1 / (1 + exp(-(b_i - b_j))). A tie counts
as half a win for each side (``both_bad`` is a tie). The maximum-likelihood strengths are found
by Newton's method with step halving on the concave log-likelihood
sum_ij w_ij log sigmoid(b_i - b_j), w_ij = wins of i over j, fitted for every bootstrap
replicate at once. Strengths are on the logit scale, centred to mean 0 (multiply by
400 / ln 10 for Elo points). The MLE exists only when the "won at least half a game against"
graph is strongly connected (Zermelo 1929; Hunter 2004, "MM algorithms for generalized
Bradley-Terry models"); otherwise the result is undefined, unless ``pseudo_count`` adds that
many virtual ties between every two models.

METHODS.md section 7: compare rankings with Kendall's tau and Spearman's rho (scipy), and
report separability, the share of model pairs whose CIs do not overlap (Li et al. 2024,
"From crowdsourced data to high-quality benchmarks", arXiv 2406.11939).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analysis.metrics import bootstrap
from analysis.metrics.outcomes import BOTH_BAD, NO_ITEMS, TIE, A, B, Estimate, Result, Undefined
from analysis.metrics.votes import require_columns, show

NOT_CONNECTED = (
    "strengths are not identifiable: some group of models never won (or never lost) against "
    "the rest; add comparisons or set pseudo_count"
)


@dataclass(frozen=True)
class Ranking:
    """Bradley-Terry strengths, one row per model, best first.

    ``table`` columns: ``strength`` (logit scale, mean 0), ``ci_low``, ``ci_high`` (NaN when
    no bootstrap ran), ``rank`` (1 = strongest), ``wins`` (ties count 1/2) and ``games``.
    ``boot_undefined`` is the share of bootstrap replicates in which strengths did not exist.
    """

    table: pd.DataFrame
    n: int
    level: float | None = None
    boot_undefined: float = 0.0

    defined = True


def _comparison_codes(comparisons: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    frame = require_columns(comparisons, ["model_a", "model_b", "value"], "comparisons")
    frame = frame.reset_index(drop=True)
    frame = frame[frame["value"].notna()]
    value = frame["value"].mask(frame["value"].eq(BOTH_BAD), TIE)
    unknown = ~value.isin([A, B, TIE])
    if unknown.any():
        row = frame.index[unknown.to_numpy()][0]
        raise ValueError(f"row {row}: value {show(value[row])} is not A, B, tie or both_bad")
    same = frame["model_a"].eq(frame["model_b"])
    if same.any():
        row = frame.index[same.to_numpy()][0]
        raise ValueError(f"row {row} compares model {show(frame.loc[row, 'model_a'])} with itself")
    codes, models = pd.factorize(pd.concat([frame["model_a"], frame["model_b"]]), sort=True)
    half = len(frame)
    return pd.Index(models), np.column_stack([codes[:half], codes[half:]]), value.to_numpy()


def _win_contributions(pair: np.ndarray, value: np.ndarray, m: int) -> sparse.csr_matrix:
    """One sparse row per comparison in the flattened m x m win matrix (ties: 1/2 each way)."""
    a, b = pair[:, 0], pair[:, 1]
    rows = np.arange(len(value))
    is_a, is_b, is_tie = value == A, value == B, value == TIE
    row = np.concatenate([rows[is_a], rows[is_b], rows[is_tie], rows[is_tie]])
    col = np.concatenate(
        [
            a[is_a] * m + b[is_a],
            b[is_b] * m + a[is_b],
            a[is_tie] * m + b[is_tie],
            b[is_tie] * m + a[is_tie],
        ]
    )
    data = np.concatenate(
        [np.ones(is_a.sum()), np.ones(is_b.sum()), np.full(2 * is_tie.sum(), 0.5)]
    )
    return sparse.csr_matrix((data, (row, col)), shape=(len(value), m * m))


def _strongly_connected(wins: np.ndarray) -> np.ndarray:
    """Per replicate: is the digraph i -> j (i won something against j) strongly connected?"""
    m = wins.shape[1]
    reach = ((wins > 0) | np.eye(m, dtype=bool)).astype(float)
    for _ in range(int(np.ceil(np.log2(max(m, 2))))):
        reach = (reach @ reach > 0).astype(float)
    return np.asarray(reach.reshape(len(wins), -1).all(axis=1), dtype=bool)


def _log_win_probability(strength: np.ndarray) -> np.ndarray:
    """log P(i beats j) = log sigmoid(b_i - b_j) = -logaddexp(0, b_j - b_i), for a stack of
    strength vectors.

    numpy computes logaddexp(0, d) as max(d, 0) + log1p(exp(-|d|)), and logaddexp(0, -|d|)
    is that second term exactly; |d| is the same for (i, j) and (j, i). So each unordered
    pair costs one exp and one log1p instead of two of each, with the same floats (the line
    search of :func:`fit_strengths` spends most of its time here).
    """
    r, m = strength.shape
    i, j = np.triu_indices(m, k=1)
    upper = strength[:, j] - strength[:, i]  # b_j - b_i; the (j, i) entry is its negative
    shared = np.logaddexp(0.0, -np.abs(upper))
    out = np.empty((r, m * m))
    out[:, i * m + j] = -(np.maximum(upper, 0.0) + shared)
    out[:, j * m + i] = -(np.maximum(-upper, 0.0) + shared)
    out[:, np.arange(m) * (m + 1)] = -np.logaddexp(0.0, 0.0)  # b_i - b_i = 0
    return out.reshape(r, m, m)


def fit_strengths(wins: np.ndarray, *, max_iter: int = 100, tol: float = 1e-9) -> np.ndarray:
    """Bradley-Terry MLE for a stack of win matrices (r x m x m); NaN rows where none exists.

    ``wins[k, i, j]`` is how often i beat j in replicate k (ties as 1/2). Newton steps with
    step halving on the log-likelihood sum_ij wins_ij log sigmoid(b_i - b_j); the gauge is
    fixed by centring strengths to mean 0.
    """
    wins = np.asarray(wins, dtype=float)
    r, m, _ = wins.shape
    ok = _strongly_connected(wins)
    games = wins + wins.transpose(0, 2, 1)
    total_wins = wins.sum(axis=2)
    strength = np.zeros((r, m))
    log_p = np.full((r, m, m), np.log(0.5))
    likelihood = (wins * log_p).sum(axis=(1, 2))
    diagonal = np.arange(m)
    active = np.flatnonzero(ok)
    for _ in range(max_iter):
        if active.size == 0:
            break
        p = np.exp(log_p[active])
        g = games[active]
        gradient = total_wins[active] - (g * p).sum(axis=2)
        curvature = g * p * (1.0 - p)
        information = -curvature
        information[:, diagonal, diagonal] = curvature.sum(axis=2)
        # Adding 1/m everywhere fixes the gauge (strengths sum to 0) without changing the step.
        step = np.linalg.solve(information + 1.0 / m, gradient[:, :, np.newaxis])[:, :, 0]
        scale = np.ones(active.size)
        pending = np.arange(active.size)
        for _ in range(40):
            rows = active[pending]
            candidate = strength[rows] + scale[pending, np.newaxis] * step[pending]
            candidate_log_p = _log_win_probability(candidate)
            candidate_likelihood = (wins[rows] * candidate_log_p).sum(axis=(1, 2))
            better = candidate_likelihood >= likelihood[rows] - 1e-12 * np.abs(likelihood[rows])
            accepted = rows[better]
            strength[accepted] = candidate[better]
            log_p[accepted] = candidate_log_p[better]
            likelihood[accepted] = candidate_likelihood[better]
            pending = pending[~better]
            if pending.size == 0:
                break
            scale[pending] /= 2.0
        moved = np.abs(scale[:, np.newaxis] * step).max(axis=1)
        active = active[moved > tol]
    strength -= strength.mean(axis=1, keepdims=True)
    strength[~ok] = np.nan
    return strength


def bradley_terry(
    comparisons: pd.DataFrame,
    *,
    cluster: str | None = None,
    pseudo_count: float = 0.0,
    n_boot: int = 0,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
) -> Ranking | Undefined:
    """Bradley-Terry strengths from pairwise votes, with percentile bootstrap CIs.

    ``comparisons`` has one row per vote: ``model_a``, ``model_b``, ``value`` (A, B, tie,
    both_bad); rows with no value are skipped, and errors name rows by position from 0.
    The bootstrap resamples votes, or whole groups of the ``cluster`` column (e.g. prompts).
    ``pseudo_count`` > 0 adds that many virtual ties between every two models, which keeps
    strengths finite on sparse data at the price of shrinking them.
    """
    if pseudo_count < 0:
        raise ValueError(f"pseudo_count must be non-negative, got {pseudo_count}")
    models, pair, value = _comparison_codes(comparisons)
    m = len(models)
    if len(value) == 0 or m < 2:
        return Undefined(NO_ITEMS, n=len(value))
    contributions = _win_contributions(pair, value, m)
    prior = pseudo_count / 2.0 * (1.0 - np.eye(m))
    wins = np.asarray(contributions.sum(axis=0)).reshape(m, m) + prior
    strength = fit_strengths(wins[np.newaxis])[0]
    if not np.isfinite(strength).all():
        return Undefined(NOT_CONNECTED, n=len(value))
    low = high = np.full(m, np.nan)
    boot_undefined = 0.0
    if n_boot > 0:
        clusters = None
        if cluster is not None:
            frame = require_columns(comparisons, [cluster], "comparisons")
            frame = frame.reset_index(drop=True)
            labels = frame.loc[frame["value"].notna(), cluster]
            if labels.isna().any():
                raise ValueError(f"row {labels.index[labels.isna()][0]} has no {cluster!r}")
            clusters = labels.to_numpy()
        totals = bootstrap.resample_sums(
            contributions, clusters=clusters, n_boot=n_boot, seed=seed
        ).reshape(n_boot, m, m)
        replicates = fit_strengths(totals + prior)
        failed = ~np.isfinite(replicates).all(axis=1)
        boot_undefined = float(failed.mean())
        if (~failed).any():
            tail = (1.0 - level) / 2.0
            low, high = np.quantile(replicates[~failed], [tail, 1.0 - tail], axis=0)
    games = wins + wins.T
    table = pd.DataFrame(
        {
            "strength": strength,
            "ci_low": low,
            "ci_high": high,
            "wins": wins.sum(axis=1) - prior.sum(axis=1),
            "games": games.sum(axis=1) - 2 * prior.sum(axis=1),
        },
        index=pd.Index(models, name="model"),
    )
    table["rank"] = table["strength"].rank(ascending=False, method="min").astype(int)
    table = table.sort_values(["rank"]).loc[
        :, ["strength", "ci_low", "ci_high", "rank", "wins", "games"]
    ]
    return Ranking(
        table=table,
        n=len(value),
        level=level if n_boot > 0 else None,
        boot_undefined=boot_undefined,
    )


def _scores(ranking: Ranking | pd.Series | Mapping[Hashable, float]) -> pd.Series:
    if isinstance(ranking, Ranking):
        return ranking.table["strength"]
    return pd.Series(ranking, dtype=float)


def _rank_correlation(
    first: Ranking | pd.Series | Mapping[Hashable, float],
    second: Ranking | pd.Series | Mapping[Hashable, float],
    test: Any,
) -> Result:
    one, two = _scores(first), _scores(second)
    # The models in common in the first ranking's order (an inner join's), then both scores.
    common = one.index.intersection(two.index)
    x = one.reindex(common).to_numpy(dtype=float)
    y = two.reindex(common).to_numpy(dtype=float)
    scored = ~(np.isnan(x) | np.isnan(y))
    x, y = x[scored], y[scored]
    n = len(x)
    if n < 2:
        return Undefined("fewer than 2 models in common", n=n)
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return Undefined("a ranking gives every model the same score", n=n)
    outcome = test(x, y)
    return Estimate(value=float(outcome.statistic), n=n, details={"p_value": float(outcome.pvalue)})


def kendall_tau(
    first: Ranking | pd.Series | Mapping[Hashable, float],
    second: Ranking | pd.Series | Mapping[Hashable, float],
) -> Result:
    """Kendall's tau-b between two rankings over their common models (scipy.stats.kendalltau).

    Arguments are :class:`Ranking` results or model -> score mappings (higher is better).
    ``details["p_value"]`` is scipy's test of no association.
    """
    return _rank_correlation(first, second, stats.kendalltau)


def spearman_rho(
    first: Ranking | pd.Series | Mapping[Hashable, float],
    second: Ranking | pd.Series | Mapping[Hashable, float],
) -> Result:
    """Spearman's rho between two rankings over their common models (scipy.stats.spearmanr)."""
    return _rank_correlation(first, second, stats.spearmanr)


def separability(ranking: Ranking) -> Result:
    """Share of model pairs whose confidence intervals do not overlap.

    A ranking that separates few pairs cannot tell models apart, however confident its
    order looks. Needs a ranking computed with ``n_boot`` > 0.
    """
    table = ranking.table
    n_models = len(table)
    if n_models < 2:
        return Undefined("fewer than 2 models", n=0)
    low, high = table["ci_low"].to_numpy(), table["ci_high"].to_numpy()
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        return Undefined("no confidence intervals (rank with n_boot > 0)", n=0)
    i, j = np.triu_indices(n_models, k=1)
    apart = (low[i] > high[j]) | (low[j] > high[i])
    return Estimate(
        value=float(apart.mean()), n=len(i), details={"separated_pairs": int(apart.sum())}
    )
