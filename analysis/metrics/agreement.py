"""Agreement between raters: percent agreement, chance-corrected coefficients, confusion tables.

Two-rater coefficients (METHODS.md section 2). With p_ij the joint proportions of two raters over
q categories and agreement weights w_ij (identity; linear 1 - |i-j|/(q-1); quadratic
1 - (i-j)^2/(q-1)^2), every coefficient is (p_a - p_e) / (1 - p_e) with p_a = sum w_ij p_ij:

- Cohen's kappa (Cohen 1960; weighted, Cohen 1968): p_e = sum w_ij p_i. p_.j
- Scott's pi (Scott 1955): p_e = sum w_ij pi_i pi_j, pi_k = (p_k. + p_.k) / 2
- Gwet's AC1 / AC2 (Gwet 2008; 2014, ch. 4): p_e = T_w / (q (q-1)) sum_k pi_k (1 - pi_k),
  T_w = sum w_ij

These take either a q x q contingency table (rows: the rater, columns: the other rater) or a
long vote DataFrame with columns ``item``, ``rater``, ``value``. From a DataFrame, the rater's
vote on an item is compared with *every* reference vote on that item, which is MT-Bench's
definition (FastChat ``compute_agreement.py``): an item with three human votes contributes
three comparisons. Percent agreement is p_a with identity weights, i.e. MT-Bench's agreement.

Several raters: Fleiss' kappa (Fleiss 1971) and Krippendorff's alpha (Krippendorff 2011,
"Computing Krippendorff's alpha-reliability") over the coincidence matrix, with any number of
raters per item and missing votes.

``policy`` (S1 or S2, see :mod:`analysis.metrics.outcomes`) defaults to S1, or to the policy
the votes were coded under when :class:`~analysis.metrics.votes.CodedVotes` are passed; a
table is used as given. Every function returns :class:`~analysis.metrics.outcomes.Estimate` or
:class:`~analysis.metrics.outcomes.Undefined`; ``n`` is the number of items used, and with
``n_boot`` > 0 a percentile bootstrap CI that resamples items (or the ``cluster`` column's
groups) is attached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd

from analysis.metrics import bootstrap, engine
from analysis.metrics.engine import Weights, weight_matrix
from analysis.metrics.outcomes import (
    FEWER_THAN_TWO_RATERS,
    NO_ITEMS,
    ONE_CATEGORY,
    Result,
    TiePolicy,
)
from analysis.metrics.votes import CodedVotes, as_coded

MeasurementLevel = Literal["nominal", "ordinal", "interval"]
TwoRaterMetric = Literal["percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac"]
TWO_RATER_METRICS: tuple[str, ...] = ("percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac")

_EPS = 1e-12


class VoteOptions(TypedDict, total=False):
    """How every function here reads votes and resamples them (module docstring), by
    keyword: ``policy`` (default: S1, or the CodedVotes' own), ``categories``, ``cluster``
    (default: resample items), ``n_boot`` (default 0: no interval), ``level`` (0.95),
    ``seed`` (0); the defaults are :func:`_options`'s."""

    policy: TiePolicy | None
    categories: Sequence[Hashable] | None
    cluster: str | None
    n_boot: int
    level: float
    seed: bootstrap.Seed


class _Reading(NamedTuple):
    """How votes are coded: :func:`~analysis.metrics.votes.as_coded`'s keywords."""

    policy: TiePolicy | None
    categories: Sequence[Hashable] | None
    cluster: str | None


def _options(
    *,
    policy: TiePolicy | None = None,
    categories: Sequence[Hashable] | None = None,
    cluster: str | None = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
) -> tuple[_Reading, bootstrap.Resampling]:
    """:class:`VoteOptions` with their defaults: the reading and the resampling."""
    return _Reading(policy, categories, cluster), bootstrap.Resampling(n_boot, level, seed)


# --- two raters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    """Per-item contributions to a q x q table of (rater vote, reference vote) pairs."""

    contributions: np.ndarray  # (units, q*q)
    counts: np.ndarray | None  # multiplicity of each row, for a table given directly
    clusters: np.ndarray | None
    n: int
    categories: tuple[Hashable, ...]
    policy: TiePolicy | None

    @property
    def q(self) -> int:
        return len(self.categories)


def _kept(clusters: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    return clusters[keep] if clusters is not None else None


def _kept_pairs(coded: CodedVotes, contributions: np.ndarray, keep: np.ndarray) -> _Pairs:
    """The pairs of the items ``keep`` selects, their contributions already computed."""
    return _Pairs(
        contributions,
        None,
        _kept(coded.cluster, keep),
        int(keep.sum()),
        coded.categories,
        coded.policy,
    )


def _table_as_given(policy: TiePolicy | None, cluster: str | None) -> None:
    if cluster is not None:
        raise ValueError("a cluster column needs a vote DataFrame, not a table")
    if policy is not None:
        raise ValueError("a tie policy applies to votes; a table is used as given")


def _pairs_from_table(table: Any, categories: Sequence[Hashable] | None) -> _Pairs:
    matrix = np.asarray(table, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a contingency table must be square, got shape {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("a contingency table holds non-negative counts")
    q = matrix.shape[0]
    names = tuple(categories) if categories is not None else tuple(range(q))
    if len(names) != q:
        raise ValueError(f"{len(names)} categories given for a {q} x {q} table")
    return _Pairs(np.eye(q * q), matrix.ravel(), None, round(matrix.sum()), names, None)


def _pairs_from_votes(
    coded: CodedVotes, rater: Hashable, reference: Sequence[Hashable] | None
) -> _Pairs:
    own = coded.rater_codes([rater])
    others = np.setdiff1d(coded.rater_codes(reference), own)
    mine, theirs = coded.counts(own), coded.counts(others)
    keep = (mine.sum(axis=1) > 0) & (theirs.sum(axis=1) > 0)
    return _kept_pairs(coded, engine.outer(mine[keep], theirs[keep]), keep)


def _pairs_among(coded: CodedVotes, raters: Sequence[Hashable] | None) -> _Pairs:
    """Every unordered pair of distinct raters on an item, each orientation weighted 1/2."""
    counts = coded.counts(coded.rater_codes(raters))
    keep = counts.sum(axis=1) >= 2
    return _kept_pairs(coded, engine.among(counts[keep]), keep)


def _pairs(
    data: Any,
    rater: Hashable | None,
    reference: Sequence[Hashable] | None,
    policy: TiePolicy | None,
    categories: Sequence[Hashable] | None,
    cluster: str | None,
) -> _Pairs:
    if not isinstance(data, pd.DataFrame | CodedVotes):
        _table_as_given(policy, cluster)
        return _pairs_from_table(data, categories)
    if rater is None:
        raise ValueError("name the rater to compare (rater=...) when passing votes")
    coded = as_coded(data, policy=policy, categories=categories, cluster=cluster)
    return _pairs_from_votes(coded, rater, reference)


def _two_rater(
    kind: str,
    pairs: _Pairs,
    weights: Weights,
    n_boot: int,
    level: float,
    seed: bootstrap.Seed,
    extra: dict[str, float | int | str] | None = None,
) -> Result:
    """One coefficient of one table: :func:`analysis.metrics.engine.statistics` gives the
    point estimate and every bootstrap replicate's value."""
    if kind not in TWO_RATER_METRICS:
        raise ValueError(f"metric must be one of {', '.join(TWO_RATER_METRICS)}, got {kind!r}")
    q = pairs.q
    key = engine.kind_of(kind, weights)

    def statistic(totals: np.ndarray) -> np.ndarray:
        return engine.statistics(totals, q, [key])[key][0]

    totals = (
        pairs.counts @ pairs.contributions
        if pairs.counts is not None
        else pairs.contributions.sum(axis=0)
    )
    table = totals.reshape(q, q)
    details: dict[str, float | int | str] = {"pairs": float(table.sum()), **(extra or {})}
    if pairs.policy is not None:
        details["policy"] = pairs.policy.name
    if table.sum() > 0:
        w = weight_matrix(q, engine.TWO_RATER_KINDS[key][1])
        details["p_a"] = float((table * w).sum() / table.sum())
        if kind == "percent_agreement":
            details["agreements"] = float(np.trace(table))
        elif q >= 2:
            details["p_e"] = float(engine.statistics(totals[np.newaxis], q, [key])[key][1][0])

    def why_undefined(totals: np.ndarray) -> str | None:
        if totals.sum() <= 0:
            return NO_ITEMS
        if kind == "percent_agreement":
            return None
        if q < 2 or 1.0 - float(details["p_e"]) <= _EPS:
            return ONE_CATEGORY
        return None

    return bootstrap.estimate(
        pairs.contributions,
        statistic,
        why_undefined,
        n=pairs.n,
        counts=pairs.counts,
        clusters=pairs.clusters,
        n_boot=n_boot,
        level=level,
        seed=seed,
        details=details,
    )


def _coefficient(kind: str, doc: str) -> Callable[..., Result]:
    """A public two-rater function: a q x q table, or a vote DataFrame (or
    :class:`CodedVotes`) and the ``rater`` compared with ``reference`` (default: every other
    rater); one signature for the four."""

    def coefficient(
        data: Any,
        rater: Hashable | None = None,
        *,
        reference: Sequence[Hashable] | None = None,
        weights: Weights = "unweighted",
        **options: Unpack[VoteOptions],
    ) -> Result:
        reading, resampling = _options(**options)
        pairs = _pairs(data, rater, reference, *reading)
        return _two_rater(kind, pairs, weights, *resampling)

    coefficient.__name__ = coefficient.__qualname__ = kind
    coefficient.__doc__ = doc
    return coefficient


percent_agreement = _coefficient(
    "percent_agreement",
    """MT-Bench agreement: the share of (rater vote, reference vote) pairs that agree.

    Zheng et al. 2023 (arXiv 2306.05685), FastChat ``llm_judge/compute_agreement.py``: for
    each item the rater's single vote is compared with each reference (human) vote, and
    agreement = agreeing pairs / pairs, so an item counts once per human vote. Under S1 a tie
    agrees with a tie; under S2 pairs where either vote is a tie are dropped. ``reference``
    defaults to every other rater; ``weights`` does not apply (always identity). Details:
    ``agreements``, ``pairs``, ``policy``. For human-vs-human agreement (all pairs of
    distinct humans) use :func:`human_ceiling`.
    """,
)
cohen_kappa = _coefficient(
    "cohen_kappa",
    """Cohen's kappa (Cohen 1960), weighted with linear or quadratic weights (Cohen 1968).

    kappa = (p_a - p_e) / (1 - p_e), p_a = sum w_ij p_ij, p_e = sum w_ij p_i. p_.j.
    ``data`` is a q x q table or a vote DataFrame (then name ``rater``). Weighted variants
    need ordered categories; for verdicts the order is A, tie, B. Details: ``p_a``, ``p_e``.
    Undefined when both raters used one and the same category only.
    """,
)
scott_pi = _coefficient(
    "scott_pi",
    """Scott's pi (Scott 1955): chance agreement from the pooled marginals.

    pi = (p_a - p_e) / (1 - p_e), p_e = sum w_ij pi_i pi_j, pi_k = (p_k. + p_.k) / 2.
    Arguments as for :func:`cohen_kappa`.
    """,
)
gwet_ac = _coefficient(
    "gwet_ac",
    """Gwet's AC1 (unweighted) or AC2 (linear / quadratic weights), Gwet 2008 and 2014 ch. 4.

    AC = (p_a - p_e) / (1 - p_e), p_e = T_w / (q (q-1)) sum_k pi_k (1 - pi_k),
    pi_k = (p_k. + p_.k) / 2, T_w = sum w_ij. q is the number of categories on the scale
    (for verdicts: 3 under S1, 2 under S2), observed or not. Arguments as for
    :func:`cohen_kappa`.
    """,
)


def confusion_matrix(
    votes: pd.DataFrame | CodedVotes,
    rater: Hashable,
    *,
    reference: Sequence[Hashable] | None = None,
    policy: TiePolicy | None = None,
    categories: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Counts of (rater verdict, reference verdict) pairs; rows: ``rater``, columns: reference.

    Pairs are formed as in :func:`percent_agreement` (each reference vote once), so the
    diagonal over the total is the MT-Bench agreement. Read a row to see what the reference
    raters said when the rater answered that category.
    """
    coded = as_coded(votes, policy=policy, categories=categories, cluster=None)
    pairs = _pairs_from_votes(coded, rater, reference)
    q = pairs.q
    table = pairs.contributions.sum(axis=0).reshape(q, q)
    labels = list(pairs.categories)
    return pd.DataFrame(
        table.round().astype(np.int64),
        index=pd.Index(labels, name=str(rater)),
        columns=pd.Index(labels, name="reference"),
    )


# --- several raters -----------------------------------------------------------------------


def _fewer_than_two(total_items: int) -> str:
    return NO_ITEMS if total_items == 0 else FEWER_THAN_TWO_RATERS


@dataclass(frozen=True)
class _Pairable:
    """The items with two votes or more, as Fleiss' kappa and Krippendorff's alpha use them."""

    counts: np.ndarray  # (items kept, q) votes per category
    per_item: np.ndarray  # votes per kept item
    total_items: int  # items before dropping those with fewer than two votes
    categories: tuple[Hashable, ...]
    clusters: np.ndarray | None
    policy: TiePolicy | None

    def estimate(
        self,
        contributions: np.ndarray,
        statistic: bootstrap.Statistic,
        why_undefined: Callable[[np.ndarray], str | None],
        details: dict[str, float | int | str],
        resampling: bootstrap.Resampling,
    ) -> Result:
        if self.policy is not None:
            details["policy"] = self.policy.name
        n, clusters = len(self.counts), self.clusters
        return bootstrap.estimate(
            contributions,
            statistic,
            why_undefined,
            n=n,
            clusters=clusters,
            details=details,
            **resampling._asdict(),
        )


def _pairable(
    data: Any,
    raters: Sequence[Hashable] | None,
    policy: TiePolicy | None,
    categories: Sequence[Hashable] | None,
    cluster: str | None,
) -> _Pairable:
    """Items x categories vote counts from votes or from a counts table."""
    if isinstance(data, pd.DataFrame | CodedVotes):
        coded = as_coded(data, policy=policy, categories=categories, cluster=cluster)
        counts = coded.counts(coded.rater_codes(raters))
        names, clusters, used_policy = coded.categories, coded.cluster, coded.policy
    else:
        _table_as_given(policy, cluster)
        counts = np.asarray(data, dtype=float)
        if counts.ndim != 2:
            raise ValueError(f"a counts table must be items x categories, got shape {counts.shape}")
        if not np.isfinite(counts).all() or (counts < 0).any():
            raise ValueError("a counts table holds non-negative counts")
        names = tuple(categories) if categories is not None else tuple(range(counts.shape[1]))
        if len(names) != counts.shape[1]:
            raise ValueError(f"{len(names)} categories given for {counts.shape[1]} columns")
        clusters = used_policy = None
    per_item = counts.sum(axis=1)
    keep = per_item >= 2
    return _Pairable(
        counts[keep], per_item[keep], counts.shape[0], names, _kept(clusters, keep), used_policy
    )


def fleiss_kappa(
    data: Any, *, raters: Sequence[Hashable] | None = None, **options: Unpack[VoteOptions]
) -> Result:
    """Fleiss' kappa (Fleiss 1971) for N items rated by several raters.

    With n_ij the votes of item i in category j and n_i = sum_j n_ij:
    P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), p_j = sum_i n_ij / sum_i n_i,
    kappa = (mean_i P_i - sum_j p_j^2) / (1 - sum_j p_j^2).
    With the same n on every item this is Fleiss' formula; items with fewer than 2 votes
    are skipped. ``data`` is a vote DataFrame (``raters`` restricts it) or an items x
    categories counts table.
    """
    reading, resampling = _options(**options)
    items = _pairable(data, raters, *reading)
    counts, per_item = items.counts, items.per_item
    agreement = ((counts**2).sum(axis=1) - per_item) / (per_item * (per_item - 1))
    contributions = np.column_stack([np.ones(len(counts)), agreement, counts])

    def statistic(totals: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            p_bar = totals[:, 1] / totals[:, 0]
            shares = totals[:, 2:] / totals[:, 2:].sum(axis=1, keepdims=True)
            p_e = (shares**2).sum(axis=1)
            value = (p_bar - p_e) / (1.0 - p_e)
        return np.where(1.0 - p_e > _EPS, value, np.nan)

    def why_undefined(totals: np.ndarray) -> str | None:
        if totals[0] == 0:
            return _fewer_than_two(items.total_items)
        shares = totals[2:] / totals[2:].sum()
        if len(items.categories) < 2 or 1.0 - (shares**2).sum() <= _EPS:
            return ONE_CATEGORY
        return None

    details: dict[str, float | int | str] = {"votes": float(per_item.sum())}
    return items.estimate(contributions, statistic, why_undefined, details, resampling)


def _reliability_to_votes(data: Any) -> pd.DataFrame:
    """Raters x units matrix (NaN = missing) to a long vote table."""
    matrix = np.asarray(data, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"reliability data must be raters x units, got shape {matrix.shape}")
    raters, units = np.nonzero(~np.isnan(matrix))
    return pd.DataFrame({"item": units, "rater": raters, "value": matrix[raters, units]})


def _interval_positions(categories: tuple[Hashable, ...]) -> np.ndarray:
    numeric = all(
        isinstance(c, int | float | np.integer | np.floating) and not isinstance(c, bool)
        for c in categories
    )
    if numeric:
        return np.asarray(categories, dtype=float)
    return np.arange(len(categories), dtype=float)


def krippendorff_alpha(
    data: Any,
    *,
    level_of_measurement: MeasurementLevel = "nominal",
    raters: Sequence[Hashable] | None = None,
    **options: Unpack[VoteOptions],
) -> Result:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix (Krippendorff 2011).

    Each unit u with m_u >= 2 values adds n_uc n_uk / (m_u - 1) to o_ck (c != k) and
    n_uc (n_uc - 1) / (m_u - 1) to o_cc. With n_c = sum_k o_ck and n = sum_c n_c:
    alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck, where the squared distance d_ck is
    nominal: [c != k]; interval: (c - k)^2 on the values (category positions when the values
    are not numbers); ordinal: (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 in category order.
    Any number of raters, missing values allowed. ``data`` is a vote DataFrame or a raters x
    units matrix with NaN for missing values (Krippendorff's "reliability data").
    """
    if level_of_measurement not in ("nominal", "ordinal", "interval"):
        raise ValueError(
            f"level_of_measurement must be nominal, ordinal or interval, got "
            f"{level_of_measurement!r}"
        )
    reading, resampling = _options(**options)
    if not isinstance(data, pd.DataFrame | CodedVotes):
        data = _reliability_to_votes(data)
    items = _pairable(data, raters, *reading)
    counts, per_unit, q = items.counts, items.per_item, len(items.categories)
    pairs = counts[:, :, np.newaxis] * counts[:, np.newaxis, :]
    pairs[:, np.arange(q), np.arange(q)] -= counts
    contributions = (pairs / (per_unit - 1)[:, np.newaxis, np.newaxis]).reshape(len(pairs), q * q)
    distance = _alpha_distance(level_of_measurement, items.categories)

    def statistic(totals: np.ndarray) -> np.ndarray:
        coincidences = totals.reshape(-1, q, q)
        marginals = coincidences.sum(axis=2)
        n = marginals.sum(axis=1)
        d = distance(marginals)
        observed = (coincidences * d).sum(axis=(1, 2))
        expected = (marginals[:, :, np.newaxis] * marginals[:, np.newaxis, :] * d).sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 1.0 - (n - 1.0) * observed / expected
        return np.where(expected > _EPS, value, np.nan)

    def why_undefined(totals: np.ndarray) -> str | None:
        if totals.sum() <= 0:
            return _fewer_than_two(items.total_items)
        if not np.isfinite(statistic(totals[np.newaxis])[0]):
            return ONE_CATEGORY
        return None

    details: dict[str, float | int | str] = {
        "pairable_values": float(per_unit.sum()),
        "level_of_measurement": level_of_measurement,
    }
    return items.estimate(contributions, statistic, why_undefined, details, resampling)


def _alpha_distance(
    level_of_measurement: MeasurementLevel, categories: tuple[Hashable, ...]
) -> Callable[[np.ndarray], np.ndarray]:
    q = len(categories)
    if level_of_measurement == "nominal":
        nominal = 1.0 - np.eye(q)
        return lambda marginals: nominal[np.newaxis]
    if level_of_measurement == "interval":
        values = _interval_positions(categories)
        interval = np.subtract.outer(values, values) ** 2
        return lambda marginals: interval[np.newaxis]
    index = np.arange(q)
    low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)

    def ordinal(marginals: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(marginals, axis=1)
        between = cumulative[:, high] - cumulative[:, low] + marginals[:, low]
        half = (marginals[:, :, np.newaxis] + marginals[:, np.newaxis, :]) / 2.0
        return (between - half) ** 2

    return ordinal


# --- references for reading a judge's figure -----------------------------------------------


def human_ceiling(
    votes: pd.DataFrame | CodedVotes,
    *,
    humans: Sequence[Hashable] | None = None,
    metric: str = "percent_agreement",
    weights: Weights = "unweighted",
    level_of_measurement: MeasurementLevel = "nominal",
    **options: Unpack[VoteOptions],
) -> Result:
    """The same metric among humans: how well a judge could hope to agree with people.

    Two-rater metrics (``percent_agreement``, ``cohen_kappa``, ``scott_pi``, ``gwet_ac``) use
    every pair of distinct humans on the same item, as MT-Bench's human-vs-human agreement
    does; each unordered pair counts once, in both orientations with weight 1/2 (so Cohen's
    kappa equals Scott's pi here). ``fleiss_kappa`` and ``krippendorff_alpha`` run on the
    humans' votes. ``humans`` defaults to every rater in ``votes``: pass the human ids when
    ``votes`` also holds judges.
    """
    if metric == "fleiss_kappa":
        return fleiss_kappa(votes, raters=humans, **options)
    if metric == "krippendorff_alpha":
        return krippendorff_alpha(
            votes, level_of_measurement=level_of_measurement, raters=humans, **options
        )
    reading, resampling = _options(**options)
    pairs = _pairs_among(as_coded(votes, **reading._asdict()), humans)
    return _two_rater(metric, pairs, weights, *resampling)


def constant_answer_baseline(
    votes: pd.DataFrame | CodedVotes,
    *,
    reference: Sequence[Hashable] | None = None,
    metric: str = "percent_agreement",
    weights: Weights = "unweighted",
    **options: Unpack[VoteOptions],
) -> Result:
    """Score of a rater that always gives the reference raters' most common answer.

    The answer is the category with most reference votes (ties broken by category order,
    so A before tie before B) and is reported as ``details["answer"]``. A judge's percent
    agreement means little unless it beats this; chance-corrected coefficients give such a
    rater 0 (or undefined when the references also used one category only).
    """
    reading, resampling = _options(**options)
    coded = as_coded(votes, **reading._asdict())
    theirs = coded.counts(coded.rater_codes(reference))
    keep = theirs.sum(axis=1) > 0
    theirs = theirs[keep]
    answer = int(np.argmax(theirs.sum(axis=0))) if len(theirs) else 0
    mine = np.zeros_like(theirs)
    mine[:, answer] = 1.0
    pairs = _kept_pairs(coded, engine.outer(mine, theirs), keep)
    extra: dict[str, float | int | str] = {}
    if len(theirs):
        extra["answer"] = str(coded.categories[answer])
    return _two_rater(metric, pairs, weights, *resampling, extra)
