"""Few labels, many verdicts: prediction-powered estimates of a human mean (METHODS.md 6).

A judge has given a verdict f on every item; people have labelled a few, Y. Prediction-powered
inference (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic 2023, *Science* 382) estimates the
human mean theta = E[Y] as the judge's mean corrected by the judge's error on the labelled
items; PPI++ (Angelopoulos, Duchi & Zrnic 2023, arXiv 2311.01453) scales the judge's part by
lambda:

    theta_lambda = lambda mean(f~) + mean(Y - lambda f)
    se^2         = lambda^2 var(f~) / N + var(Y - lambda f) / n

with f~ the N judge verdicts used for the judge's mean and (Y, f) the n labelled items; the
interval is theta +- z se. ``lambda = 1`` is the original PPI, ``lambda = 0`` the classical
interval from the labels alone (exactly: mean(Y) +- z s / sqrt(n)). PPI++'s power tuning,
computed as in the paper (and the authors' ``ppi_py``: covariance with 1/n, variance of all
n + N verdicts with 1/(n + N - 1)), clipped to [0, 1]:

    lambda^ = Cov(Y, f) / ((1 + n / N) Var(f))

**Stratified audits.** When the labelled items were sampled by stratum (low-margin, refusal,
random control) with inclusion probability pi_i, pass ``weights`` = 1 / pi_i (and ``strata``)
so the hard strata do not pull the population figure toward themselves. The rectifier mean is
then the weighted (Hajek) mean, and its variance the Taylor-linearised variance of a stratified
design: with u_i = w_i (z_i - mean_w z) / sum w,

    var = sum_h n_h / (n_h - 1) sum_{i in h} (u_i - mean_h u)^2,

which is sum_h (N_h / N)^2 s_h^2 / n_h for stratified random sampling, and s^2 / n with one
stratum and equal weights. With weights or strata, lambda minimises that variance plus
lambda^2 var(f~) / N directly (the paper's formula is the equal-weight special case).

:func:`labels_needed` answers "about how many more labels for +/- x?" from an estimate's
variance parts, assuming the labels keep coming from the same design.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd

from analysis.metrics.outcomes import Estimate, Result, Undefined, normal_z
from analysis.metrics.votes import require_columns, show

Lambda = float | Literal["tune"]


def _array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(array).all():
        position = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name}[{position}] is not a finite number")
    return array


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    return normal_z(level)


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of the judge's unlabelled verdicts.

    All PPI needs of the N judge-only values is their mean and variance, so a large population
    can be summarised in the database (counts of wins, ties and losses) instead of being read
    value by value. :meth:`of` summarises an array; ``variance`` uses ddof = 1 as
    ``np.var(values, ddof=1)`` does.
    """

    n: int
    mean: float
    m2: float

    @classmethod
    def of(cls, values: Any) -> Moments:
        array = _array(values, "judge_unlabelled")
        if not len(array):
            return cls(0, 0.0, 0.0)
        mean = float(array.mean())
        return cls(len(array), mean, float(((array - mean) ** 2).sum()))

    @classmethod
    def of_outcomes(cls, wins: int, ties: int, losses: int) -> Moments:
        """Values 1 (win), 0.5 (tie) and 0 (loss) given by their counts."""
        n = wins + ties + losses
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = (wins + 0.5 * ties) / n
        squares = wins + 0.25 * ties
        return cls(n, mean, max(squares - n * mean * mean, 0.0))

    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else float("nan")

    def combined(self, other: Moments) -> Moments:
        """The moments of both sets of values together (Chan et al.'s pairwise update)."""
        n = self.n + other.n
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        return Moments(n, mean, self.m2 + other.m2 + delta * delta * self.n * other.n / n)


def _moments(values: Any) -> Moments:
    return values if isinstance(values, Moments) else Moments.of(values)


@dataclass(frozen=True)
class _Design:
    """Weights and stratum codes of the labelled items, with the linearised covariance."""

    weights: np.ndarray
    codes: np.ndarray
    names: Sequence[Hashable]

    def mean(self, values: np.ndarray) -> float:
        return float((self.weights * values).sum() / self.weights.sum())

    def covariance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Linearised design covariance of the weighted means of ``a`` and ``b``."""
        total = self.weights.sum()
        u = self.weights * (a - self.mean(a)) / total
        v = self.weights * (b - self.mean(b)) / total
        out = 0.0
        for code in range(len(self.names)):
            inside = self.codes == code
            size = int(inside.sum())
            du = u[inside] - u[inside].mean()
            dv = v[inside] - v[inside].mean()
            out += size / (size - 1) * float((du * dv).sum())
        return out


def _design(n: int, weights: Any, strata: Any) -> _Design | str:
    """The labelled items' design, or the reason it cannot give a variance."""
    if weights is None:
        w = np.ones(n)
    else:
        w = _array(weights, "weights")
        if w.shape != (n,):
            raise ValueError(f"weights has {len(w)} entries for {n} labelled items")
        if (w <= 0).any():
            position = int(np.flatnonzero(w <= 0)[0])
            raise ValueError(f"weights[{position}] is {w[position]}; weights must be positive")
    if strata is None:
        codes, names = np.zeros(n, dtype=np.int64), ["all"]
    else:
        labels = np.asarray(strata, dtype=object).ravel()
        if labels.shape != (n,):
            raise ValueError(f"strata has {len(labels)} entries for {n} labelled items")
        codes, uniques = pd.factorize(labels)
        if (codes < 0).any():
            raise ValueError(f"strata[{int(np.flatnonzero(codes < 0)[0])}] is missing")
        names = list(uniques)
    sizes = np.bincount(codes, minlength=len(names))
    if (sizes < 2).any():
        lonely = names[int(np.flatnonzero(sizes < 2)[0])]
        if strata is None:
            return "fewer than 2 labelled items"
        return f"stratum {show(lonely)} has a single label: its variance is unknown"
    return _Design(weights=w, codes=codes, names=names)


def tuned_lambda(
    labels: Any,
    judge_labelled: Any,
    judge_unlabelled: Any,
    *,
    weights: Any = None,
    strata: Any = None,
) -> float:
    """PPI++'s power-tuned lambda, clipped to [0, 1] (module docstring); 0 if undefined."""
    y = _array(labels, "labels")
    f = _array(judge_labelled, "judge_labelled")
    f_tilde = _moments(judge_unlabelled)
    n, big_n = len(y), f_tilde.n
    if n < 2 or big_n < 2:
        return 0.0
    if weights is None and strata is None:
        covariance = float(((y - y.mean()) * (f - f.mean())).sum() / n)
        variance = Moments.of(f).combined(f_tilde).variance()
        if not variance > 0:
            return 0.0
        value = covariance / ((1.0 + n / big_n) * variance)
    else:
        design = _design(n, weights, strata)
        if isinstance(design, str):
            return 0.0
        denominator = design.covariance(f, f) + f_tilde.variance() / big_n
        if denominator <= 0:
            return 0.0
        value = design.covariance(y, f) / denominator
    return float(min(1.0, max(0.0, value)))


class PpiOptions(TypedDict, total=False):
    """What :func:`ppi_row` passes on to :func:`ppi_mean` (defaults there)."""

    lam: Lambda
    weights: Any
    strata: Any
    level: float


def ppi_mean(
    labels: Any,
    judge_labelled: Any,
    judge_unlabelled: Any,
    *,
    lam: Lambda = "tune",
    weights: Any = None,
    strata: Any = None,
    level: float = 0.95,
) -> Result:
    """PPI / PPI++ estimate and interval of the human mean (module docstring).

    ``labels`` Y and ``judge_labelled`` f are aligned arrays over the n labelled items,
    ``judge_unlabelled`` holds the N verdicts whose mean stands for the judge's population
    mean (an array, or their :class:`Moments`). ``lam`` is a number in [0, 1] or ``"tune"``
    (PPI++). ``weights`` (inverse inclusion probabilities) and ``strata`` describe a
    stratified sample of the labelled items.

    ``details``: ``lambda``, ``n``, ``N``, ``se``, ``var_judge`` (lambda^2 var(f~) / N),
    ``var_labels`` (the rectifier's variance), and the classical estimate from the labels
    alone (``classical``, ``classical_low``, ``classical_high``) for comparison.
    """
    z = _z(level)
    y = _array(labels, "labels")
    f = _array(judge_labelled, "judge_labelled")
    f_tilde = _moments(judge_unlabelled)
    if f.shape != y.shape:
        raise ValueError(f"judge_labelled has {len(f)} entries for {len(y)} labels")
    n, big_n = len(y), f_tilde.n
    if n == 0:
        return Undefined("no labelled items", n=0)
    design = _design(n, weights, strata)
    if isinstance(design, str):
        return Undefined(design, n=n)
    if lam == "tune":
        value_lambda = tuned_lambda(y, f, f_tilde, weights=weights, strata=strata)
    elif isinstance(lam, int | float) and not isinstance(lam, bool) and 0.0 <= lam <= 1.0:
        value_lambda = float(lam)
    else:
        raise ValueError(f"lam must be a number between 0 and 1 or 'tune', got {lam!r}")
    if big_n < 2 and value_lambda > 0:
        return Undefined("fewer than 2 judge verdicts for the judge's mean", n=n)
    rectifier = y - value_lambda * f
    var_labels = design.covariance(rectifier, rectifier)
    var_judge = value_lambda**2 * f_tilde.variance() / big_n if value_lambda > 0 else 0.0
    judge_mean = f_tilde.mean if value_lambda > 0 else 0.0
    value = value_lambda * judge_mean + design.mean(rectifier)
    se = math.sqrt(max(var_labels + var_judge, 0.0))
    classical_value = design.mean(y)
    classical_se = math.sqrt(max(design.covariance(y, y), 0.0))
    return Estimate(
        value=value,
        n=n,
        ci=(value - z * se, value + z * se),
        level=level,
        details={
            "lambda": value_lambda,
            "n": n,
            "N": big_n,
            "se": se,
            "var_judge": var_judge,
            "var_labels": var_labels,
            "z": z,
            "classical": classical_value,
            "classical_low": classical_value - z * classical_se,
            "classical_high": classical_value + z * classical_se,
            "classical_se": classical_se,
        },
    )


def classical_mean(
    labels: Any, *, weights: Any = None, strata: Any = None, level: float = 0.95
) -> Result:
    """The labels-only estimate: :func:`ppi_mean` with lambda = 0 (normal interval)."""
    y = _array(labels, "labels")
    return ppi_mean(y, y, np.zeros(0), lam=0.0, weights=weights, strata=strata, level=level)


@dataclass(frozen=True)
class LabelsNeeded:
    """About how many more labels bring the interval to +/- ``half_width``.

    ``more`` is None when more labels alone cannot get there (``reason`` says why).
    """

    half_width: float
    more: int | None
    total: int | None
    reason: str


def labels_needed(estimate: Result, half_width: float) -> LabelsNeeded:
    """ "About N more labels for +/- x" from a :func:`ppi_mean` or :func:`classical_mean` result.

    The labels' variance part scales as 1/n (same design, same lambda); the judge's part stays
    as it is. Solve z sqrt(var_judge + var_labels n / n') <= x for n'.
    """
    if not half_width > 0:
        raise ValueError(f"half_width must be positive, got {half_width}")
    if not isinstance(estimate, Estimate) or "var_labels" not in estimate.details:
        why = estimate.reason if isinstance(estimate, Undefined) else "not a PPI estimate"
        return LabelsNeeded(half_width, None, None, f"no estimate yet: {why}")
    n = estimate.n
    z = float(estimate.details["z"])
    var_labels = float(estimate.details["var_labels"])
    var_judge = float(estimate.details["var_judge"])
    room = (half_width / z) ** 2 - var_judge
    if room <= 0:
        return LabelsNeeded(
            half_width,
            None,
            None,
            "the judge's part of the interval alone is wider: more judge verdicts are needed",
        )
    total = max(n, math.ceil(var_labels * n / room))
    more = total - n
    reason = "already there" if more == 0 else f"about {more} more labels for +/- {half_width:g}"
    return LabelsNeeded(half_width, more, total, reason)


def ppi_row(
    labels: Any,
    judge_labelled: Any,
    judge_unlabelled: Any,
    *,
    half_width: float | None = None,
    **options: Unpack[PpiOptions],
) -> dict[str, Any]:
    """One group's row of :func:`ppi_by_group` (its columns but the group keys), from the
    labelled values and the judge's unlabelled values or their :class:`Moments`; ``options``
    as for :func:`ppi_mean`."""
    everything = _moments(judge_unlabelled)
    labelled_count = len(_array(labels, "labels"))
    estimate = ppi_mean(labels, judge_labelled, everything, **options)
    row: dict[str, Any] = {
        "n_labelled": labelled_count,
        "n_judged": everything.n,
        "judge_only": everything.mean if everything.n else np.nan,
    }
    if isinstance(estimate, Estimate) and estimate.ci is not None:
        d = estimate.details
        se = float(d["se"])
        classical_se = float(d["classical_se"])
        row.update(
            classical=d["classical"],
            classical_low=d["classical_low"],
            classical_high=d["classical_high"],
            ppi=estimate.value,
            ppi_low=estimate.ci[0],
            ppi_high=estimate.ci[1],
            **{"lambda": d["lambda"]},
            effective_labels=labelled_count * (classical_se / se) ** 2 if se > 0 else np.nan,
            note="",
        )
    else:
        row.update(note=str(estimate.reason))
    if half_width is not None:
        more = labels_needed(estimate, half_width).more
        row["labels_more"] = np.nan if more is None else more
    return row


def ppi_by_group(
    frame: pd.DataFrame,
    by: str | Sequence[str],
    *,
    human: str = "human",
    judge: str = "judge",
    weight: str | None = None,
    stratum: str | None = None,
    lam: Lambda = "tune",
    level: float = 0.95,
    half_width: float | None = None,
) -> pd.DataFrame:
    """PPI++ human win rates per group (per model, per response class, ...).

    ``frame`` has one row per item and unit of the mean, e.g. one row per (pair, model) for a
    model's win rate: the ``by`` column(s), ``judge`` (the judge's value in [0, 1]: 1 this
    model won, 0 lost, 0.5 tie), ``human`` (the same from the people, missing when the item was
    not labelled) and optionally ``weight`` (inverse inclusion probability of a labelled item)
    and ``stratum``. The judge's mean is over all the group's rows (every item the judge
    judged), the rectifier over its labelled rows.

    Returns one row per group: ``n_labelled``, ``n_judged``, ``judge_only`` (the judge's mean),
    ``classical`` / ``classical_low`` / ``classical_high`` (labels alone, weighted if
    weights are given), ``ppi`` / ``ppi_low`` / ``ppi_high``, ``lambda``, ``effective_labels``
    (how many labels the classical interval would need to be as narrow) and ``note``; with
    ``half_width``, also ``labels_more``: about how many more labels (same design) bring the
    group's interval to +/- ``half_width`` (:func:`labels_needed`; NaN when labels alone
    cannot).
    """
    keys = [by] if isinstance(by, str) else list(by)
    extra = [c for c in (weight, stratum) if c is not None]
    data = require_columns(frame, [*keys, human, judge, *extra], "frame")
    judged = pd.to_numeric(data[judge], errors="coerce")
    if judged.isna().any() or ((judged < 0) | (judged > 1)).any():
        where = (judged.isna() | (judged < 0) | (judged > 1)).idxmax()
        raise ValueError(f"frame row {where}: {judge} is {show(data.loc[where, judge])}")
    labelled_values = pd.to_numeric(data[human], errors="coerce")
    bad = data[human].notna() & (
        labelled_values.isna() | (labelled_values < 0) | (labelled_values > 1)
    )
    if bad.any():
        where = bad.idxmax()
        raise ValueError(f"frame row {where}: {human} is {show(data.loc[where, human])}")
    data = data.assign(_f=judged, _y=labelled_values)
    rows = []
    group_key: str | list[str] = keys[0] if len(keys) == 1 else keys
    for value, group in data.groupby(group_key, sort=True, dropna=True):
        labelled = group[group["_y"].notna()]
        row: dict[str, Any] = dict(
            zip(keys, value if isinstance(value, tuple) else (value,), strict=True)
        )
        row.update(
            ppi_row(
                labelled["_y"],
                labelled["_f"],
                group["_f"],
                weights=labelled[weight] if weight is not None else None,
                strata=labelled[stratum] if stratum is not None else None,
                lam=lam,
                level=level,
                half_width=half_width,
            )
        )
        rows.append(row)
    columns = [
        *keys,
        "n_labelled",
        "n_judged",
        "judge_only",
        "classical",
        "classical_low",
        "classical_high",
        "ppi",
        "ppi_low",
        "ppi_high",
        "lambda",
        "effective_labels",
        "note",
    ]
    if half_width is not None:
        columns.append("labels_more")
    return pd.DataFrame(rows, columns=columns)
