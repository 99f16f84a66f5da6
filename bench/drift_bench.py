"""Drift between two judges: seconds for the whole comparison (`drift_figures`: flip rate,
matrix, paired agreement deltas, every slice's tests and intervals, both orders) on planted
pairs of several sizes, the work the comparison page and `judge_compare` do per request.

    python bench/drift_bench.py [--sizes 1000,10000,50000] [--n-boot 1000]

Pure computation (no database): 3 pairs per prompt, 40 categories, 3 length buckets, one
people's verdict per pair, both orders for both judges. Prints one figure per line with its
size and unit, and beside it the floor: the same call with no bootstrap (tests and point
figures only), e.g. `drift comparison, 10,000 pairs, 43 slices, 1,000 resamples: 2.1 s
(floor without intervals: 0.4 s)`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VERDICTS = np.array(["A", "tie", "B"], dtype=object)


def planted(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    people = rng.choice(VERDICTS, n, p=[0.45, 0.1, 0.45])
    frame = pd.DataFrame(
        {
            "prompt": np.arange(n) // 3,
            "people": people,
            "category": rng.integers(0, 40, n).astype(str),
            "length_bucket": rng.choice(["short", "medium", "long"], n),
        }
    )
    for judge, accuracy in (("first", 0.7), ("second", 0.68)):
        ab = np.where(rng.random(n) < accuracy, people, rng.choice(VERDICTS, n))
        ba = np.where(rng.random(n) < 0.8, ab, rng.choice(VERDICTS, n))
        frame[f"{judge}_ab"], frame[f"{judge}_ba"] = ab, ba
        frame[judge] = np.where(ab == ba, ab, "tie")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    from analysis.metrics import drift

    for n in (int(part) for part in args.sizes.split(",")):
        frame = planted(n)
        slices = ["category", "length_bucket"]
        started = time.perf_counter()
        figures = drift.drift_figures(frame, slices=slices, n_boot=0)
        floor = time.perf_counter() - started
        started = time.perf_counter()
        figures = drift.drift_figures(frame, slices=slices, n_boot=args.n_boot)
        seconds = time.perf_counter() - started
        print(
            f"drift comparison, {n:,} pairs, {len(figures['slices'])} slices, "
            f"{args.n_boot:,} resamples: {seconds:.2f} s "
            f"(floor without intervals: {floor:.2f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
