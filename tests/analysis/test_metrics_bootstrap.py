"""Percentile bootstrap: seeded, resamples items or clusters, matches textbook widths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from analysis.metrics import (
    Estimate,
    bootstrap,
    cohen_kappa,
    percent_agreement,
    percentile_interval,
    resample_sums,
)
from analysis.metrics.bootstrap import _sum_by_cluster


def _judged_items(n: int, agreement: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    human = rng.choice(["A", "B", "tie"], size=n, p=[0.45, 0.45, 0.10])
    agrees = rng.random(n) < agreement
    judge = np.where(agrees, human, np.where(human == "A", "B", "A"))
    items = np.arange(n)
    return pd.DataFrame(
        {
            "item": np.concatenate([items, items]),
            "rater": ["human"] * n + ["judge"] * n,
            "value": np.concatenate([human, judge]),
        }
    )


def test_it_puts_the_point_estimate_inside_its_interval() -> None:
    votes = _judged_items(300, 0.7, seed=1)
    result = percent_agreement(votes, "judge", n_boot=1000, seed=3)
    assert result.ci is not None
    assert result.ci[0] < result.value < result.ci[1]
    assert result.level == 0.95
    assert result.details["boot_undefined"] == 0.0


def test_it_repeats_the_interval_for_the_same_seed_only() -> None:
    votes = _judged_items(300, 0.7, seed=1)
    first = cohen_kappa(votes, "judge", n_boot=500, seed=11)
    again = cohen_kappa(votes, "judge", n_boot=500, seed=11)
    other = cohen_kappa(votes, "judge", n_boot=500, seed=12)
    assert first.ci == again.ci
    assert first.ci != other.ci


def test_its_interval_has_the_textbook_width_for_a_proportion() -> None:
    votes = _judged_items(2000, 0.7, seed=5)
    result = percent_agreement(votes, "judge", n_boot=2000, seed=0)
    assert isinstance(result, Estimate)
    p = result.value
    normal_width = 2 * 1.959964 * np.sqrt(p * (1 - p) / result.n)
    assert result.ci is not None
    assert result.ci[1] - result.ci[0] == pytest.approx(normal_width, rel=0.12)


def test_it_widens_the_interval_when_items_come_in_clusters() -> None:
    # Every pair appears four times under one prompt: resampling pairs would pretend to have
    # four times the data; resampling prompts must give the width of the 400 distinct pairs.
    base = _judged_items(400, 0.7, seed=9)
    copies = pd.concat(
        [base.assign(item=base["item"] * 4 + k, prompt=base["item"]) for k in range(4)]
    )
    naive = percent_agreement(copies, "judge", n_boot=1000, seed=0)
    clustered = percent_agreement(copies, "judge", cluster="prompt", n_boot=1000, seed=0)
    distinct = percent_agreement(base, "judge", n_boot=1000, seed=0)
    assert naive.ci is not None and clustered.ci is not None and distinct.ci is not None
    naive_width = naive.ci[1] - naive.ci[0]
    clustered_width = clustered.ci[1] - clustered.ci[0]
    assert clustered_width == pytest.approx(distinct.ci[1] - distinct.ci[0], rel=0.15)
    assert clustered_width == pytest.approx(2 * naive_width, rel=0.2)
    assert clustered.details["clusters"] == 400


@pytest.mark.parametrize("distinct_values", [3, 5000])
def test_its_replicates_have_the_mean_and_variance_of_item_resampling(
    distinct_values: int,
) -> None:
    # Few distinct rows go through the multinomial path, many through index draws; both must
    # behave like drawing n items with replacement: mean n * mean(x), variance n * var(x).
    rng = np.random.default_rng(0)
    n = 6000
    x = rng.integers(0, distinct_values, size=n).astype(float)[:, np.newaxis]
    replicates = resample_sums(x, n_boot=4000, seed=1)[:, 0]
    assert replicates.mean() == pytest.approx(x.sum(), rel=0.002)
    assert replicates.var() == pytest.approx(n * x.var(), rel=0.08)


def test_it_resamples_the_items_behind_a_contingency_table() -> None:
    table = np.array([[20.0, 5.0], [10.0, 15.0]])
    replicates = resample_sums(np.eye(4), counts=table.ravel(), n_boot=3000, seed=2)
    assert np.all(replicates.sum(axis=1) == 50)
    share = table.ravel() / 50
    assert replicates.mean(axis=0) == pytest.approx(50 * share, rel=0.03)
    assert replicates.var(axis=0) == pytest.approx(50 * share * (1 - share), rel=0.1)


def test_it_skips_undefined_replicates_in_the_percentiles() -> None:
    assert percentile_interval([np.nan, 1.0, 2.0, 3.0, np.inf], level=0.5) == (1.5, 2.5)
    assert percentile_interval([np.nan]) is None


def test_it_refuses_a_nonsense_level_or_count() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile_interval([1.0], level=95)
    with pytest.raises(ValueError, match="n_boot must be at least 1"):
        resample_sums(np.ones((3, 1)), n_boot=0)
    with pytest.raises(ValueError, match="whole, non-negative item counts"):
        resample_sums(np.eye(2), counts=[0.5, 1.5], n_boot=10)


def test_it_sums_clusters_as_the_sparse_indicator_product_does() -> None:
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 40, size=300)
    codes = np.unique(codes, return_inverse=True)[1]
    for width in (1, 3, 9, 40):  # narrow rows take np.bincount, wide ones the sparse product
        rows = rng.normal(size=(300, width))
        rows[4, 0], rows[9, 0] = np.nan, -0.0
        indicator = sparse.csr_matrix(
            (np.ones(len(codes)), (codes, np.arange(len(codes)))),
            shape=(int(codes.max()) + 1, len(codes)),
        )
        assert _sum_by_cluster(rows, codes).tobytes() == np.asarray(indicator @ rows).tobytes()


def test_its_cache_keeps_count_of_the_bytes_it_holds() -> None:
    for seed in range(3):
        resample_sums(np.eye(3)[[0, 1, 2, 2, 1]], n_boot=50, seed=10_000 + seed)
    with bootstrap._cache_lock:
        assert bootstrap._cached_bytes == sum(r.nbytes for r in bootstrap._cache.values())
        assert bootstrap._cached_bytes <= bootstrap._CACHE_BYTES
