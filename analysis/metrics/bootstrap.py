"""Percentile bootstrap that resamples items, or clusters of items, without refitting loops.

Every metric here is a function of a *sum of per-item contributions* (a contingency table, a
coincidence matrix, agree/total counts, a win matrix). Resampling items with replacement then
only changes how many times each contribution row enters the sum, so a replicate is
``counts @ rows``. Identical rows are merged first: resampling n items from d distinct rows
with multiplicities c is exactly a Multinomial(n, c/n) draw over the rows, which costs O(d)
per replicate instead of O(n). When rows are mostly distinct (clusters, many models) the
resample counts come from integer draws and ``np.bincount`` in chunks.

With a cluster label per item (e.g. the prompt, when one prompt yields several pairs) whole
clusters are resampled: their contributions are summed first, then clusters are the units.
Replicates are memoised by content (rows, clusters, counts, n_boot and an integer seed), so
metrics sharing one table - percent agreement, Cohen's kappa in three weightings, Scott's pi,
AC1 - pay for one resampling and are computed on the very same resamples.

Many groups at once: :func:`group_resample_sums` resamples, within each group (a slice, or
the whole table as one group), that group's clusters, and returns every group's replicate
sums from one weight matrix per chunk; :mod:`analysis.metrics.engine` computes all the
figures of a snapshot from it. Its draws are not those of :func:`resample_sums` (a uniform
number scaled to the group's size per draw, no merging of identical rows), so for one seed
the two give different - equally valid - replicates: each stored figure names its path.

The CI is the percentile interval of the replicates (Efron & Tibshirani 1993, ch. 13);
replicates where the statistic is undefined (say, every resampled item in one category) are
left out and their share reported as ``boot_undefined``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.metrics.outcomes import NO_ITEMS, Estimate, Result, Undefined

Seed = int | np.random.Generator | None
Statistic = Callable[[np.ndarray], np.ndarray]


class Resampling(NamedTuple):
    """The bootstrap settings a statistic passes on to :func:`estimate` unchanged."""

    n_boot: int = 0
    level: float = 0.95
    seed: Seed = 0


# Draws per chunk on the index path: bounds memory at ~16 MB whatever the data size.
_CHUNK_DRAWS = 2_000_000
_CACHE_BYTES = 128 * 2**20
_BINCOUNT_COLUMNS = 16  # _sum_by_cluster: dense rows this narrow are summed with np.bincount
_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
_cached_bytes = 0  # the nbytes of _cache's arrays, kept up to date under _cache_lock
_cache_lock = threading.Lock()


def resample_sums(
    contributions: Any,
    *,
    clusters: Any = None,
    counts: Any = None,
    n_boot: int = 1000,
    seed: Seed = 0,
) -> np.ndarray:
    """Return ``n_boot`` bootstrap replicates of ``contributions.sum(axis=0)``.

    ``contributions`` is an (n_units, k) array or scipy sparse matrix, one row per item.
    ``clusters`` (length n_units) makes whole clusters the resampled units. ``counts``
    (length n_units, integers) says each row stands for that many identical items, as the
    cells of a contingency table do. Result: a read-only (n_boot, k) float array (it may be
    shared through the memo cache). Seeded: the same data and seed give the same replicates.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    rows = contributions if sparse.issparse(contributions) else np.asarray(contributions, float)
    if rows.ndim != 2:
        raise ValueError("contributions must be a 2-D array (one row per item)")
    if clusters is not None:
        clusters = _cluster_codes(clusters, rows.shape[0])  # once, for the key and the sums
    key = _cache_key(rows, clusters, counts, n_boot, seed)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    replicates = _resample_sums(rows, clusters, counts, n_boot, np.random.default_rng(seed))
    replicates.flags.writeable = False
    if key is not None and replicates.nbytes <= _CACHE_BYTES:
        _cache_store(key, replicates)
    return replicates


def _cache_store(key: bytes, replicates: np.ndarray) -> None:
    """Memoise ``replicates``, dropping the oldest entries beyond ``_CACHE_BYTES``; the size
    is kept as a running total (summing every entry at each store cost more than the draws
    of a small resampling once a worker had cached a few hundred)."""
    global _cached_bytes
    with _cache_lock:
        previous = _cache.get(key)
        if previous is not None:
            _cached_bytes -= previous.nbytes
        _cache[key] = replicates
        _cached_bytes += replicates.nbytes
        while _cached_bytes > _CACHE_BYTES:
            _, dropped = _cache.popitem(last=False)
            _cached_bytes -= dropped.nbytes


def _cache_key(rows: Any, clusters: Any, counts: Any, n_boot: int, seed: Seed) -> bytes | None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        return None  # no seed, or a Generator whose state moves on: nothing to reuse
    digest = hashlib.sha256()
    digest.update(repr((rows.shape, n_boot, int(seed), sparse.issparse(rows))).encode())
    if sparse.issparse(rows):
        matrix = sparse.csr_matrix(rows)
        for part in (matrix.indptr, matrix.indices, matrix.data):
            digest.update(np.ascontiguousarray(part).tobytes())
    else:
        digest.update(np.ascontiguousarray(rows).tobytes())
    if clusters is not None:  # the codes of _cluster_codes
        digest.update(b"clusters")
        digest.update(np.asarray(clusters, np.int64).tobytes())
    if counts is not None:
        digest.update(b"counts")
        digest.update(np.asarray(counts, dtype=float).tobytes())
    return digest.digest()


def _resample_sums(
    rows: Any, clusters: Any, counts: Any, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    if counts is not None:
        if clusters is not None:
            raise ValueError("give either counts or clusters, not both")
        weights = np.asarray(counts, dtype=float)
        if weights.shape != (rows.shape[0],):
            raise ValueError("counts must have one entry per contribution row")
        if (weights < 0).any() or not np.allclose(weights, np.round(weights)):
            raise ValueError("bootstrap needs whole, non-negative item counts")
        multiplicity = np.round(weights).astype(np.int64)
        keep = multiplicity > 0
        rows, multiplicity = rows[keep], multiplicity[keep]
        distinct, inverse = _distinct_rows(rows)
        multiplicity = np.bincount(inverse, weights=multiplicity, minlength=distinct.shape[0])
        resampled = _multinomial_counts(multiplicity.astype(np.int64), n_boot, rng)
        return _times(resampled, distinct)
    if clusters is not None:
        rows = _sum_by_cluster(rows, clusters)
    distinct, inverse = _distinct_rows(rows)
    n_units = rows.shape[0]
    if n_units == 0:
        return np.zeros((n_boot, rows.shape[1]))
    multiplicity = np.bincount(inverse, minlength=distinct.shape[0])
    if distinct.shape[0] * 8 <= n_units:
        return _times(_multinomial_counts(multiplicity, n_boot, rng), distinct)
    return _index_totals(inverse, distinct, n_boot, rng)


def percentile_interval(replicates: Any, level: float = 0.95) -> tuple[float, float] | None:
    """Equal-tailed percentile interval of the finite replicates; None if there are none."""
    _check_level(level)
    values = np.asarray(replicates, dtype=float).reshape(-1, 1)
    low, high = percentile_intervals(values, level)[:, 0]
    if not np.isfinite(low):
        return None
    return float(low), float(high)


def estimate(
    contributions: Any,
    statistic: Statistic,
    why_undefined: Callable[[np.ndarray], str | None],
    *,
    n: int,
    counts: Any = None,
    clusters: Any = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: Seed = 0,
    details: Mapping[str, float | int | str] | None = None,
) -> Result:
    """Point estimate and, when ``n_boot`` > 0, percentile CI of a sum-of-contributions statistic.

    ``statistic`` maps an (r, k) array of column totals to r values (NaN where undefined);
    ``why_undefined`` gives the reason for the point estimate's totals, or None.
    """
    _check_level(level)
    extra = dict(details or {})
    if counts is not None:
        totals = np.asarray(counts, dtype=float) @ np.asarray(contributions, dtype=float)
    else:
        totals = np.asarray(contributions.sum(axis=0), dtype=float).ravel()
    reason = why_undefined(totals)
    if reason is not None:
        return Undefined(reason, n=n, details=extra)
    value = float(statistic(totals[np.newaxis, :])[0])
    if not np.isfinite(value):
        return Undefined("the statistic is not finite on this input", n=n, details=extra)
    if n_boot <= 0:
        return Estimate(value=value, n=n, details=extra)
    replicates = statistic(
        resample_sums(contributions, clusters=clusters, counts=counts, n_boot=n_boot, seed=seed)
    )
    extra["boot_undefined"] = float(np.mean(~np.isfinite(replicates)))
    if clusters is not None:
        extra["clusters"] = len(pd.unique(np.asarray(clusters)))
    ci = percentile_interval(replicates, level)
    return Estimate(value=value, n=n, ci=ci, level=level, details=extra)


def share_estimate(
    contributions: np.ndarray,
    column: int,
    clusters: np.ndarray | None,
    resampling: Resampling,
    details: Mapping[str, float | int | str] | None = None,
    minus: int | None = None,
) -> Result:
    """The share ``contributions[:, column]`` of ``contributions[:, 0]`` (one row per unit:
    1, then the counts), less the share of column ``minus`` if given (a difference of two
    shares, such as position fairness), with its percentile bootstrap interval
    (:func:`estimate`)."""

    def share(totals: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            if minus is None:
                return totals[:, column] / totals[:, 0]
            return (totals[:, column] - totals[:, minus]) / totals[:, 0]

    def why_undefined(totals: np.ndarray) -> str | None:
        return NO_ITEMS if totals[0] == 0 else None

    n = len(contributions)
    return estimate(
        contributions,
        share,
        why_undefined,
        n=n,
        clusters=clusters,
        details=details,
        **resampling._asdict(),
    )


def group_resample_sums(
    rows: np.ndarray,
    groups: np.ndarray,
    clusters: np.ndarray,
    n_groups: int,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Bootstrap replicates of each group's column sums, resampling clusters within groups.

    For every group (a slice, or the whole table as one group) this is the percentile
    bootstrap of :func:`resample_sums`: the group's clusters (prompts) drawn
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


def percentile_intervals(replicates: np.ndarray, level: float) -> np.ndarray:
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


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")


def _cluster_codes(clusters: Any, n: int) -> np.ndarray:
    """Each row's cluster as a code 0, 1, ... in order of first appearance."""
    labels = np.asarray(clusters)
    if labels.shape != (n,):
        raise ValueError("clusters must have one label per contribution row")
    codes = np.asarray(pd.factorize(labels)[0], dtype=np.int64)
    if (codes < 0).any():
        raise ValueError("every item needs a cluster label (found a missing one)")
    return codes


def _sum_by_cluster(rows: Any, codes: np.ndarray) -> Any:
    """Rows summed per cluster (``codes`` from :func:`_cluster_codes`), clusters in order."""
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if not sparse.issparse(rows) and rows.shape[1] <= _BINCOUNT_COLUMNS:
        # Column by column: np.bincount adds each cluster's rows in row order from 0, as the
        # sparse product below does (the same floats), without building the sparse matrix,
        # which cost more than the sums on the few columns of most figures.
        sums = np.empty((n_clusters, rows.shape[1]))
        for column in range(rows.shape[1]):
            sums[:, column] = np.bincount(codes, weights=rows[:, column], minlength=n_clusters)
        return sums
    indicator = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_clusters, len(codes))
    )
    return indicator @ rows


def _distinct_rows(rows: Any) -> tuple[Any, np.ndarray]:
    """Distinct rows and, per input row, the index of its distinct row (hash-based, exact)."""
    n = rows.shape[0]
    if n == 0:
        return rows, np.zeros(0, dtype=np.int64)
    if sparse.issparse(rows):
        matrix = sparse.csr_matrix(rows)
        matrix.sum_duplicates()
        matrix.sort_indices()
        keys = [
            matrix.indices[start:stop].tobytes() + matrix.data[start:stop].tobytes()
            for start, stop in zip(matrix.indptr[:-1], matrix.indptr[1:], strict=True)
        ]
        inverse = np.asarray(pd.factorize(pd.Series(keys, dtype=object))[0], dtype=np.int64)
        return matrix[_first_positions(inverse)], inverse
    if np.isnan(rows).any():  # kept on the general path: factorize's codes for NaN
        inverse = np.zeros(n, dtype=np.int64)
        for column in np.ascontiguousarray(rows.T):
            codes, uniques = pd.factorize(column)
            inverse = np.asarray(pd.factorize(inverse * len(uniques) + codes)[0], dtype=np.int64)
        return rows[_first_positions(inverse)], inverse
    # One key per distinct row from per-column codes (np.unique: equal values share a code,
    # as with factorize, without its per-call cost on these small columns); the key is
    # compacted before it could overflow. Numbered in order of first appearance at the end,
    # so the distinct rows come in the same order as before.
    key = np.zeros(n, dtype=np.int64)
    bound = 1
    for column in rows.T:
        uniques, codes = np.unique(column, return_inverse=True)
        if bound * len(uniques) >= 2**62:
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
            bound = int(key.max()) + 1
        key = key * len(uniques) + codes
        bound *= len(uniques)
    inverse = np.asarray(pd.factorize(key)[0], dtype=np.int64)
    return rows[_first_positions(inverse)], inverse


def _first_positions(inverse: np.ndarray) -> np.ndarray:
    first = np.empty(int(inverse.max()) + 1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse) - 1, -1, -1)
    return first


def _multinomial_counts(multiplicity: np.ndarray, n_boot: int, rng: np.random.Generator) -> Any:
    total = int(multiplicity.sum())
    if total == 0:
        return np.zeros((n_boot, len(multiplicity)))
    return rng.multinomial(total, multiplicity / total, size=n_boot).astype(float)


def _index_totals(
    inverse: np.ndarray, distinct: Any, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Replicate sums from drawn unit indices, chunk by chunk to bound memory."""
    n_units, n_distinct = len(inverse), distinct.shape[0]
    out = np.empty((n_boot, distinct.shape[1]))
    chunk = max(1, _CHUNK_DRAWS // max(n_units, n_distinct))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        draws = inverse[rng.integers(0, n_units, size=(size, n_units))]
        draws += (np.arange(size, dtype=np.int64) * n_distinct)[:, np.newaxis]
        counts = np.bincount(draws.ravel(), minlength=size * n_distinct)
        out[start : start + size] = _times(counts.reshape(size, n_distinct), distinct)
    return out


def _times(resampled: np.ndarray, distinct: Any) -> np.ndarray:
    if sparse.issparse(distinct):
        return np.asarray((distinct.T @ resampled.T).T, dtype=float)
    return np.asarray(resampled @ distinct, dtype=float)
