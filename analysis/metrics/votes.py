"""Long vote tables (item, rater, value) checked and turned into integer codes.

Every metric that takes votes accepts either the DataFrame or the :class:`CodedVotes` made
by :func:`code_votes`. Coding once and passing the result to many metrics saves the pandas
work on large tables; the tie policy, categories and cluster column are fixed at coding time.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.metrics.outcomes import OUTCOMES, S1, TiePolicy

VOTE_COLUMNS = ("item", "rater", "value")


@dataclass(frozen=True, eq=False)
class CodedVotes:
    """Votes as integer codes: ``item[k]``, ``rater[k]``, ``value[k]`` describe vote k.

    ``items``, ``raters`` and ``categories`` map codes back to names; ``cluster`` holds the
    cluster code of each item when a cluster column was given.
    """

    items: pd.Index
    raters: pd.Index
    categories: tuple[Hashable, ...]
    item: np.ndarray
    rater: np.ndarray
    value: np.ndarray
    cluster: np.ndarray | None
    policy: TiePolicy
    cluster_column: str | None

    @property
    def q(self) -> int:
        return len(self.categories)

    def rater_codes(self, names: Sequence[Hashable] | None) -> np.ndarray:
        """Codes of the named raters that voted at all (all raters when ``names`` is None)."""
        if names is None:
            return np.arange(len(self.raters))
        if isinstance(names, str):
            raise ValueError(f"give a list of raters, not the string {names!r}")
        codes = self.raters.get_indexer(pd.Index(list(names), dtype=object))
        return codes[codes >= 0]

    def counts(self, raters: np.ndarray) -> np.ndarray:
        """Per-item category counts (n_items x q) over the votes of ``raters``."""
        selected = np.zeros(len(self.raters) + 1, dtype=bool)
        selected[raters] = True
        mask = selected[self.rater]
        flat = self.item[mask] * self.q + self.value[mask]
        n = len(self.items)
        return np.bincount(flat, minlength=n * self.q).reshape(n, self.q).astype(float)


def show(value: object) -> str:
    """repr() for messages, without numpy's ``np.int64(...)`` wrapping."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def refuse_first(frame: pd.DataFrame, bad: pd.Series, column: str, problem: str) -> None:
    """Raise ValueError naming the first row where ``bad`` holds: its ``pair_id``, the value
    in ``column`` and what is wrong with it (``problem``)."""
    if bad.any():
        where = bad.idxmax()
        raise ValueError(
            f"column {column!r}, pair {show(frame.loc[where, 'pair_id'])}: "
            f"{show(frame.loc[where, column])} {problem}"
        )


def require_columns(frame: object, columns: Sequence[str], what: str) -> pd.DataFrame:
    """Return ``frame`` if it is a DataFrame with ``columns``, else raise a clear ValueError."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {', '.join(map(repr, missing))}")
    return frame


def code_votes(
    votes: pd.DataFrame,
    *,
    policy: TiePolicy = S1,
    categories: Sequence[Hashable] | None = None,
    cluster: str | None = None,
) -> CodedVotes:
    """Check and code a long vote table with columns ``item``, ``rater``, ``value``.

    Rows with a missing value are skipped (not rated). The tie policy is applied first.
    Categories default to the policy's verdict scale when every value is a verdict, otherwise
    to the sorted observed values. A rater voting twice on one item, a value outside
    ``categories`` or an item spread over two clusters raises ``ValueError`` naming the place.
    """
    columns = [*VOTE_COLUMNS, *([cluster] if cluster else [])]
    frame = require_columns(votes, columns, "votes")[columns].reset_index(drop=True)
    frame = frame[frame["value"].notna()]
    values = policy.apply(frame["value"])
    if len(values) != len(frame):
        frame = frame.loc[values.index]
    frame = frame.assign(value=values)

    item_codes, items = pd.factorize(frame["item"])
    rater_codes, raters = pd.factorize(frame["rater"])
    pair = item_codes.astype(np.int64) * max(len(raters), 1) + rater_codes
    duplicated = pd.Series(pair).duplicated().to_numpy()
    if duplicated.any():
        k = int(np.flatnonzero(duplicated)[0])
        raise ValueError(
            f"rater {show(raters[rater_codes[k]])} has more than one vote on item "
            f"{show(items[item_codes[k]])}; keep one vote per rater and item"
        )

    value_codes, observed = pd.factorize(frame["value"])
    if categories is None:
        if len(observed) and all(isinstance(v, str) and v in OUTCOMES for v in observed):
            categories = policy.categories
        else:
            try:
                categories = sorted(observed)
            except TypeError:
                categories = list(observed)
    categories = tuple(categories)
    mapping = pd.Index(categories, dtype=object).get_indexer(pd.Index(observed, dtype=object))
    if (mapping < 0).any():
        bad = observed[int(np.flatnonzero(mapping < 0)[0])]
        raise ValueError(f"value {show(bad)} is not one of the categories {list(categories)}")

    cluster_codes = None
    if cluster:
        labels = frame[cluster].to_numpy()
        first = np.full(len(items), -1, dtype=np.int64)
        first[item_codes[::-1]] = np.arange(len(item_codes) - 1, -1, -1)
        cluster_codes, _ = pd.factorize(labels[first])
        if (cluster_codes < 0).any():
            item = items[int(np.flatnonzero(cluster_codes < 0)[0])]
            raise ValueError(f"item {show(item)} has no {cluster!r}")
        vote_clusters, _ = pd.factorize(labels)
        per_item = vote_clusters[first][item_codes]
        spread = per_item != vote_clusters
        if spread.any():
            item = items[item_codes[int(np.flatnonzero(spread)[0])]]
            raise ValueError(f"item {show(item)} belongs to more than one {cluster!r}")
    return CodedVotes(
        items=pd.Index(items),
        raters=pd.Index(raters),
        categories=categories,
        item=np.asarray(item_codes, dtype=np.int64),
        rater=np.asarray(rater_codes, dtype=np.int64),
        value=np.asarray(mapping[value_codes], dtype=np.int64),
        cluster=np.asarray(cluster_codes, dtype=np.int64) if cluster_codes is not None else None,
        policy=policy,
        cluster_column=cluster,
    )


def as_coded(
    data: pd.DataFrame | CodedVotes,
    *,
    policy: TiePolicy | None,
    categories: Sequence[Hashable] | None,
    cluster: str | None,
) -> CodedVotes:
    """Code ``data`` if it is a DataFrame; check coded votes agree with the arguments."""
    if not isinstance(data, CodedVotes):
        return code_votes(data, policy=policy or S1, categories=categories, cluster=cluster)
    if policy is not None and policy != data.policy:
        raise ValueError(
            f"these votes were coded under {data.policy.name}; code them again for {policy.name}"
        )
    if categories is not None and tuple(categories) != data.categories:
        raise ValueError("these votes were coded with other categories; code them again")
    if cluster is not None and cluster != data.cluster_column:
        raise ValueError(f"these votes were coded without the cluster column {cluster!r}")
    return data
