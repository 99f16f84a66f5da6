"""One BLAS thread for a snapshot's many small matrix products.

A snapshot multiplies thousands of small matrices (bootstrap weights times per-prompt sums,
3 x 3 tables, regressions of a few hundred rows). With OpenBLAS's default of one thread per
core each of them wakes and synchronises the thread pool, which costs more than the product:
on 2 cores the 300-item audit snapshot takes about half the CPU time with one thread
(bench/analysis_bench.py). :func:`one_blas_thread` limits BLAS to one thread while the
decorated function runs (threadpoolctl, per process; the previous limit is restored after).
The figures do not change (bench/figures_unchanged.py compares them with those before).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

P = ParamSpec("P")
R = TypeVar("R")


def one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with BLAS limited to one thread (see the module docstring)."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
