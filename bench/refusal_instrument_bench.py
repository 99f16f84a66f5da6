"""The report's refusal-instrument section: seconds to compute it (confusion matrix, the gap
with either classes, and the sensitivity search) on planted pairs of several sizes.

    python bench/refusal_instrument_bench.py [--sizes 500,5000,20000]

Pure computation (`analysis.refusal_instrument.instrument_compute`, no database): planted
pairs (`bench.simulation.simulate_study`), one judge, every response a candidate for
the sensitivity search, m from the shipped held-out figures (capped at MAX_FLIPS). Prints one
figure per line, e.g. `refusal instrument, 5,000 pairs, 1 judge, 1,444 flips searched: 1.6 s`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000,20000")
    args = parser.parse_args()
    import django

    django.setup()
    import statsmodels.api  # noqa: F401  (imported once, outside the clock)

    from analysis import refusal_instrument as ri
    from bench.simulation import PlantedStudy, simulate_study

    for n in (int(part) for part in args.sizes.split(",")):
        study = simulate_study(PlantedStudy(), n, seed=1)
        pairs = study.pairs.assign(
            response_a=1_000_000 + study.pairs["pair_id"],
            response_b=2_000_000 + study.pairs["pair_id"],
        )
        candidates = [
            ri.Candidate(int(r), 0.5 + i / 1e6, "ethical_refusal")
            for i, r in enumerate(pairs["response_a"])
        ]
        inputs = ri.InstrumentInputs(
            pairs=pairs,
            verdicts=study.verdicts,
            judges={"judge": "planted judge"},
            people={},
            candidates=candidates,
            heldout=ri.heldout_figures(),
        )
        started = time.perf_counter()
        out = ri.instrument_compute(inputs)
        seconds = time.perf_counter() - started
        flips = out["gaps"]["judge"]["sensitivity"]["flips"]
        print(
            f"refusal instrument, {n:,} pairs, 1 judge, {flips:,} flips searched: {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
