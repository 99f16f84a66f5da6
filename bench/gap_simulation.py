"""Do the Analysis II intervals cover what was planted? Seeded Monte-Carlo studies.

    python bench/gap_simulation.py                 # 200 runs each, about 2-3 minutes
    python bench/gap_simulation.py --runs 50       # quicker, noisier

1. Refusal gap (analysis.metrics.refusal). Pairs drawn from ``PlantedStudy``: ethical refusals
   win 10% against an equally long normal answer for the humans and 30% for the judge, and the
   judge is four times as sensitive to length; refusals are shorter than normal answers. Each
   run draws 2,000 pairs, fits the stacked human-plus-judge LPM and checks whether the 95%
   intervals cover their targets. The LPM is a linear projection, not the data-generating
   model (a normal response's baseline depends on its opponent's class), so its target is the
   same regression fitted to the *expected* outcomes of 200,000 pairs. The no-gap study gives
   the judge the humans' class win rates but keeps its length preference; there the
   EthRef x judge target is exactly 0 and the len_diff x judge target is exactly the planted
   length bias, so the test's rejection rate should be near 5%.
2. PPI (analysis.metrics.ppi): 10,000 judged items, 80% judge accuracy, 200 labels; coverage
   and width of the classical, PPI (lambda = 1) and PPI++ intervals; then a stratified audit
   (hard items over-sampled) with and without inverse-probability weights.
3. Confidence sequences (analysis.metrics.sequential): share of runs whose sequence covers the
   mean at every one of 2,000 looks, against a fixed-n interval recomputed at every look.

Prints one figure per line, with its size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.metrics.ppi import ppi_mean  # noqa: E402
from analysis.metrics.refusal import (  # noqa: E402
    CLASS_TERMS,
    ETHICAL_REFUSAL,
    JUDGE,
    LENGTH,
    TECHNICAL_REFUSAL,
    class_rates,
    gap_design,
    length_scale_of,
    moderation_gap,
    response_sides,
)
from analysis.metrics.sequential import confidence_sequence  # noqa: E402
from analysis.metrics.style import style_design, style_sensitivity  # noqa: E402
from bench.simulation import PlantedStudy, simulate_study  # noqa: E402

SEED = 20250521
LEVEL = 0.95


# --------------------------------------------------------------------------------------------
# 1. Refusal gap


def _expected_outcome(sides: pd.DataFrame, expected: pd.DataFrame) -> np.ndarray:
    """P(this side wins | no tie) for each sides-table row."""
    merged = sides[["pair_id", "rater", "side"]].merge(
        expected, on=["pair_id", "rater"], how="left"
    )
    p_a = merged["p_a"].to_numpy()
    return np.where(merged["side"].to_numpy() == "A", p_a, 1.0 - p_a)


def gap_targets(study: PlantedStudy, *, n_pairs: int = 200_000, seed: int = SEED) -> dict[str, Any]:
    """What the intervals should cover: the regressions fitted to expected outcomes.

    ``targets[spec][figure]`` for spec ``"pasch"`` (the METHODS.md model) and ``"opponent"``
    (with opponent-class controls, for which the targets equal the planted values).
    """
    data = simulate_study(study, n_pairs, seed=seed)
    sides = response_sides(data.pairs, data.verdicts)
    scale = length_scale_of(sides)
    targets: dict[str, Any] = {"length_scale": scale}
    for spec, opponent in (("pasch", False), ("opponent", True)):
        inputs = gap_design(
            sides,
            human="human",
            judge="judge",
            ties="half",
            length_scale=scale,
            opponent_controls=opponent,
        )
        y = _expected_outcome(inputs.rows, data.expected)
        coef = np.linalg.lstsq(inputs.design.to_numpy(float), y, rcond=None)[0]
        by_term = dict(zip(inputs.design.columns, coef, strict=True))
        targets[spec] = {cls: by_term[f"{JUDGE}:{term}"] for cls, term in CLASS_TERMS.items()}
        targets[spec][LENGTH] = by_term[f"{JUDGE}:{LENGTH}"]
    targets["planted"] = {cls: study.judge_win[cls] - study.human_win[cls] for cls in CLASS_TERMS}
    targets["planted"][LENGTH] = (
        (study.judge_length - study.human_length) * scale / study.length_unit
    )
    # True win rates of ethical refusals (ties included in the denominator).
    everything = sides.assign(q=_expected_outcome(sides, data.expected))
    refusals = everything[everything["response_class"] == ETHICAL_REFUSAL]
    for rater in ("human", "judge"):
        q = refusals.loc[refusals["rater"] == rater, "q"].mean()
        targets[f"win_rate_{rater}"] = (1.0 - study.tie_rate) * q
    # Style: the judge's net sensitivity to tanh(length), with a fixed length scale.
    diff = (data.pairs["tokens_a"] - data.pairs["tokens_b"]).to_numpy(float)
    style_scale = float(np.std(diff, ddof=1))
    style = style_design(
        data.pairs, data.verdicts, human="human", judge="judge", ties="half",
        length_scale=style_scale,
    )  # fmt: skip
    expected_a = style.rows[["pair_id", "rater"]].merge(
        data.expected, on=["pair_id", "rater"], how="left"
    )["p_a"]
    coef = np.linalg.lstsq(style.design.to_numpy(float), expected_a.to_numpy(), rcond=None)[0]
    targets["style_length"] = dict(zip(style.design.columns, coef, strict=True))["judge:length"]
    targets["style_scale"] = style_scale
    return targets


def _covers(ci: tuple[float, float] | None, value: float) -> bool:
    return ci is not None and ci[0] <= value <= ci[1]


def gap_study(
    study: PlantedStudy,
    *,
    runs: int,
    n_pairs: int = 2_000,
    seed: int = SEED,
    targets: dict[str, Any] | None = None,
    style: bool = True,
) -> dict[str, Any]:
    """Coverage and rejection counts over ``runs`` seeded simulated audits.

    Keys ``{spec}_{figure}_covered`` / ``{spec}_{figure}_rejected`` for spec ``pasch`` and
    ``opponent`` and figure ``eth``, ``tech``, ``length``; coverage is of the projection
    target (``pasch``) or of the planted value (``opponent``).
    """
    targets = targets or gap_targets(study)
    counts: dict[str, int] = {}

    def add(key: str, hit: bool) -> None:
        counts[key] = counts.get(key, 0) + int(hit)

    with threadpool_limits(1):
        for run in range(runs):
            data = simulate_study(study, n_pairs, seed=seed + 1 + run)
            sides = response_sides(data.pairs, data.verdicts)
            for spec, opponent, goal in (
                ("pasch", False, targets["pasch"]),
                ("opponent", True, targets["planted"]),
            ):
                gap = moderation_gap(
                    sides,
                    human="human",
                    judge="judge",
                    length_scale=targets["length_scale"],
                    opponent_controls=opponent,
                )
                for short, cls in (("eth", ETHICAL_REFUSAL), ("tech", TECHNICAL_REFUSAL)):
                    result = gap.gaps[cls]
                    add(f"{spec}_{short}_covered", _covers(result.ci, goal[cls]))
                    add(f"{spec}_{short}_rejected", result.details["p_value"] < 1 - LEVEL)
                add(f"{spec}_length_covered", _covers(gap.length.ci, goal[LENGTH]))
                add(f"{spec}_length_rejected", gap.length.details["p_value"] < 1 - LEVEL)
            rates = class_rates(sides, level=LEVEL).set_index(["rater", "response_class"])
            for rater in ("human", "judge"):
                row = rates.loc[(rater, ETHICAL_REFUSAL)]
                add(
                    f"{rater}_rate_covered",
                    _covers((row["win_low"], row["win_high"]), targets[f"win_rate_{rater}"]),
                )
            if style:
                sensitivity = style_sensitivity(
                    data.pairs,
                    data.verdicts,
                    human="human",
                    judge="judge",
                    ties="half",
                    length_scale=targets["style_scale"],
                )
                add(
                    "style_length_covered",
                    _covers(sensitivity.net["length"].ci, targets["style_length"]),
                )
    return {"runs": runs, "n_pairs": n_pairs, "targets": targets, **counts}


# --------------------------------------------------------------------------------------------
# 2. PPI


def ppi_study(*, runs: int, seed: int = SEED, n_items: int = 10_000, n_labels: int = 200) -> dict:
    """Coverage and mean width of classical, PPI and PPI++ intervals; stratified IPW."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_items) < 0.35).astype(float)
    agrees = rng.random(n_items) < 0.80
    judge = np.where(agrees, truth, 1.0 - truth)
    theta = truth.mean()
    # Stratified audit: the judge's "hard" items (a fifth) are labelled five times as often.
    hard = rng.random(n_items) < 0.2
    truth_hard = np.where(hard, (rng.random(n_items) < 0.7).astype(float), truth)
    theta_hard = truth_hard.mean()
    out: dict[str, Any] = {"runs": runs, "n_items": n_items, "n_labels": n_labels}
    covered = {k: 0 for k in ("classical", "ppi", "ppi++", "weighted", "unweighted")}
    widths: dict[str, list[float]] = {k: [] for k in ("classical", "ppi", "ppi++")}
    for _ in range(runs):
        chosen = rng.choice(n_items, n_labels, replace=False)
        for name, lam in (("classical", 0.0), ("ppi", 1.0), ("ppi++", "tune")):
            estimate = ppi_mean(truth[chosen], judge[chosen], judge, lam=lam)
            assert estimate.ci is not None
            covered[name] += estimate.ci[0] <= theta <= estimate.ci[1]
            widths[name].append(estimate.ci[1] - estimate.ci[0])
        # Stratified: half the labels from the hard fifth, half from the rest.
        per = n_labels // 2
        hard_items, easy_items = np.flatnonzero(hard), np.flatnonzero(~hard)
        picks = np.concatenate(
            [
                rng.choice(hard_items, per, replace=False),
                rng.choice(easy_items, per, replace=False),
            ]
        )
        weights = np.where(hard[picks], len(hard_items) / per, len(easy_items) / per)
        strata = np.where(hard[picks], "hard", "easy")
        y, f = truth_hard[picks], judge[picks]
        weighted = ppi_mean(y, f, judge, weights=weights, strata=strata)
        naive = ppi_mean(y, f, judge)
        assert weighted.ci is not None and naive.ci is not None
        covered["weighted"] += weighted.ci[0] <= theta_hard <= weighted.ci[1]
        covered["unweighted"] += naive.ci[0] <= theta_hard <= naive.ci[1]
    out["covered"] = covered
    out["width"] = {k: float(np.mean(v)) for k, v in widths.items()}
    return out


# --------------------------------------------------------------------------------------------
# 3. Confidence sequences


def sequence_study(*, runs: int, seed: int = SEED, looks: int = 2_000, mean: float = 0.3) -> dict:
    """Runs whose interval ever missed the mean over ``looks`` looks: CS vs fixed-n Wald."""
    rng = np.random.default_rng(seed)
    z = float(stats.norm.ppf(0.5 + LEVEL / 2))
    cs_missed = wald_missed = 0
    t = np.arange(1, looks + 1)
    for _ in range(runs):
        x = (rng.random(looks) < mean).astype(float)
        sequence = confidence_sequence(x, level=LEVEL)
        cs_missed += bool(((sequence.lower > mean) | (sequence.upper < mean)).any())
        running = np.cumsum(x) / t
        half = z * np.sqrt(np.maximum(running * (1 - running), 1e-12) / t)
        wald_missed += bool(((running - half > mean) | (running + half < mean))[9:].any())
    return {"runs": runs, "looks": looks, "cs_missed": cs_missed, "wald_missed": wald_missed}


# --------------------------------------------------------------------------------------------


def _share(count: int, runs: int) -> str:
    return f"{100 * count / runs:.1f}% ({count}/{runs})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=2_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    planted = PlantedStudy()
    null = planted.without_gap()
    with threadpool_limits(1):
        planted_targets = gap_targets(planted)
        null_targets = gap_targets(null)
    label = f"{args.runs} runs x {args.pairs:,} pairs"
    for name, study, targets in (
        ("planted gap", planted, planted_targets),
        ("no gap", null, null_targets),
    ):
        result = gap_study(study, runs=args.runs, n_pairs=args.pairs, targets=targets)
        runs = result["runs"]
        eth = 100 * (study.judge_win[ETHICAL_REFUSAL] - study.human_win[ETHICAL_REFUSAL])
        print(
            f"{name}: ethical refusals win {100 * study.human_win[ETHICAL_REFUSAL]:.0f}% (humans) "
            f"vs {100 * study.judge_win[ETHICAL_REFUSAL]:.0f}% (judge) against an equally long "
            f"normal answer (planted gap {eth:.0f} pp); judge length effect "
            f"x{study.judge_length / study.human_length:.0f}; {label}"
        )
        planted_values, pasch = targets["planted"], targets["pasch"]
        for short, cls, what in (
            ("eth", ETHICAL_REFUSAL, "ethical-refusal gap"),
            ("tech", TECHNICAL_REFUSAL, "technical-refusal gap"),
            ("length", LENGTH, "length bias, per SD"),
        ):
            print(
                f"  {what}, opponent-controlled LPM, planted {100 * planted_values[cls]:.2f} pp: "
                f"95% CI coverage {_share(result[f'opponent_{short}_covered'], runs)}, "
                f"rejected at 5% in {_share(result[f'opponent_{short}_rejected'], runs)}"
            )
            print(
                f"  {what}, Pasch LPM, target {100 * pasch[cls]:.2f} pp: "
                f"95% CI coverage {_share(result[f'pasch_{short}_covered'], runs)}, "
                f"rejected at 5% in {_share(result[f'pasch_{short}_rejected'], runs)}"
            )
        for rater in ("human", "judge"):
            true = 100 * targets[f"win_rate_{rater}"]
            print(
                f"  {rater} ethical-refusal win rate, true {true:.2f}%: "
                f"Wilson 95% coverage {_share(result[f'{rater}_rate_covered'], runs)}"
            )
        print(
            f"  style: judge's net tanh-length sensitivity, target "
            f"{100 * targets['style_length']:.2f} pp: "
            f"95% CI coverage {_share(result['style_length_covered'], runs)}"
        )
    ppi = ppi_study(runs=args.runs)
    covered, width = ppi["covered"], ppi["width"]
    print(
        f"PPI: {ppi['n_labels']} labels + {ppi['n_items']:,} judge verdicts (80% accurate), "
        f"{args.runs} runs"
    )
    for name in ("classical", "ppi", "ppi++"):
        print(
            f"{name} 95% interval: coverage {_share(covered[name], args.runs)}, "
            f"mean width {width[name]:.4f}"
        )
    print(
        "stratified audit (hard fifth labelled 5x as often): coverage with inverse-probability "
        f"weights {_share(covered['weighted'], args.runs)}, without "
        f"{_share(covered['unweighted'], args.runs)}"
    )
    sequence = sequence_study(runs=args.runs)
    looks = sequence["looks"]
    print(
        f"confidence sequence, {looks:,} looks each: missed the mean at some look in "
        f"{_share(sequence['cs_missed'], args.runs)} of runs; a fixed-n Wald interval "
        f"re-checked at every look (from 10) missed in {_share(sequence['wald_missed'], args.runs)}"
    )
    print(f"total time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
