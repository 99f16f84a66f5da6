"""Self-family preference: does a judge favour responses of its own model family more than
people do? (METHODS.md section 9; Zheng et al. 2023, "Judging LLM-as-a-Judge", section 3.3;
Panickssery et al. 2024, "LLM Evaluators Recognize and Favor Their Own Generations").

Two figures, both judge minus people on the same pairs:

- :func:`family_preference`: on the pairs where exactly one side is of family F, the judge's
  win rate for the F side minus the people's win rate for the same side (a win 1, a loss 0,
  a tie or both_bad 1/2). The interval is a paired percentile bootstrap: each resample draws
  whole clusters (the prompt, or the pair) and carries both raters' outcomes on them, so the
  difference's interval accounts for the two being measured on the same items
  (:func:`analysis.metrics.bootstrap.estimate`). With F the judge's own family this is the
  **self-family preference**; with F another family it is the control that says whether a
  judge favours that family whatever its own.
- :func:`family_sides` + :func:`analysis.metrics.refusal.indicator_gap`: the stacked linear
  probability model of the refusal gap (section 4) with ``same_family`` (this response is of
  the judge's family) in place of the class dummies: ``y = b0 + b1 same_family + g len_diff``
  per rater, stacked, on the same pairs (exactly one side of the judge's family);
  ``judge:same_family`` is the bias, clustered by pair. There ``b1`` = 2 x (the family
  side's win rate) - 1, so the interaction is twice the win-rate difference (exactly so with
  ties dropped and before the length adjustment).

Pure: DataFrames in, :class:`Result` out.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from analysis.metrics.bootstrap import estimate
from analysis.metrics.outcomes import BOTH_BAD, TIE, A, B, Result, Undefined, parse_outcome
from analysis.metrics.votes import require_columns, show

SAME_FAMILY: Final = "same_family"
_WON_A: Final = {A: 1.0, B: 0.0, TIE: 0.5, BOTH_BAD: 0.5}


@dataclass(frozen=True)
class FamilyPreference:
    """Judge and people's win rates of family F's side, and judge minus people."""

    family: str
    judge: Hashable
    pairs: int
    judge_win: Result
    human_win: Result
    difference: Result


def _won_a(verdicts: pd.DataFrame, rater: Hashable) -> pd.Series:
    """1 / 0 / 0.5 for side A per pair, for one rater (errors name the bad verdict)."""
    mine = verdicts[(verdicts["rater"] == rater) & verdicts["verdict"].notna()]
    twice = mine["pair_id"].duplicated()
    if twice.any():
        raise ValueError(
            f"verdicts: rater {show(rater)} judged pair {show(mine[twice].iloc[0]['pair_id'])} "
            "twice"
        )
    parsed = {}
    for raw in pd.unique(mine["verdict"]):
        try:
            parsed[raw] = _WON_A[parse_outcome(raw)]
        except ValueError:
            row = mine[mine["verdict"].eq(raw)].iloc[0]
            raise ValueError(
                f"verdicts: verdict {show(raw)} of rater {show(rater)} on pair "
                f"{show(row['pair_id'])} is not A, B, tie or both_bad"
            ) from None
    return mine.set_index("pair_id")["verdict"].map(parsed).astype(float)


def family_preference(
    pairs: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    family: str,
    human: Hashable,
    judge: Hashable,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> FamilyPreference:
    """The judge's win rate for family ``family`` minus the people's, same pairs (docstring).

    ``pairs``: ``pair_id``, ``family_a``, ``family_b`` (None where unknown) and optionally
    ``cluster`` (the prompt; the pair when absent). ``verdicts``: ``pair_id``, ``rater``,
    ``verdict``. Pairs count when exactly one side is ``family`` and both raters gave a verdict.
    """
    table = require_columns(pairs, ["pair_id", "family_a", "family_b"], "pairs")
    require_columns(verdicts, ["pair_id", "rater", "verdict"], "verdicts")
    if human == judge:
        raise ValueError(f"human and judge must be different raters, both are {show(human)}")
    side_a = table["family_a"].eq(family).to_numpy()
    side_b = table["family_b"].eq(family).to_numpy()
    one = table[side_a != side_b]
    human_a = _won_a(verdicts, human)
    judge_a = _won_a(verdicts, judge)
    rated = one[one["pair_id"].isin(human_a.index) & one["pair_id"].isin(judge_a.index)]
    n = len(rated)
    if n == 0:
        why = (
            f"no pair has exactly one {family} response"
            if one.empty
            else f"no pair with one {family} response has both verdicts"
        )
        undefined = Undefined(why, n=0)
        return FamilyPreference(family, judge, 0, undefined, undefined, undefined)
    on_a = rated["family_a"].eq(family).to_numpy()
    ids = rated["pair_id"]

    def own_side(won_a: pd.Series) -> np.ndarray:
        values = won_a.reindex(ids).to_numpy(dtype=float)
        return np.where(on_a, values, 1.0 - values)

    rows = np.column_stack([own_side(judge_a), own_side(human_a), np.ones(n)])
    clusters = rated["cluster"].to_numpy() if "cluster" in rated.columns else ids.to_numpy()

    def figure(statistic: object) -> Result:
        return estimate(
            rows,
            statistic,  # type: ignore[arg-type]
            lambda totals: None if totals[2] > 0 else "no pairs",
            n=n,
            clusters=clusters,
            n_boot=n_boot,
            level=level,
            seed=seed,
            details={"pairs": n},
        )

    return FamilyPreference(
        family=family,
        judge=judge,
        pairs=n,
        judge_win=figure(lambda t: t[:, 0] / t[:, 2]),
        human_win=figure(lambda t: t[:, 1] / t[:, 2]),
        difference=figure(lambda t: (t[:, 0] - t[:, 1]) / t[:, 2]),
    )


def family_sides(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, *, family: str, raters: list[Hashable]
) -> pd.DataFrame:
    """The sides table of the stacked model on the pairs where exactly one side is of
    ``family`` (the pairs :func:`family_preference` counts): one row per (pair, side, rater)
    with ``won``, ``len_diff`` (this side's length minus the other's; NaN when unknown) and
    ``same_family`` (1 on the family's side, 0 on the other).

    Only those pairs, because a pair with both sides (or neither) of the family says nothing
    about the family and would pull ``same_family`` toward 0 by however many such pairs the
    data hold; on these pairs the coefficient is 2 x (the family side's win rate) - 1 for
    every data set alike.

    ``pairs``: ``pair_id``, ``family_a``, ``family_b``, ``length_a``, ``length_b``.
    """
    table = require_columns(
        pairs, ["pair_id", "family_a", "family_b", "length_a", "length_b"], "pairs"
    )
    table = table[
        table["family_a"].eq(family).to_numpy() != table["family_b"].eq(family).to_numpy()
    ]
    frames = []
    diff = pd.to_numeric(table["length_a"], errors="coerce") - pd.to_numeric(
        table["length_b"], errors="coerce"
    )
    for rater in raters:
        won_a = _won_a(verdicts, rater)
        present = table["pair_id"].isin(won_a.index).to_numpy()
        mine = table[present]
        value = won_a.reindex(mine["pair_id"]).to_numpy(dtype=float)
        for side, won, own, length in (
            (A, value, mine["family_a"], diff[present]),
            (B, 1.0 - value, mine["family_b"], -diff[present]),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "pair_id": mine["pair_id"].to_numpy(),
                        "side": side,
                        "rater": rater,
                        "won": won,
                        "len_diff": length.to_numpy(dtype=float),
                        SAME_FAMILY: own.eq(family).astype(float).to_numpy(),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["pair_id", "side", "rater", "won", "len_diff", SAME_FAMILY])
    return pd.concat(frames, ignore_index=True)


def families_of(models: pd.Series, families: Mapping[str, str | None]) -> pd.Series:
    """Each model name's family (None where the name or its family is unknown)."""
    return models.map(lambda name: families.get(name) if name else None).astype(object)
