"""Several raters' votes on an item into one label: majority vote and Dawid-Skene.

METHODS.md section 8. Majority vote takes the most common verdict, with an explicit rule for
items where two verdicts share the top count. Dawid & Skene (1979, "Maximum likelihood
estimation of observer error-rates using the EM algorithm") model each rater r by a confusion
matrix pi_r[k, l] = P(r answers l | true class k) and the classes by prior p_k; EM alternates

- E-step: T_ik proportional to p_k prod_{votes v on i} pi_{r_v}[k, l_v],
- M-step: p_k = mean_i T_ik; pi_r[k, l] proportional to sum_{votes of r answering l} T_ik,

starting from the majority-vote shares. An adjudicated label, where one exists, overrides
both (and is held fixed during EM, so it also informs the raters' confusion matrices).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from analysis.metrics.outcomes import TIE, TiePolicy
from analysis.metrics.votes import CodedVotes, as_coded, show

TieBreak = Literal["tie", "none", "first", "random"]


def _adjudicated_codes(
    coded: CodedVotes, adjudicated: Mapping[Hashable, Hashable] | pd.Series | None
) -> np.ndarray:
    """Per item: the adjudicated category code, or -1."""
    fixed = np.full(len(coded.items), -1)
    if adjudicated is None:
        return fixed
    series = pd.Series(adjudicated, dtype=object).dropna()
    position = coded.items.get_indexer(series.index)
    categories = pd.Index(coded.categories)
    codes = categories.get_indexer(series.to_numpy())
    if (codes < 0).any():
        bad = series.index[codes < 0][0]
        raise ValueError(
            f"adjudicated label {show(series[bad])} of item {show(bad)} is not one of "
            f"{list(coded.categories)}"
        )
    found = position >= 0
    fixed[position[found]] = codes[found]
    return fixed


def majority_vote(
    votes: pd.DataFrame | CodedVotes,
    *,
    tie_break: TieBreak = "tie",
    policy: TiePolicy | None = None,
    categories: Sequence[Hashable] | None = None,
    adjudicated: Mapping[Hashable, Hashable] | pd.Series | None = None,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Most common verdict per item, with an explicit rule when the top count is shared.

    ``tie_break``: ``"tie"`` - no majority means no preference, the label is ``tie``;
    ``"none"`` - the label is left empty (send the item to adjudication); ``"first"`` - the
    first of the tied categories in ``categories`` order; ``"random"`` - a seeded random
    pick among the tied categories. Returns one row per item: ``label``, ``votes``,
    ``support`` (share of the item's votes for the label) and ``decided_by``
    (``majority``, ``tie_break``, ``unresolved`` or ``adjudicated``).
    """
    if tie_break not in ("tie", "none", "first", "random"):
        raise ValueError(f"tie_break must be tie, none, first or random, got {tie_break!r}")
    coded = as_coded(votes, policy=policy, categories=categories, cluster=None)
    if tie_break == "tie" and TIE not in coded.categories:
        raise ValueError("tie_break='tie' needs 'tie' among the categories")
    counts = coded.counts(np.arange(len(coded.raters)))
    top = counts.max(axis=1, initial=0)
    is_top = (counts == top[:, np.newaxis]) & (top[:, np.newaxis] > 0)
    shared = is_top.sum(axis=1) > 1
    label_code = np.argmax(is_top, axis=1)
    decided = np.where(shared, "tie_break", "majority").astype(object)
    if tie_break == "tie":
        label_code = np.where(shared, coded.categories.index(TIE), label_code)
    elif tie_break == "none":
        label_code = np.where(shared, -1, label_code)
        decided[shared] = "unresolved"
    elif tie_break == "random":
        rng = np.random.default_rng(seed)
        noise = rng.random(counts.shape)
        label_code = np.where(shared, np.argmax(np.where(is_top, noise, -1.0), axis=1), label_code)
    fixed = _adjudicated_codes(coded, adjudicated)
    label_code = np.where(fixed >= 0, fixed, label_code)
    decided[fixed >= 0] = "adjudicated"

    total = counts.sum(axis=1)
    labels = np.array((*coded.categories, None), dtype=object)[label_code]
    support = np.where(
        label_code >= 0,
        counts[np.arange(len(counts)), np.maximum(label_code, 0)] / np.maximum(total, 1),
        np.nan,
    )
    return pd.DataFrame(
        {"label": labels, "votes": total.astype(int), "support": support, "decided_by": decided},
        index=pd.Index(coded.items, name="item"),
    )


@dataclass(frozen=True)
class DawidSkene:
    """Result of :func:`dawid_skene`.

    ``labels``: most probable class per item. ``posterior``: items x classes probabilities.
    ``confusion``: per rater, a classes x answers table, rows = true class, each row sums to
    1. ``accuracy``: per rater, sum_k p_k pi_r[k, k]. ``prior``: class shares p_k.
    """

    labels: pd.Series
    posterior: pd.DataFrame
    confusion: dict[Hashable, pd.DataFrame]
    accuracy: pd.Series
    prior: pd.Series
    log_likelihood: float
    iterations: int
    converged: bool


def dawid_skene(
    votes: pd.DataFrame | CodedVotes,
    *,
    policy: TiePolicy | None = None,
    categories: Sequence[Hashable] | None = None,
    adjudicated: Mapping[Hashable, Hashable] | pd.Series | None = None,
    smoothing: float = 0.01,
    max_iter: int = 200,
    tol: float = 1e-8,
) -> DawidSkene:
    """Dawid-Skene EM (1979): raters' confusion matrices and posterior labels.

    ``smoothing`` is a pseudo-count added to every confusion cell and class count, so a rater
    with few votes gets a near-uniform matrix instead of zeros. Stops when the log-likelihood
    changes by less than ``tol`` (relative) or after ``max_iter`` iterations.
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    coded = as_coded(votes, policy=policy, categories=categories, cluster=None)
    if len(coded.items) == 0:
        raise ValueError("votes holds no vote with a value")
    n_items, n_raters, q = len(coded.items), len(coded.raters), coded.q
    item, rater, value = coded.item, coded.rater, coded.value
    fixed = _adjudicated_codes(coded, adjudicated)
    counts = coded.counts(np.arange(n_raters))
    posterior = counts / counts.sum(axis=1, keepdims=True)
    posterior[fixed >= 0] = np.eye(q)[fixed[fixed >= 0]]
    cell = rater * q + value

    log_likelihood, previous, converged, iteration = -np.inf, -np.inf, False, 0
    confusion = np.full((n_raters, q, q), 1.0 / q)
    prior = np.full(q, 1.0 / q)
    while iteration < max_iter:
        iteration += 1
        prior = posterior.sum(axis=0) + smoothing
        prior /= prior.sum()
        given = np.stack(
            [
                np.bincount(cell, weights=posterior[item, k], minlength=n_raters * q)
                for k in range(q)
            ],
            axis=1,
        ).reshape(n_raters, q, q)  # rater, answer, true class
        confusion = given.transpose(0, 2, 1) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        with np.errstate(divide="ignore"):
            log_confusion = np.log(confusion)
            log_prior = np.log(prior)
        per_vote = log_confusion[rater, :, value]  # votes x true class
        joint = log_prior + np.stack(
            [np.bincount(item, weights=per_vote[:, k], minlength=n_items) for k in range(q)],
            axis=1,
        )
        norm = logsumexp(joint, axis=1, keepdims=True)
        posterior = np.exp(joint - norm)
        posterior[fixed >= 0] = np.eye(q)[fixed[fixed >= 0]]
        previous, log_likelihood = log_likelihood, float(norm.sum())
        if abs(log_likelihood - previous) <= tol * max(1.0, abs(log_likelihood)):
            converged = True
            break

    names = list(coded.categories)
    item_index = pd.Index(coded.items, name="item")
    posterior_frame = pd.DataFrame(posterior, index=item_index, columns=names)
    return DawidSkene(
        labels=pd.Series(
            np.array(names, dtype=object)[posterior.argmax(axis=1)], index=item_index, name="label"
        ),
        posterior=posterior_frame,
        confusion={
            r: pd.DataFrame(
                confusion[k],
                index=pd.Index(names, name="true"),
                columns=pd.Index(names, name="answer"),
            )
            for k, r in enumerate(coded.raters)
        },
        accuracy=pd.Series(
            (prior[np.newaxis, :] * np.diagonal(confusion, axis1=1, axis2=2)).sum(axis=1),
            index=pd.Index(coded.raters, name="rater"),
            name="accuracy",
        ),
        prior=pd.Series(prior, index=pd.Index(names, name="class"), name="prior"),
        log_likelihood=log_likelihood,
        iterations=iteration,
        converged=converged,
    )
