"""One BLAS thread for a snapshot's many small matrix products.

A snapshot multiplies thousands of small matrices (bootstrap weights times per-prompt sums,
3 x 3 tables, regressions of a few hundred rows). With OpenBLAS's default of one thread per
core each of them wakes and synchronises the thread pool, which costs more than the product:
on 2 cores the 300-item audit snapshot takes about half the CPU time with one thread
(bench/analysis_bench.py). :func:`one_blas_thread` limits BLAS to one thread while the
decorated function runs (threadpoolctl, per process; the previous limit is restored after).
The figures do not change (bench/figures_unchanged.py compares them with those before).

The libraries are looked up once per process (``threadpool_limits`` looks them up on every
call, a few milliseconds each time a snapshot enters a decorated function): by the time a
decorated function first runs, this package has imported numpy and scipy, whose BLAS
libraries are the ones the figures use.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

P = ParamSpec("P")
R = TypeVar("R")

_controller: ThreadpoolController | None = None
_controller_lock = threading.Lock()


def _blas_libraries() -> ThreadpoolController:
    global _controller
    with _controller_lock:
        if _controller is None:
            _controller = ThreadpoolController()
        return _controller


def one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with BLAS limited to one thread (see the module docstring)."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with _blas_libraries().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
