"""Anytime-valid confidence sequences for a bounded mean (METHODS.md section 6).

A lead watching an audit fill up may look at the interval after every label and stop as soon
as it is narrow enough, or excludes the gate's threshold. A fixed-n interval looked at that
way covers less than its nominal rate; a confidence sequence (C_t) covers the mean at *every*
t at once: P(for all t: mu in C_t) >= 1 - alpha.

This is the predictable plug-in empirical-Bernstein CS of Waudby-Smith & Ramdas (2024,
"Estimating means of bounded random variables by betting", JRSSB; arXiv 2010.09686,
Theorem 2 with their eq. (13)-(15)). For X_i in [0, 1] (other bounds are rescaled):

    C_t = ( sum lambda_i X_i / sum lambda_i
            +- (log(2 / alpha) + sum v_i psi_E(lambda_i)) / sum lambda_i ),
    v_i = 4 (X_i - mu^_{i-1})^2,      psi_E(l) = (-log(1 - l) - l) / 4,
    lambda_t = min( sqrt(2 log(2 / alpha) / (sigma^2_{t-1} t log(1 + t))), c ),
    mu^_t = (1/2 + sum_{i<=t} X_i) / (t + 1),
    sigma^2_t = (1/4 + sum_{i<=t} (X_i - mu^_i)^2) / (t + 1),

with c = 1/2 by default (the paper suggests 1/2 or 3/4), and the running intersection taken
(also a valid CS, and never wider). It is closed-form, so it costs O(t); the paper's hedged
capital CS is a little narrower but needs a root search at every t. The labels must arrive in
random order (exchangeable), which holds when the queue serves items in random order within the
audit's design.

:func:`labels_for_half_width` projects how many more labels bring the half-width down to x,
assuming future labels have the current mean and variance: the sums above are extended with
their expected increments, E[v_i] = 4 sigma^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.metrics.outcomes import Estimate, Result, Undefined


def _check(level: float, truncation: float, bounds: tuple[float, float]) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if not 0.0 < truncation < 1.0:
        raise ValueError(f"truncation must be between 0 and 1, got {truncation}")
    if not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")


def _scaled(values: Any, bounds: tuple[float, float]) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    low, high = bounds
    bad = ~np.isfinite(x) | (x < low) | (x > high)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"values[{position}] is {x[position]}; expected a number in [{low}, {high}]"
        )
    return (x - low) / (high - low)


@dataclass(frozen=True)
class ConfidenceSequence:
    """The CS after each observation: ``lower[t-1]``, ``upper[t-1]`` bound the mean after t.

    ``center`` is the lambda-weighted mean; bounds are on the original scale.
    """

    lower: np.ndarray
    upper: np.ndarray
    center: np.ndarray
    level: float
    bounds: tuple[float, float]
    # Sums the projection of future widths continues from (on the [0, 1] scale).
    sum_lambda: float
    sum_penalty: float
    mean: float
    variance: float
    truncation: float

    @property
    def n(self) -> int:
        return len(self.lower)

    def current(self) -> Result:
        """The interval after the last observation, as an :class:`Estimate`."""
        if self.n == 0:
            return Undefined("no labels yet")
        return Estimate(
            value=float(self.center[-1]),
            n=self.n,
            ci=(float(self.lower[-1]), float(self.upper[-1])),
            level=self.level,
            details={"method": "predictable plug-in empirical Bernstein CS (anytime-valid)"},
        )

    def first_excluding(self, threshold: float) -> int | None:
        """The first t at which the sequence excluded ``threshold`` (None if it never has)."""
        outside = (self.lower > threshold) | (self.upper < threshold)
        hits = np.flatnonzero(outside)
        return int(hits[0]) + 1 if hits.size else None


def _lambdas(sigma2_previous: np.ndarray, t: np.ndarray, alpha: float, c: float) -> np.ndarray:
    return np.minimum(np.sqrt(2.0 * math.log(2.0 / alpha) / (sigma2_previous * t * np.log1p(t))), c)


def _psi(lam: np.ndarray) -> np.ndarray:
    return (-np.log1p(-lam) - lam) / 4.0


def confidence_sequence(
    values: Any,
    *,
    level: float = 0.95,
    bounds: tuple[float, float] = (0.0, 1.0),
    truncation: float = 0.5,
    running_intersection: bool = True,
) -> ConfidenceSequence:
    """The PrPl-EB confidence sequence for the mean of ``values`` in arrival order.

    ``values`` are observations in ``bounds`` (default [0, 1]: a win is 1, a loss 0, a tie
    0.5); a value outside raises ``ValueError`` naming its position.
    """
    _check(level, truncation, bounds)
    x = _scaled(values, bounds)
    alpha = 1.0 - level
    n = len(x)
    t = np.arange(1, n + 1, dtype=float)
    mu = (0.5 + np.cumsum(x)) / (t + 1.0)
    mu_previous = np.concatenate([[0.5], mu[:-1]])
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2)) / (t + 1.0)
    sigma2_previous = np.concatenate([[0.25], sigma2[:-1]])
    lam = _lambdas(sigma2_previous, t, alpha, truncation)
    v = 4.0 * (x - mu_previous) ** 2
    sum_lambda = np.cumsum(lam)
    penalty = np.cumsum(v * _psi(lam))
    center = np.cumsum(lam * x) / sum_lambda if n else np.zeros(0)
    margin = (math.log(2.0 / alpha) + penalty) / sum_lambda if n else np.zeros(0)
    lower = np.clip(center - margin, 0.0, 1.0)
    upper = np.clip(center + margin, 0.0, 1.0)
    if running_intersection and n:
        lower = np.maximum.accumulate(lower)
        upper = np.minimum.accumulate(upper)
    low, high = bounds
    span = high - low
    return ConfidenceSequence(
        lower=low + span * lower,
        upper=low + span * upper,
        center=low + span * center,
        level=level,
        bounds=bounds,
        sum_lambda=float(sum_lambda[-1]) if n else 0.0,
        sum_penalty=float(penalty[-1]) if n else 0.0,
        mean=float(mu[-1]) if n else 0.5,
        variance=float(sigma2[-1]) if n else 0.25,
        truncation=truncation,
    )


@dataclass(frozen=True)
class Projection:
    """About ``more`` labels until the CS half-width reaches ``half_width`` (None: not within
    ``limit`` labels); ``reason`` says it in words."""

    half_width: float
    more: int | None
    reason: str


def labels_for_half_width(
    sequence: ConfidenceSequence, half_width: float, *, limit: int = 1_000_000
) -> Projection:
    """ "About N more labels for +/- x", projecting the CS forward at the current variance."""
    if not half_width > 0:
        raise ValueError(f"half_width must be positive, got {half_width}")
    low, high = sequence.bounds
    target = half_width / (high - low)
    if sequence.n and (sequence.upper[-1] - sequence.lower[-1]) / (high - low) <= 2 * target:
        return Projection(half_width, 0, "already there")
    alpha = 1.0 - sequence.level
    sigma2 = max(sequence.variance, 1e-6)
    start = sequence.n
    found = None
    block = 4096
    sum_lambda, penalty = sequence.sum_lambda, sequence.sum_penalty
    for first in range(start + 1, start + limit + 1, block):
        t = np.arange(first, min(first + block, start + limit + 1), dtype=float)
        lam = _lambdas(np.full(len(t), sigma2), t, alpha, sequence.truncation)
        lambdas = sum_lambda + np.cumsum(lam)
        penalties = penalty + np.cumsum(4.0 * sigma2 * _psi(lam))
        widths = (math.log(2.0 / alpha) + penalties) / lambdas
        hits = np.flatnonzero(widths <= target)
        if hits.size:
            found = int(t[hits[0]]) - start
            break
        sum_lambda, penalty = float(lambdas[-1]), float(penalties[-1])
    if found is None:
        return Projection(half_width, None, f"not within {limit:,} more labels")
    return Projection(half_width, found, f"about {found} more labels for +/- {half_width:g}")
