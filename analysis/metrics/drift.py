"""Drift between two judges (or two versions of one judge) on the same pairs.

Inputs are verdicts per pair, *about the responses* (``A`` names the same response for both
judges): ``first`` is the baseline (v1), ``second`` the candidate (v2). ``both_bad`` reads as
a tie; a pair missing either verdict is left out of the comparison.

- **Flip rate**: share of pairs whose combined verdict differs between the two judges; the
  **flip matrix** counts (first, second) over A / tie / B (rows: first).
- **Agreement with people** (the people's verdict per pair: their majority, or the lead's
  adjudication) for both judges side by side on the pairs people labelled, and the paired
  difference ``second - first``: both coefficients are computed on the *same* cluster
  resamples (:func:`analysis.metrics.bootstrap.resample_sums`, coefficients from
  :func:`analysis.metrics.engine.statistics`), so the interval of the difference is paired.
- **McNemar's test** (McNemar 1947) on the discordant pairs: b = first right and second wrong,
  c = first wrong and second right; exact two-sided binomial p when b + c < 25, otherwise the
  chi-square statistic (|b - c| - 1)^2 / (b + c) with one degree of freedom (as
  ``statsmodels.stats.contingency_tables.mcnemar`` with ``exact``/``correction``).
- **Shifted slices**: per slice value (category, response class, length bucket, stratum...),
  (i) its flip rate against the flip rate of the other pairs: Fisher's exact test with
  Lancaster's mid-p, one-sided (a slice is flagged where the changes concentrate, not where
  there are fewer: with every flip in one slice, all the others are "lower"; a normal
  approximation flagged 31 of the seeded test's 200 null runs at a 10% level, mid-p 15); (ii) the
  change in its agreement with people, McNemar (two-sided: a drop or a gain). All p-values
  of all slices go through one Benjamini-Hochberg step-up (Benjamini & Hochberg 1995) at
  level ``alpha``; a slice is *shifted* when any of its tests is rejected. The tests treat
  pairs as independent (the intervals resample prompts); slices with fewer than ``min_n``
  pairs are shown, not tested.
- **Agreement in both orders** (Auto-J and JudgeBench's reporting): a pair counts as right only
  when the verdict in *each* presentation order equals the people's; **single-order
  agreement** for each order; **position consistency** per slice (share of pairs whose two
  orders agree, :func:`analysis.metrics.position.position_report`).

Everything here is pure numpy/pandas. :func:`drift_figures` gives the whole comparison as
JSON-ready dicts (``analysis.compare`` feeds it from the database; the gate reads its
``gate_figures``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd
from scipy import stats

from analysis.metrics import bootstrap, engine, position
from analysis.metrics.outcomes import (
    BOTH_BAD,
    NO_ITEMS,
    TIE,
    A,
    B,
    Estimate,
    Result,
    Undefined,
    result_json,
)
from analysis.metrics.votes import show

VERDICTS = (A, TIE, B)
AGREEMENT_KINDS = ("percent_agreement", "cohen_kappa", "scott_pi", "gwet_ac")
LENGTH_BUCKETS = ("short", "medium", "long")
EXACT_BELOW = 25  # McNemar: exact binomial p when fewer discordant pairs than this


def verdicts(values: Any, name: str) -> np.ndarray:
    """Verdicts as an object array of A / tie / B / None (``both_bad`` read as a tie).

    Raises ValueError naming the first bad position: ``second[3] is 'C'; expected ...``.
    """
    series = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    series = series.mask(series.eq(BOTH_BAD), TIE)
    missing = series.isna()
    known = missing | series.isin(VERDICTS)
    if not known.all():
        position = int(np.flatnonzero(~known.to_numpy())[0])
        raise ValueError(
            f"{name}[{position}] is {show(series.iloc[position])}; expected A, B, tie or both_bad"
        )
    out = series.to_numpy(dtype=object, copy=True)
    out[missing.to_numpy()] = None
    return out


def _pair(first: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
    one, two = verdicts(first, "first"), verdicts(second, "second")
    if one.shape != two.shape:
        raise ValueError(f"first has {len(one)} verdicts but second has {len(two)}")
    return one, two


def _onehot(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.column_stack([values == v for v in VERDICTS]), dtype=float)


def _clusters(clusters: Any, n: int) -> np.ndarray | None:
    if clusters is None:
        return None
    labels = np.asarray(clusters, dtype=object)
    if labels.shape != (n,):
        raise ValueError(f"clusters has {labels.shape[0]} labels for {n} pairs")
    return labels


def _subset(labels: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return labels[mask] if labels is not None else None


def _people(people: Any, n: int) -> np.ndarray:
    truth = verdicts(people, "people")
    if truth.shape != (n,):
        raise ValueError(f"people has {len(truth)} verdicts for {n} pairs")
    return truth


# --- flips -----------------------------------------------------------------------------------


def flip_matrix(first: Any, second: Any) -> np.ndarray:
    """3 x 3 counts of (first, second) verdicts over A / tie / B; rows are ``first``."""
    one, two = _pair(first, second)
    both = pd.notna(one) & pd.notna(two)
    return (_onehot(one[both]).T @ _onehot(two[both])).astype(int)


class Resampled(TypedDict, total=False):
    """How :func:`flip_rate` and :func:`order_agreement` resample (defaults in
    :func:`_shares`): ``clusters`` (one label per pair, e.g. its prompt; default the pairs),
    ``n_boot`` (1000), ``level`` (0.95), ``seed``."""

    clusters: Any
    n_boot: int
    level: float
    seed: bootstrap.Seed


def _shares(
    contributions: np.ndarray,
    keep: np.ndarray,
    columns: Mapping[int, Mapping[str, float | int | str]],
    *,
    clusters: Any = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
) -> list[Result]:
    """Each of ``columns`` (index: details) as a share of the kept pairs, by
    :func:`bootstrap.share_estimate`, resampling the kept pairs' ``clusters`` or the pairs."""
    labels = _subset(_clusters(clusters, len(keep)), keep)
    resampling = bootstrap.Resampling(n_boot, level, seed)
    return [
        bootstrap.share_estimate(contributions, column, labels, resampling, details)
        for column, details in columns.items()
    ]


def flip_rate(first: Any, second: Any, **resampled: Unpack[Resampled]) -> Result:
    """Share of pairs (with both verdicts) whose verdict differs, with a percentile bootstrap CI
    resampling ``clusters`` (e.g. prompts) or pairs (:class:`Resampled`). Details: ``flips``,
    ``pairs``."""
    one, two = _pair(first, second)
    both = pd.notna(one) & pd.notna(two)
    flipped = (one[both] != two[both]).astype(float)
    contributions = np.column_stack([np.ones(len(flipped)), flipped])
    details: dict[str, float | int | str] = {"flips": int(flipped.sum()), "pairs": int(both.sum())}
    return _shares(contributions, both, {1: details}, **resampled)[0]


def length_buckets(lengths: Any, labels: Sequence[str] = LENGTH_BUCKETS) -> np.ndarray:
    """Each pair's length bucket: equal-count bins of ``lengths`` (e.g. both responses'
    characters), named ``labels``; None where the length is missing. Ties at a cut stay
    together (bins by rank of the distinct cut points), so a bucket may hold more pairs."""
    values = pd.to_numeric(pd.Series(np.asarray(lengths, dtype=object)), errors="coerce")
    out = np.full(len(values), None, dtype=object)
    known = values.notna().to_numpy()
    if not known.any():
        return out
    cuts = np.unique(np.quantile(values[known], np.linspace(0, 1, len(labels) + 1)[1:-1]))
    codes = np.searchsorted(cuts, values[known].to_numpy(), side="right")
    out[known] = np.asarray(labels, dtype=object)[codes]
    return out


# --- tests -----------------------------------------------------------------------------------


def mcnemar(first_right: Any, second_right: Any) -> dict[str, Any]:
    """McNemar's test of paired right/wrong outcomes (missing = not compared).

    b = first right, second wrong; c = first wrong, second right. Exact two-sided binomial
    p-value (``min(1, 2 P(X <= min(b, c)))``, X ~ Bin(b + c, 1/2)) when b + c < 25, else the
    chi-square statistic with continuity correction, (|b - c| - 1)^2 / (b + c), on 1 df.
    """
    one = pd.Series(np.asarray(first_right, dtype=object)).astype("boolean")
    two = pd.Series(np.asarray(second_right, dtype=object)).astype("boolean")
    if len(one) != len(two):
        raise ValueError(f"first_right has {len(one)} entries but second_right has {len(two)}")
    both = (one.notna() & two.notna()).to_numpy()
    first_ok = one[both].to_numpy(dtype=bool)
    second_ok = two[both].to_numpy(dtype=bool)
    b = int((first_ok & ~second_ok).sum())
    c = int((~first_ok & second_ok).sum())
    discordant = b + c
    if discordant == 0:
        return {"b": 0, "c": 0, "n": int(both.sum()), "statistic": None, "p_value": 1.0,
                "exact": True}  # fmt: skip
    if discordant < EXACT_BELOW:
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), discordant, 0.5)))
        return {"b": b, "c": c, "n": int(both.sum()), "statistic": float(min(b, c)),
                "p_value": p, "exact": True}  # fmt: skip
    statistic = (abs(b - c) - 1.0) ** 2 / discordant
    return {
        "b": b,
        "c": c,
        "n": int(both.sum()),
        "statistic": float(statistic),
        "p_value": float(stats.chi2.sf(statistic, 1)),
        "exact": False,
    }


def flip_excess_p(flips: int, n: int, total_flips: int, total_n: int) -> float:
    """One-sided mid-p that a slice of ``n`` of the ``total_n`` pairs holds ``flips`` or more
    of the ``total_flips`` flips by chance: Fisher's exact test of the slice against the other
    pairs (the hypergeometric tail, conditional on the total), minus half the probability of
    exactly ``flips`` (Lancaster's mid-p, which keeps the false-alarm rate near its nominal
    level where Fisher's exact p is conservative). 1.0 when the slice or the rest is empty.
    """
    if n == 0 or n >= total_n:
        return 1.0
    tail = stats.hypergeom.sf(flips - 1, total_n, total_flips, n)
    return float(min(1.0, tail - 0.5 * stats.hypergeom.pmf(flips, total_n, total_flips, n)))


def benjamini_hochberg(p_values: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up: (rejected, adjusted p-values), in the input's order.

    Adjusted p_(i) = min over j >= i of m p_(j) / j, capped at 1 (as statsmodels'
    ``multipletests(method="fdr_bh")``); rejected where adjusted <= alpha.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be numbers between 0 and 1")
    order = np.argsort(p, kind="stable")
    m = len(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= alpha, adjusted


# --- agreement with people -------------------------------------------------------------------


def agreement_change(
    first: Any,
    second: Any,
    people: Any,
    *,
    clusters: Any = None,
    kinds: Sequence[str] = AGREEMENT_KINDS,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Each agreement coefficient (S1: A / tie / B) of both judges with ``people``, and the
    paired difference ``second - first``, on the pairs where all three have a verdict.

    Both judges' tables are resampled together (same clusters, same draws), so the delta's
    percentile interval is paired. Returns ``{"n", "kinds": {kind: {"first", "second",
    "delta"}}, "mcnemar"}`` with result JSON for each figure.
    """
    one, two = _pair(first, second)
    truth = _people(people, len(one))
    labels = _clusters(clusters, len(one))
    keep = pd.notna(one) & pd.notna(two) & pd.notna(truth)
    n = int(keep.sum())
    ref = _onehot(truth[keep])
    rows = np.hstack([engine.outer(_onehot(one[keep]), ref), engine.outer(_onehot(two[keep]), ref)])
    q, width = len(VERDICTS), len(VERDICTS) ** 2
    unknown = [k for k in kinds if k not in engine.TWO_RATER_KINDS]
    if unknown:
        raise ValueError(f"unknown agreement kind {unknown[0]!r}")
    totals = rows.sum(axis=0)[np.newaxis, :]
    point_one = engine.statistics(totals[:, :width], q, kinds)
    point_two = engine.statistics(totals[:, width:], q, kinds)
    replicates = None
    if n_boot > 0 and n > 0:
        replicates = bootstrap.resample_sums(
            rows, clusters=_subset(labels, keep), n_boot=n_boot, seed=seed
        )
        boot_one = engine.statistics(replicates[:, :width], q, kinds)
        boot_two = engine.statistics(replicates[:, width:], q, kinds)
    out: dict[str, Any] = {}
    for kind in kinds:
        values = (point_one[kind][0][0], point_two[kind][0][0])
        results = []
        for index, value in enumerate((*values, values[1] - values[0])):
            if n == 0:
                results.append(result_json(Undefined(NO_ITEMS, n=0)))
                continue
            if not math.isfinite(value):
                results.append(result_json(Undefined("only one category observed", n=n)))
                continue
            ci = None
            if replicates is not None:
                series = (
                    boot_one[kind][0]
                    if index == 0
                    else boot_two[kind][0]
                    if index == 1
                    else boot_two[kind][0] - boot_one[kind][0]
                )
                ci = bootstrap.percentile_interval(series, level)
            results.append(
                result_json(Estimate(float(value), n, ci=ci, level=level if ci else None))
            )
        out[kind] = dict(zip(("first", "second", "delta"), results, strict=True))
    right_one = np.where(keep, one == truth, None)
    right_two = np.where(keep, two == truth, None)
    return {"n": n, "kinds": out, "mcnemar": mcnemar(right_one, right_two)}


def order_agreement(
    original: Any, swapped: Any, people: Any, **resampled: Unpack[Resampled]
) -> dict[str, Any]:
    """Agreement with ``people`` counting a pair right only when both orders are right
    (``both_orders``), and of each order alone (``original_order``, ``swapped_order``), on
    the pairs with both orders and a people's verdict (the same pairs for all three);
    resampled as :func:`flip_rate` is."""
    first, second = _pair(original, swapped)
    truth = _people(people, len(first))
    keep = pd.notna(first) & pd.notna(second) & pd.notna(truth)
    right_ab = first[keep] == truth[keep]
    right_ba = second[keep] == truth[keep]
    contributions = np.column_stack(
        [np.ones(int(keep.sum())), right_ab & right_ba, right_ab, right_ba]
    ).astype(float)
    names = {1: "both_orders", 2: "original_order", 3: "swapped_order"}
    rights = {column: {"right": int(contributions[:, column].sum())} for column in names}
    results = _shares(contributions, keep, rights, **resampled)
    out: dict[str, Any] = {"n": int(keep.sum())}
    out.update({name: result_json(r) for name, r in zip(names.values(), results, strict=True)})
    return out


# --- the whole comparison --------------------------------------------------------------------

FRAME_COLUMNS = ("first", "second")
ORDER_COLUMNS = ("first_ab", "first_ba", "second_ab", "second_ba")


def slice_tests(
    frame: pd.DataFrame,
    slices: Sequence[str],
    *,
    alpha: float = 0.05,
    min_n: int = 20,
) -> list[dict[str, Any]]:
    """Every slice value's flip rate and agreement change, tested; shifted slices first.

    ``frame`` has ``first``, ``second`` (verdicts, normalised by :func:`verdicts`), optional
    ``people`` and the ``slices`` columns. Each row: ``slice`` (column), ``value``, ``n``,
    ``flips``, ``flip_rate``, ``rest_flip_rate``, ``p_flip``, and with people
    ``labelled``, ``agreement_first``, ``agreement_second``, ``agreement_delta``,
    ``p_agreement``; ``q_flip`` / ``q_agreement`` (BH-adjusted over every test of every
    slice), ``shifted`` and ``why`` (which test). Order: shifted first by smallest q, then
    the rest by slice and value.
    """
    one, two = _pair(frame["first"], frame["second"])
    both = pd.notna(one) & pd.notna(two)
    flipped = one != two
    truth = verdicts(frame["people"], "people") if "people" in frame else None
    total_flips, total_n = int((flipped & both).sum()), int(both.sum())
    rows: list[dict[str, Any]] = []
    tests: list[tuple[int, str, float]] = []
    for column in slices:
        if column not in frame:
            raise ValueError(f"no slice column {column!r} (columns: {', '.join(frame.columns)})")
        values = frame[column].to_numpy(dtype=object)
        present = pd.notna(values)
        for value in sorted({v for v in values[present & both]}, key=str):
            inside = present & (values == value) & both
            n = int(inside.sum())
            flips = int((flipped & inside).sum())
            row: dict[str, Any] = {
                "slice": column,
                "value": str(value),
                "n": n,
                "flips": flips,
                "flip_rate": flips / n if n else None,
                "rest_flip_rate": (total_flips - flips) / (total_n - n) if total_n > n else None,
                "p_flip": None,
                "q_flip": None,
                "tested": n >= min_n and total_n > n,
            }
            if row["tested"]:
                row["p_flip"] = flip_excess_p(flips, n, total_flips, total_n)
                tests.append((len(rows), "flip", row["p_flip"]))
            if truth is not None:
                labelled = inside & pd.notna(truth)
                right_one = np.where(labelled, one == truth, None)
                right_two = np.where(labelled, two == truth, None)
                m = int(labelled.sum())
                row["labelled"] = m
                row["agreement_first"] = float((one == truth)[labelled].mean()) if m else None
                row["agreement_second"] = float((two == truth)[labelled].mean()) if m else None
                row["agreement_delta"] = (
                    row["agreement_second"] - row["agreement_first"] if m else None
                )
                row["p_agreement"] = None
                row["q_agreement"] = None
                if m >= min_n:
                    row["p_agreement"] = mcnemar(right_one, right_two)["p_value"]
                    tests.append((len(rows), "agreement", row["p_agreement"]))
            rows.append(row)
    rejected, adjusted = benjamini_hochberg([p for *_, p in tests], alpha)
    for row in rows:
        row["shifted"] = False
        row["why"] = []
    for (index, test, _), reject, q in zip(tests, rejected, adjusted, strict=True):
        rows[index][f"q_{test}"] = float(q)
        if reject:
            rows[index]["shifted"] = True
            rows[index]["why"].append(test)

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        qs = [q for q in (row["q_flip"], row.get("q_agreement")) if q is not None]
        return (not row["shifted"], min(qs) if row["shifted"] else 0.0, row["slice"], row["value"])

    return sorted(rows, key=order)


def _slice_intervals(
    frame: pd.DataFrame,
    rows: list[dict[str, Any]],
    clusters: np.ndarray | None,
    n_boot: int,
    level: float,
    seed: int,
) -> None:
    for row in rows:
        column = frame[row["slice"]]
        inside = (column.notna() & (column.astype(str) == row["value"])).to_numpy()
        result = flip_rate(
            frame["first"].to_numpy(dtype=object)[inside],
            frame["second"].to_numpy(dtype=object)[inside],
            clusters=_subset(clusters, inside),
            n_boot=n_boot,
            level=level,
            seed=seed,
        )
        row["flip_rate_ci"] = None
        row["clusters"] = result.details.get("clusters") if clusters is not None else row["n"]
        if isinstance(result, Estimate) and result.ci is not None:
            row["flip_rate_ci"] = [round(result.ci[0], 6), round(result.ci[1], 6)]


def position_by_slice(
    original: Any,
    swapped: Any,
    frame: pd.DataFrame,
    slices: Sequence[str],
    *,
    clusters: Any = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: bootstrap.Seed = 0,
) -> dict[str, Any]:
    """Position consistency overall (``"all"``) and per slice value: ``{slice: {value:
    result JSON}}`` with details ``consistent``, ``primacy``, ``recency``."""
    first = np.asarray(original, dtype=object)
    labels = _clusters(clusters, len(first))
    # Checked once; each slice's figure is position_report's consistency on its subset (its
    # fairness, which a slice does not show, is not computed).
    first, second = position.checked_orders(first, swapped)
    resampling = bootstrap.Resampling(n_boot, level, seed)

    def one(mask: np.ndarray) -> dict[str, Any]:
        counts = position.order_counts(first[mask], second[mask], _subset(labels, mask))
        out = result_json(counts.consistency(resampling))
        out["details"].update(
            consistent=counts.consistent, primacy=counts.primacy, recency=counts.recency
        )
        return out

    everything = np.ones(len(first), dtype=bool)
    result: dict[str, Any] = {"all": one(everything)}
    for column in slices:
        values = frame[column].to_numpy(dtype=object)
        present = pd.notna(values)
        result[column] = {
            str(v): one(present & (values == v)) for v in sorted(set(values[present]), key=str)
        }
    return result


def drift_figures(
    frame: pd.DataFrame,
    *,
    slices: Sequence[str] = (),
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    min_n: int = 20,
    kinds: Sequence[str] = AGREEMENT_KINDS,
) -> dict[str, Any]:
    """The whole comparison of ``first`` (v1) and ``second`` (v2), JSON-ready.

    ``frame``: one row per pair with ``first``, ``second`` (combined verdicts), optionally
    ``prompt`` (the bootstrap's cluster), ``people`` (their verdict), the four order columns
    ``first_ab``... (for agreement in both orders and position consistency) and the
    ``slices`` columns. Keys: ``n``, ``flip_rate``, ``flip_matrix`` (rows first: A, tie, B),
    ``agreement`` (:func:`agreement_change`), ``slices`` (:func:`slice_tests`, each with
    ``flip_rate_ci``), ``orders`` (per judge: :func:`order_agreement` and
    :func:`position_by_slice`), ``settings``.
    """
    missing = [c for c in FRAME_COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"the comparison needs columns first and second (missing {missing[0]})")
    frame = frame.reset_index(drop=True)
    clusters = frame["prompt"].to_numpy(dtype=object) if "prompt" in frame else None
    boot: dict[str, Any] = {"n_boot": n_boot, "level": level, "seed": seed}
    out: dict[str, Any] = {
        "n": int((frame["first"].notna() & frame["second"].notna()).sum()),
        "flip_rate": result_json(
            flip_rate(frame["first"], frame["second"], clusters=clusters, **boot)
        ),
        "flip_matrix": {
            "labels": list(VERDICTS),
            "counts": flip_matrix(frame["first"], frame["second"]).tolist(),
        },
        "settings": {**boot, "alpha": alpha, "min_n": min_n, "slices": list(slices)},
    }
    if "people" in frame:
        out["agreement"] = agreement_change(
            frame["first"],
            frame["second"],
            frame["people"],
            clusters=clusters,
            kinds=kinds,
            **boot,
        )
    rows = slice_tests(frame, slices, alpha=alpha, min_n=min_n)
    _slice_intervals(frame, rows, clusters, n_boot, level, seed)
    out["slices"] = rows
    out["shifted"] = sum(1 for row in rows if row["shifted"])
    orders: dict[str, Any] = {}
    for judge in ("first", "second"):
        ab, ba = f"{judge}_ab", f"{judge}_ba"
        if ab not in frame or ba not in frame:
            continue
        entry: dict[str, Any] = {
            "position_consistency": position_by_slice(
                frame[ab], frame[ba], frame, slices, clusters=clusters, **boot
            )
        }
        if "people" in frame:
            entry["agreement"] = order_agreement(
                frame[ab], frame[ba], frame["people"], clusters=clusters, **boot
            )
        orders[judge] = entry
    out["orders"] = orders
    return out


MIN_CLUSTERS = 10  # a percentile interval from fewer resampled prompts is not trusted


def gate_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The drift figures a gate rule can name: ``flip_rate`` (overall and per slice value,
    keyed ``column=value``) and ``delta.<kind>`` for each agreement coefficient.

    A slice whose interval came from fewer than :data:`MIN_CLUSTERS` prompts (one prompt's
    pairs give a zero-width interval) is given without an interval, so a bound on it is
    INCONCLUSIVE rather than decided by a degenerate interval."""
    flip: dict[str, Any] = {"all": figures["flip_rate"]}
    for row in figures.get("slices", []):
        few = (row.get("clusters") or 0) < MIN_CLUSTERS
        flip[f"{row['slice']}={row['value']}"] = {
            "value": row["flip_rate"],
            "ci": None if few else row.get("flip_rate_ci"),
            "n": row["n"],
        }
    out: dict[str, Any] = {"flip_rate": flip}
    for kind, entry in figures.get("agreement", {}).get("kinds", {}).items():
        out[f"delta.{kind}"] = {"all": entry["delta"]}
    return out
