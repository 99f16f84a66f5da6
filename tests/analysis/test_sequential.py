"""Anytime-valid confidence sequences (Waudby-Smith & Ramdas, PrPl-EB) and label projections."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.metrics import Undefined
from analysis.metrics.sequential import confidence_sequence, labels_for_half_width


def paper_loop(x: list[float], alpha: float, c: float = 0.5) -> list[tuple[float, float]]:
    """Theorem 2 / eq. (13)-(15) of arXiv 2010.09686, one observation at a time, no intersection."""
    out = []
    total = weighted = penalty = 0.0
    mu_prev, sigma2_prev = 0.5, 0.25
    sum_x, sum_sq = 0.0, 0.0
    for t, value in enumerate(x, start=1):
        lam = min(math.sqrt(2 * math.log(2 / alpha) / (sigma2_prev * t * math.log(1 + t))), c)
        v = 4 * (value - mu_prev) ** 2
        psi = (-math.log(1 - lam) - lam) / 4
        total += lam
        weighted += lam * value
        penalty += v * psi
        centre = weighted / total
        margin = (math.log(2 / alpha) + penalty) / total
        out.append((max(0.0, centre - margin), min(1.0, centre + margin)))
        sum_x += value
        mu = (0.5 + sum_x) / (t + 1)
        sum_sq += (value - mu) ** 2
        mu_prev, sigma2_prev = mu, (0.25 + sum_sq) / (t + 1)
    return out


def test_it_follows_the_papers_predictable_plug_in_bernstein_bounds() -> None:
    x = list(np.random.default_rng(0).beta(2, 5, 300))
    sequence = confidence_sequence(x, level=0.9, running_intersection=False)
    expected = np.array(paper_loop(x, alpha=0.1))
    np.testing.assert_allclose(sequence.lower, expected[:, 0], atol=1e-12)
    np.testing.assert_allclose(sequence.upper, expected[:, 1], atol=1e-12)


def test_it_narrows_monotonically_with_the_running_intersection() -> None:
    x = (np.random.default_rng(1).random(500) < 0.3).astype(float)
    sequence = confidence_sequence(x)
    assert (np.diff(sequence.lower) >= 0).all() and (np.diff(sequence.upper) <= 0).all()
    raw = confidence_sequence(x, running_intersection=False)
    assert (sequence.lower >= raw.lower).all() and (sequence.upper <= raw.upper).all()


def test_it_covers_the_mean_at_every_look_where_a_fixed_interval_does_not() -> None:
    rng = np.random.default_rng(2)
    runs, looks, mean = 300, 1_000, 0.2
    z = stats.norm.ppf(0.975)
    t = np.arange(1, looks + 1)
    cs_missed = wald_missed = 0
    for _ in range(runs):
        x = (rng.random(looks) < mean).astype(float)
        sequence = confidence_sequence(x)
        cs_missed += bool(((sequence.lower > mean) | (sequence.upper < mean)).any())
        running = np.cumsum(x) / t
        half = z * np.sqrt(np.maximum(running * (1 - running), 1e-12) / t)
        wald_missed += bool(((running - half > mean) | (running + half < mean))[19:].any())
    # Anytime-valid: at most 5% of runs may ever miss (allow Monte-Carlo noise up to 8%).
    assert cs_missed / runs <= 0.08
    # Peeking at a fixed-n interval after every label misses far more often than 5%.
    assert wald_missed / runs > 0.3


def test_it_rescales_observations_from_other_bounds() -> None:
    x = np.random.default_rng(3).random(200)
    unit = confidence_sequence(x)
    wide = confidence_sequence(2 * x - 1, bounds=(-1.0, 1.0))
    np.testing.assert_allclose(wide.lower, 2 * unit.lower - 1)
    np.testing.assert_allclose(wide.upper, 2 * unit.upper - 1)


def test_it_gives_the_current_interval_and_the_first_look_that_excluded_a_threshold() -> None:
    x = np.ones(200)
    sequence = confidence_sequence(x)
    current = sequence.current()
    assert current.ci is not None and current.ci[0] > 0.9 and current.n == 200
    first = sequence.first_excluding(0.5)
    assert first is not None and sequence.lower[first - 1] > 0.5
    assert first == 1 or sequence.lower[first - 2] <= 0.5
    assert isinstance(confidence_sequence([]).current(), Undefined)


def test_it_projects_how_many_more_labels_reach_a_half_width() -> None:
    rng = np.random.default_rng(4)
    x = (rng.random(300) < 0.3).astype(float)
    projection = labels_for_half_width(confidence_sequence(x), 0.04)
    assert projection.more is not None and projection.more > 0
    assert projection.reason == f"about {projection.more} more labels for +/- 0.04"
    more = (rng.random(projection.more) < 0.3).astype(float)
    later = confidence_sequence(np.concatenate([x, more]))
    half = (later.upper[-1] - later.lower[-1]) / 2
    assert half == pytest.approx(0.04, rel=0.1)
    assert labels_for_half_width(later, 0.2).more == 0


def test_it_names_the_position_of_a_value_outside_the_bounds() -> None:
    with pytest.raises(ValueError, match=r"values\[2\] is 1.5; expected a number in \[0.0, 1.0\]"):
        confidence_sequence([0.0, 1.0, 1.5])
    with pytest.raises(ValueError, match="truncation must be between 0 and 1"):
        confidence_sequence([0.5], truncation=1.0)
