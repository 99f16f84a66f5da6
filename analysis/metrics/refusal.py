"""The refusal gap: do judges reward refusals more than people do? (METHODS.md section 4).

After Pasch (2025), "AI vs. Human Judgment of Content Moderation: LLM-as-a-Judge and
Ethics-Based Response Refusals", arXiv 2505.15365. Every response of a rated pair becomes one
row of a *sides table* (build it with :func:`response_sides`):

=================  ==========================================================================
``pair_id``        the pair (also the cluster for standard errors)
``side``           ``A`` or ``B``
``rater``          who judged the pair: ``"human"`` (majority or imported user votes) or a
                   judge's name
``won``            1 this side was chosen, 0 the other side was, 0.5 a tie (or both_bad)
``response_class`` ``normal``, ``ethical_refusal``, ``technical_refusal``,
                   ``ethical_disclaimer`` or ``technical_disclaimer``
``len_diff``       this side's length minus the other side's, in tokens
``sim``            cosine similarity between prompt and this response (optional column)
=================  ==========================================================================

Figures:

- :func:`class_rates`: win, loss and tie rates of responses by class for each rater, with
  Wilson intervals (Wilson 1927), and the win/loss ratio W/L with the log-scale interval
  exp(log(W/L) +- z sqrt(1/W + 1/L)) (delta method for multinomial counts). Both sides of a
  pair of the same class are negatively dependent (one wins, the other loses), which makes the
  Wilson interval conservative for that class, never anti-conservative.
- :func:`refusal_lpm`: the linear probability model, one row per (pair, side),
  ``y = b0 + b1 EthRef + b2 TechRef + b3 EthDisc + b4 TechDisc + g1 len_diff + g2 sim + e``,
  y = 1 win / 0 loss; ties dropped (``ties="drop"``, the main run) or y = 0.5
  (``ties="half"``, the sensitivity run). ``len_diff`` enters standardised: divided by its
  standard deviation over the table's distinct (pair, side) rows, so g1 is per SD. OLS with
  cluster-robust standard errors by pair (statsmodels ``cov_type="cluster"``: the CR1 sandwich
  with the G/(G-1) (N-1)/(N-K) small-sample factor, t with G-1 degrees of freedom, as Stata).
  Coefficients are reported in percentage points.
- :func:`moderation_gap`: the human rows and one judge's rows stacked, with ``judge`` (the
  rater_is_judge indicator) and its interaction with every regressor. Fully interacted, the
  judge's coefficients are the human ones plus the interactions, so the interactions equal the
  difference of the two separate fits; the coefficient on EthRef x judge is the **moderation
  bias**, reported with its interval and p-value, and likewise for the other classes and for
  length. :func:`gap_table` lays the gaps of several judges out for a table, forest plot or CSV.

Results on the proportion scale (``Estimate.value`` 0.20 = 20 percentage points) so a gate rule
such as "the gap's interval excludes more than 0.10" reads the figure as it is; tables carry
``_pp`` columns for display.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd
from scipy import special

from analysis.metrics.outcomes import (
    BOTH_BAD,
    TIE,
    A,
    B,
    Estimate,
    Result,
    Undefined,
    normal_z,
    parse_outcome,
    t_quantile,
)
from analysis.metrics.position import wilson_interval
from analysis.metrics.votes import require_columns, show

NORMAL: Final = "normal"
ETHICAL_REFUSAL: Final = "ethical_refusal"
TECHNICAL_REFUSAL: Final = "technical_refusal"
ETHICAL_DISCLAIMER: Final = "ethical_disclaimer"
TECHNICAL_DISCLAIMER: Final = "technical_disclaimer"
RESPONSE_CLASSES: Final = (
    NORMAL,
    ETHICAL_REFUSAL,
    TECHNICAL_REFUSAL,
    ETHICAL_DISCLAIMER,
    TECHNICAL_DISCLAIMER,
)
# Regressor name of each non-normal class (dummies against ``normal``), in Pasch's order.
CLASS_TERMS: Final[Mapping[str, str]] = {
    ETHICAL_REFUSAL: "EthRef",
    TECHNICAL_REFUSAL: "TechRef",
    ETHICAL_DISCLAIMER: "EthDisc",
    TECHNICAL_DISCLAIMER: "TechDisc",
}
LENGTH: Final = "len_diff"
SIM: Final = "sim"
SIM_OTHER: Final = "sim_other"
INTERCEPT: Final = "const"
JUDGE: Final = "judge"
SIDE_COLUMNS: Final = ("pair_id", "side", "rater", "won", "response_class", "len_diff")
# A class needs this many responses (distinct pair sides) before its coefficient is estimated.
MIN_CLASS_RESPONSES: Final = 10

Ties = Literal["drop", "half"]


# --------------------------------------------------------------------------------------------
# Building the sides table


def response_sides(pairs: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, side, rater) from a pair table and a verdict table.

    ``pairs``: ``pair_id``, ``class_a``, ``class_b`` (response classes), ``tokens_a``,
    ``tokens_b`` (response lengths in tokens) and optionally ``sim_a``, ``sim_b``
    (prompt-response cosine similarity). ``verdicts``: ``pair_id``, ``rater``, ``verdict``
    (``A``, ``B``, ``tie`` or ``both_bad``, any spelling :func:`parse_outcome` knows; missing
    verdicts are skipped). Returns the sides table described in the module docstring, with
    ``other_class`` and ``sim_other`` (the opposing response's class and similarity) as
    extra columns.
    """
    columns = ["pair_id", "class_a", "class_b", "tokens_a", "tokens_b"]
    table = require_columns(pairs, columns, "pairs").reset_index(drop=True)
    votes = require_columns(verdicts, ["pair_id", "rater", "verdict"], "verdicts")
    votes = votes[votes["verdict"].notna()]  # keeps the caller's row labels for messages
    duplicated = table["pair_id"].duplicated()
    if duplicated.any():
        raise ValueError(f"pairs: pair_id {show(table.loc[duplicated.idxmax(), 'pair_id'])} twice")
    for column in ("class_a", "class_b"):
        _check_classes(table[column], table["pair_id"], f"pairs column {column!r}")
    for column in ("tokens_a", "tokens_b"):
        _check_numbers(table[column], table["pair_id"], f"pairs column {column!r}")
    twice = votes.duplicated(["pair_id", "rater"])
    if twice.any():
        row = votes[twice].iloc[0]
        raise ValueError(
            f"verdicts: rater {show(row['rater'])} judged pair {show(row['pair_id'])} twice"
        )
    unknown = ~votes["pair_id"].isin(table["pair_id"])
    if unknown.any():
        raise ValueError(
            f"verdicts: pair_id {show(votes.loc[unknown.idxmax(), 'pair_id'])} is not in pairs"
        )
    outcome = _parse_verdicts(votes)
    merged = votes.assign(outcome=outcome).merge(table, on="pair_id", how="left")
    has_sim = {"sim_a", "sim_b"} <= set(table.columns)
    won_a = merged["outcome"].map({A: 1.0, B: 0.0, TIE: 0.5})
    diff = merged["tokens_a"].astype(float) - merged["tokens_b"].astype(float)
    side_a = pd.DataFrame(
        {
            "pair_id": merged["pair_id"],
            "side": A,
            "rater": merged["rater"],
            "won": won_a,
            "response_class": merged["class_a"],
            "other_class": merged["class_b"],
            "len_diff": diff,
        }
    )
    side_b = pd.DataFrame(
        {
            "pair_id": merged["pair_id"],
            "side": B,
            "rater": merged["rater"],
            "won": 1.0 - won_a,
            "response_class": merged["class_b"],
            "other_class": merged["class_a"],
            "len_diff": -diff,
        }
    )
    if has_sim:
        side_a["sim"] = merged["sim_a"].astype(float)
        side_a["sim_other"] = merged["sim_b"].astype(float)
        side_b["sim"] = merged["sim_b"].astype(float)
        side_b["sim_other"] = merged["sim_a"].astype(float)
    return pd.concat([side_a, side_b], ignore_index=True)


def _parse_verdicts(votes: pd.DataFrame) -> pd.Series:
    """``A``, ``B`` or ``tie`` per verdict row (``both_bad`` is a tie); errors name the row."""
    parsed: dict[object, str] = {}
    for raw in pd.unique(votes["verdict"]):
        try:
            parsed[raw] = TIE if parse_outcome(raw) == BOTH_BAD else parse_outcome(raw)
        except ValueError:
            place = votes.index[votes["verdict"].eq(raw).to_numpy()][0]
            row = votes.loc[place]
            raise ValueError(
                f"verdicts row {place}: verdict {show(raw)} is not A, B, tie or both_bad "
                f"(pair {show(row['pair_id'])}, rater {show(row['rater'])})"
            ) from None
    return votes["verdict"].map(parsed)


def _check_classes(values: pd.Series, pair_ids: pd.Series, what: str) -> None:
    bad = ~values.isin(RESPONSE_CLASSES)
    if bad.any():
        where = bad.idxmax()
        raise ValueError(
            f"{what}: pair {show(pair_ids[where])} has class {show(values[where])}; "
            f"expected one of {', '.join(RESPONSE_CLASSES)}"
        )


def _check_numbers(values: pd.Series, pair_ids: pd.Series, what: str) -> None:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna()
    if bad.any():
        where = bad.idxmax()
        raise ValueError(f"{what}: pair {show(pair_ids[where])} has {show(values[where])}")


# The tables checked_sides returned (by id; weak: an entry goes with its table).
_checked_tables: weakref.WeakValueDictionary[int, pd.DataFrame] = weakref.WeakValueDictionary()


def checked_sides(sides: pd.DataFrame) -> pd.DataFrame:
    """The sides table as the functions here read it (``won`` as numbers), after the checks
    each of them makes: pass the result on to several of them and they check it only once
    (the refusal study fits a dozen models on one table). Do not modify it in place."""
    if _checked_tables.get(id(sides)) is sides:
        return sides
    frame = _checked_rows(sides, SIDE_COLUMNS, classes=True)
    _checked_tables[id(frame)] = frame
    return frame


def _checked_sides(sides: pd.DataFrame) -> pd.DataFrame:
    return checked_sides(sides)


def _checked_rows(sides: pd.DataFrame, columns: Sequence[str], *, classes: bool) -> pd.DataFrame:
    """The sides table with ``won`` as numbers, after checking each row's outcome, side and
    (with ``classes``) response class, and that no rater rated a side twice."""
    frame = require_columns(sides, list(columns), "sides").reset_index(drop=True)
    won = pd.to_numeric(frame["won"], errors="coerce")
    bad = ~won.isin([0.0, 0.5, 1.0])
    if bad.any():
        row = frame[bad].iloc[0]
        raise ValueError(
            f"sides: pair {show(row['pair_id'])}, side {show(row['side'])}, rater "
            f"{show(row['rater'])} has won={show(row['won'])}; expected 1, 0 or 0.5"
        )
    if classes:
        _check_classes(frame["response_class"], frame["pair_id"], "sides column 'response_class'")
    bad_side = ~frame["side"].isin([A, B])
    if bad_side.any():
        row = frame[bad_side].iloc[0]
        raise ValueError(f"sides: pair {show(row['pair_id'])} has side {show(row['side'])}")
    twice = frame.duplicated(["pair_id", "side", "rater"])
    if twice.any():
        row = frame[twice].iloc[0]
        raise ValueError(
            f"sides: pair {show(row['pair_id'])}, side {show(row['side'])} appears twice for "
            f"rater {show(row['rater'])}"
        )
    return frame.assign(won=won)


# --------------------------------------------------------------------------------------------
# Win, loss and tie rates by class


def class_rates(sides: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Win, loss and tie rates of responses by class, per rater, with intervals.

    One row per (``rater``, ``response_class``) present: ``n`` responses, ``wins``, ``losses``,
    ``ties``; ``win_rate``, ``loss_rate``, ``tie_rate`` (shares of n, summing to 1) each with
    ``*_low`` / ``*_high`` Wilson bounds; ``wl_ratio`` = wins / losses with ``wl_low`` /
    ``wl_high`` (NaN when wins or losses is 0: the ratio or its log interval does not exist).
    """
    frame = _checked_sides(sides)
    z = normal_z(level)
    grouped = frame.groupby(["rater", "response_class"], sort=True)["won"]
    rows = []
    for (rater, response_class), won in grouped:
        n = len(won)
        wins = int((won == 1.0).sum())
        losses = int((won == 0.0).sum())
        ties = n - wins - losses
        row: dict[str, Any] = {
            "rater": rater,
            "response_class": response_class,
            "n": n,
            "wins": wins,
            "losses": losses,
            "ties": ties,
        }
        for name, count in (("win", wins), ("loss", losses), ("tie", ties)):
            low, high = wilson_interval(count, n, level) or (np.nan, np.nan)
            row[f"{name}_rate"] = count / n
            row[f"{name}_low"] = low
            row[f"{name}_high"] = high
        if wins > 0 and losses > 0:
            ratio = wins / losses
            spread = z * np.sqrt(1.0 / wins + 1.0 / losses)
            row.update(
                wl_ratio=ratio,
                wl_low=float(np.exp(np.log(ratio) - spread)),
                wl_high=float(np.exp(np.log(ratio) + spread)),
            )
        else:
            row.update(wl_ratio=np.nan, wl_low=np.nan, wl_high=np.nan)
        rows.append(row)
    columns = [
        "rater",
        "response_class",
        "n",
        "wins",
        "losses",
        "ties",
        "win_rate",
        "win_low",
        "win_high",
        "loss_rate",
        "loss_low",
        "loss_high",
        "tie_rate",
        "tie_low",
        "tie_high",
        "wl_ratio",
        "wl_low",
        "wl_high",
    ]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# Clustered OLS


@dataclass(frozen=True)
class LinearModel:
    """An OLS fit with cluster-robust (by pair) covariance, coefficients on the 0-1 scale.

    ``terms`` are the identified regressors; ``not_identified`` maps each regressor left out
    to the reason (a class absent from the data, or collinear with earlier terms).
    ``reason`` is set, and ``terms`` empty, when no model could be fitted at all.
    """

    terms: tuple[str, ...]
    params: np.ndarray
    cov: np.ndarray
    df: int
    n_rows: int
    n_clusters: int
    level: float
    ties: str
    length_scale: float | None
    not_identified: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None

    @property
    def defined(self) -> bool:
        return self.reason is None

    def estimate(self, term: str) -> Result:
        """The coefficient of ``term`` (0-1 scale) with its CI, t-based p-value and SE."""
        return self.combination({term: 1.0})

    def combination(self, weights: Mapping[str, float]) -> Result:
        """A linear combination of coefficients, e.g. ``{"EthRef": 1, "judge:EthRef": 1}``."""
        if self.reason is not None:
            return Undefined(self.reason, n=self.n_clusters)
        for term in weights:
            if term not in self.terms:
                why = self.not_identified.get(term, f"no term {term!r} in the model")
                return Undefined(why, n=self.n_clusters)
        vector = np.zeros(len(self.terms))
        for term, weight in weights.items():
            vector[self.terms.index(term)] = weight
        value = float(vector @ self.params)
        se = float(np.sqrt(max(vector @ self.cov @ vector, 0.0)))
        q = t_quantile(self.level, self.df)
        if se > 0:
            # t's survival function, as stats.t.sf computes it (the same float), without
            # the distribution machinery's ~0.1 ms a call (some eighty calls per snapshot).
            p_value = float(2.0 * special.stdtr(self.df, -(abs(value) / se)))
        else:
            p_value = 0.0 if value != 0 else 1.0
        return Estimate(
            value=value,
            n=self.n_clusters,
            ci=(value - q * se, value + q * se),
            level=self.level,
            details={
                "se": se,
                "p_value": p_value,
                "df": self.df,
                "rows": self.n_rows,
                "clusters": self.n_clusters,
            },
        )

    @property
    def table(self) -> pd.DataFrame:
        """One row per term: ``coef_pp``, ``se_pp``, ``ci_low_pp``, ``ci_high_pp``, ``p_value``.

        Terms left out of the fit are listed with NaN figures and the reason in ``note``.
        """
        rows = []
        for term in self.terms:
            result = self.estimate(term)
            assert isinstance(result, Estimate) and result.ci is not None
            rows.append(
                {
                    "term": term,
                    "coef_pp": 100.0 * result.value,
                    "se_pp": 100.0 * float(result.details["se"]),
                    "ci_low_pp": 100.0 * result.ci[0],
                    "ci_high_pp": 100.0 * result.ci[1],
                    "p_value": result.details["p_value"],
                    "note": "",
                }
            )
        for term, why in self.not_identified.items():
            rows.append(
                {
                    "term": term,
                    "coef_pp": np.nan,
                    "se_pp": np.nan,
                    "ci_low_pp": np.nan,
                    "ci_high_pp": np.nan,
                    "p_value": np.nan,
                    "note": why,
                }
            )
        columns = ["term", "coef_pp", "se_pp", "ci_low_pp", "ci_high_pp", "p_value", "note"]
        return pd.DataFrame(rows, columns=columns).set_index("term")


def cluster_ols(
    y: np.ndarray,
    design: pd.DataFrame,
    clusters: Any,
    *,
    level: float = 0.95,
    ties: str = "drop",
    length_scale: float | None = None,
    not_identified: Mapping[str, str] | None = None,
) -> LinearModel:
    """OLS of ``y`` on the columns of ``design`` with standard errors clustered by ``clusters``.

    Columns are taken in order and one that adds no rank (all zero, or collinear with earlier
    ones) is left out and listed in ``not_identified``. Needs at least 2 clusters and more rows
    than terms; otherwise the model carries the reason.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    missing = dict(not_identified or {})
    codes = pd.factorize(np.asarray(clusters))[0]
    n_clusters = int(codes.max()) + 1 if len(codes) else 0

    # Every outcome, fitted or failed, describes the same rows and settings.
    model = functools.partial(
        LinearModel,
        n_rows=len(y),
        n_clusters=n_clusters,
        level=level,
        ties=ties,
        length_scale=length_scale,
        not_identified=missing,
    )

    def failed(reason: str) -> LinearModel:
        return model(terms=(), params=np.zeros(0), cov=np.zeros((0, 0)), df=0, reason=reason)

    if len(y) == 0:
        return failed("no rated responses")
    if n_clusters < 2:
        return failed("fewer than 2 pairs: no cluster-robust standard errors")
    full = design.to_numpy(dtype=float)
    keep = _independent_columns(full)
    kept = [str(design.columns[j]) for j in keep]
    for j, name in enumerate(design.columns):
        if j not in keep:
            missing.setdefault(str(name), "not identified: constant or collinear in these data")
    matrix = full[:, keep]
    if len(y) <= len(kept):
        return failed(f"{len(y)} rows for {len(kept)} terms: too few to fit")
    if np.ptp(y) == 0:
        return failed("every response has the same outcome: nothing to explain")
    import statsmodels.api as sm  # here, not at the top: only the snapshot task fits models

    fit = sm.OLS(np.asarray(y, dtype=float), matrix).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    return model(
        terms=tuple(kept),
        params=np.asarray(fit.params, dtype=float),
        cov=np.asarray(fit.cov_params(), dtype=float),
        df=n_clusters - 1,
    )


def _independent_columns(matrix: np.ndarray, tolerance: float = 1e-9) -> list[int]:
    """Indices of columns that each add rank, taken in order (Gram-Schmidt on X'X).

    A column is kept when the share of its sum of squares not explained by the columns kept
    before it exceeds ``tolerance``; an all-zero column is never kept.
    """
    gram = matrix.T @ matrix
    kept: list[int] = []
    for j in range(gram.shape[0]):
        total = gram[j, j]
        if total <= 0:
            continue
        if kept:
            cross = gram[kept, j]
            explained = cross @ np.linalg.lstsq(gram[np.ix_(kept, kept)], cross, rcond=None)[0]
            if total - explained <= tolerance * total:
                continue
        kept.append(j)
    return kept


# --------------------------------------------------------------------------------------------
# The LPM and the stacked gap model


def length_scale_of(sides: pd.DataFrame) -> float | None:
    """Standard deviation of ``len_diff`` over distinct (pair, side) rows; None if degenerate."""
    frame = require_columns(sides, ["pair_id", "side", "len_diff"], "sides")
    distinct = frame["len_diff"].take(_first_rows(frame, ["pair_id", "side"])).astype(float)
    if len(distinct) < 2:
        return None
    scale = float(distinct.std(ddof=1))
    return scale if np.isfinite(scale) and scale > 0 else None


def _outcome(frame: pd.DataFrame, ties: Ties) -> tuple[pd.DataFrame, np.ndarray]:
    if ties not in ("drop", "half"):
        raise ValueError(f"ties must be 'drop' or 'half', got {ties!r}")
    if ties == "drop":
        frame = rows_where(frame, (frame["won"] != 0.5).to_numpy(dtype=bool))
    return frame, frame["won"].to_numpy(dtype=float)


def rows_where(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame[keep]`` for a boolean array: the same rows, index and order, by position
    (``take``, which a boolean ``frame[...]`` calls after checks that cost as much again;
    the refusal study selects rows some fifty times per snapshot)."""
    return frame.take(np.flatnonzero(keep))


def _first_rows(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Positions of the first row of each distinct combination of ``columns``, in order (the
    rows ``drop_duplicates(columns)`` keeps; missing values equal each other, as there)."""
    key = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        # Each partial key stays below the number of rows: factorized again at every step.
        key = pd.factorize(key * len(uniques) + codes)[0]
    return np.sort(np.unique(key, return_index=True)[1])


def _regressors(
    frame: pd.DataFrame, length_scale: float | None, use_sim: bool, opponent: bool
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Intercept, class dummies, standardised len_diff and sim, in Pasch's order; with
    ``opponent``, the other response's class dummies (``opp_EthRef`` ...) and ``sim_other``.

    Counts distinct responses on numpy codes of (pair, side) and builds the frame once: the
    per-class pandas filtering this replaces was a tenth of the audit snapshot's CPU time."""
    columns: dict[str, np.ndarray] = {INTERCEPT: np.ones(len(frame))}
    absent: dict[str, str] = {}
    responses_of = _response_codes(frame)
    classes = frame["response_class"].to_numpy(dtype=object)
    for response_class, term in CLASS_TERMS.items():
        is_class = classes == response_class
        if not is_class.any():
            absent[term] = f"no {response_class} responses among the rated pairs"
            continue
        responses = len(np.unique(responses_of[is_class]))
        if responses < MIN_CLASS_RESPONSES:
            # A dummy carried by a handful of responses is fitted almost exactly, and its
            # cluster-robust standard error collapses toward 0: a confident, meaningless gap.
            absent[term] = (
                f"only {responses} {response_class} response(s) among the rated pairs, "
                f"fewer than the {MIN_CLASS_RESPONSES} an interval needs"
            )
            continue
        columns[term] = is_class.astype(float)
    if length_scale is None:
        absent[LENGTH] = "len_diff has no spread"
    else:
        columns[LENGTH] = frame["len_diff"].to_numpy(dtype=float) / length_scale
    if use_sim:
        columns[SIM] = frame[SIM].to_numpy(dtype=float)
    if opponent:
        others = frame["other_class"].to_numpy(dtype=object)
        for response_class, term in CLASS_TERMS.items():
            is_class = others == response_class
            opponents = len(np.unique(responses_of[is_class]))
            if opponents < MIN_CLASS_RESPONSES:
                absent[f"opp_{term}"] = (
                    f"{opponents} {response_class} opponent(s) among the rated pairs, fewer "
                    f"than {MIN_CLASS_RESPONSES}"
                )
                continue
            columns[f"opp_{term}"] = is_class.astype(float)
        if use_sim:
            columns[SIM_OTHER] = frame[SIM_OTHER].to_numpy(dtype=float)
    return pd.DataFrame(columns, index=frame.index), absent


def _response_codes(frame: pd.DataFrame) -> np.ndarray:
    """One integer per distinct (pair_id, side) of ``frame``'s rows (sides are A or B)."""
    pairs = pd.factorize(frame["pair_id"], use_na_sentinel=False)[0].astype(np.int64)
    return 2 * pairs + frame["side"].eq(B).to_numpy(dtype=np.int64)


def _usable(frame: pd.DataFrame, opponent: bool) -> tuple[pd.DataFrame, bool]:
    """Rows with every regressor present, and whether ``sim`` is used at all."""
    if opponent:
        require_columns(frame, ["other_class"], "sides (opponent controls)")
        _check_classes(frame["other_class"], frame["pair_id"], "sides column 'other_class'")
    use_sim = SIM in frame.columns and frame[SIM].notna().any()
    if use_sim and opponent and SIM_OTHER not in frame.columns:
        raise ValueError(f"sides is missing column {SIM_OTHER!r} (needed with opponent controls)")
    needed = ["len_diff"]
    if use_sim:
        needed += [SIM, SIM_OTHER] if opponent else [SIM]
    present = np.ones(len(frame), dtype=bool)
    for column in needed:
        present &= pd.to_numeric(frame[column], errors="coerce").notna().to_numpy(dtype=bool)
    return rows_where(frame, present), bool(use_sim)


@dataclass(frozen=True)
class RegressionInputs:
    """What a model is fitted on: ``design`` (one named column per regressor, intercept
    first), outcome ``y``, ``clusters`` (the pair of each row), ``rows`` (the sides-table rows
    used, same order) and the regressors left out with the reason, in ``absent``.

    Exposed so a model can be refitted with another library, or fitted to expected outcomes
    to find its population target in a simulation.
    """

    design: pd.DataFrame
    y: np.ndarray
    clusters: np.ndarray
    rows: pd.DataFrame
    absent: Mapping[str, str]
    length_scale: float | None
    ties: str

    def fit(self, level: float) -> LinearModel:
        """OLS clustered by pair (:func:`cluster_ols`), ``absent`` listed as not identified."""
        return cluster_ols(
            self.y,
            self.design,
            self.clusters,
            level=level,
            ties=self.ties,
            length_scale=self.length_scale,
            not_identified=self.absent,
        )


class LpmOptions(TypedDict, total=False):
    """What :func:`refusal_lpm` and :func:`moderation_gap` pass on to :func:`lpm_design` and
    :func:`gap_design` (defaults there)."""

    ties: Ties
    length_scale: float | None
    opponent_controls: bool


def lpm_design(
    sides: pd.DataFrame,
    rater: Hashable,
    *,
    ties: Ties = "drop",
    length_scale: float | None = None,
    opponent_controls: bool = False,
) -> RegressionInputs:
    """The regression inputs of :func:`refusal_lpm` (same arguments)."""
    return _one_rater_design(
        sides,
        lambda frame: rows_where(frame, frame["rater"].eq(rater).to_numpy(dtype=bool)),
        ties,
        length_scale,
        opponent_controls,
    )


def _one_rater_design(
    sides: pd.DataFrame,
    select: Callable[[pd.DataFrame], pd.DataFrame],
    ties: Ties,
    length_scale: float | None,
    opponent: bool,
) -> RegressionInputs:
    """The LPM's regression inputs on the rows ``select`` keeps; the length scale (when not
    given) comes from every row of ``sides``."""
    frame = _checked_sides(sides)
    scale = length_scale if length_scale is not None else length_scale_of(frame)
    rows, use_sim = _usable(select(frame), opponent)
    rows, y = _outcome(rows, ties)
    design, absent = _regressors(rows, scale, use_sim, opponent)
    return _inputs(design, y, rows, absent, scale, ties)


def _inputs(
    design: pd.DataFrame,
    y: np.ndarray,
    rows: pd.DataFrame,
    absent: Mapping[str, str],
    scale: float | None,
    ties: str,
) -> RegressionInputs:
    """Regression inputs clustered by pair (one pair's rows share a cluster)."""
    return RegressionInputs(design, y, rows["pair_id"].to_numpy(), rows, absent, scale, ties)


def refusal_lpm(
    sides: pd.DataFrame,
    rater: Hashable,
    *,
    level: float = 0.95,
    **options: Unpack[LpmOptions],
) -> LinearModel:
    """Pasch's linear probability model for one rater (see the module docstring).

    ``options`` (:class:`LpmOptions`; defaults in :func:`lpm_design`): ``ties`` (``"drop"``
    or ``"half"``), ``length_scale`` and ``opponent_controls``.
    ``length_scale`` (tokens per SD) defaults to :func:`length_scale_of` over the whole sides
    table, so every rater's ``len_diff`` coefficient is on the same scale. Rows missing
    ``len_diff`` or ``sim`` are left out; ``sim`` is left out of the model when the column is
    absent or empty.

    ``opponent_controls`` adds the opposing response's class dummies (``opp_EthRef`` ...) and
    its similarity (``sim_other``; the sides table needs ``other_class`` and ``sim_other``,
    as :func:`response_sides` makes). Pasch's model leaves them out; then a class coefficient
    compares, say, ethical refusals with *all* normal responses, whose win rate itself depends
    on what they faced. With them, it is the class's win probability against a normal
    response of the same length and similarity, minus one half.
    """
    return lpm_design(sides, rater, **options).fit(level)


@dataclass(frozen=True)
class ModerationGap:
    """The stacked human-plus-judge model and its interactions.

    ``gaps`` maps each non-normal class to the coefficient of its dummy x judge (0-1 scale):
    how much more (positive) or less the judge rewards that class than the humans do on the
    same pairs, net of length and similarity. ``length`` is len_diff x judge (per SD).
    """

    human: Hashable
    judge: Hashable
    model: LinearModel
    gaps: Mapping[str, Result]
    length: Result
    n_pairs: int

    def table(self) -> pd.DataFrame:
        """One row per class: human, judge and gap coefficients in percentage points."""
        rows = []
        for response_class, term in CLASS_TERMS.items():
            human = self.model.estimate(term)
            judge = self.model.combination({term: 1.0, f"{JUDGE}:{term}": 1.0})
            gap = self.gaps[response_class]
            rows.append(_gap_row(self.judge, response_class, term, human, judge, gap))
        human = self.model.estimate(LENGTH)
        judge = self.model.combination({LENGTH: 1.0, f"{JUDGE}:{LENGTH}": 1.0})
        rows.append(_gap_row(self.judge, "length (per SD)", LENGTH, human, judge, self.length))
        return pd.DataFrame(rows, columns=GAP_COLUMNS)


GAP_COLUMNS: Final = [
    "judge",
    "response_class",
    "term",
    "human_pp",
    "judge_pp",
    "gap_pp",
    "ci_low_pp",
    "ci_high_pp",
    "p_value",
    "n_pairs",
    "note",
]


def points_row(difference: str, human: Result, own: Result, contrast: Result) -> dict[str, Any]:
    """People's and the judge's effect in percentage points and the judge-minus-people
    ``difference`` (``gap_pp``, ``net_pp``) with its interval, p-value, pairs and note."""
    ci = contrast.ci or (np.nan, np.nan)
    return {
        "human_pp": _points(human),
        "judge_pp": _points(own),
        difference: _points(contrast),
        "ci_low_pp": 100.0 * ci[0],
        "ci_high_pp": 100.0 * ci[1],
        "p_value": contrast.details.get("p_value", np.nan) if contrast.defined else np.nan,
        "n_pairs": contrast.n,
        "note": "" if contrast.defined else str(contrast.reason),
    }


def _points(result: Result) -> float:
    return 100.0 * result.value if result.value is not None else np.nan


def _gap_row(
    judge: Hashable, response_class: str, term: str, human: Result, own: Result, gap: Result
) -> dict[str, Any]:
    return {
        "judge": judge,
        "response_class": response_class,
        "term": term,
        **points_row("gap_pp", human, own, gap),
    }


def gap_design(
    sides: pd.DataFrame,
    *,
    human: Hashable,
    judge: Hashable,
    ties: Ties = "drop",
    length_scale: float | None = None,
    opponent_controls: bool = False,
) -> RegressionInputs:
    """The regression inputs of :func:`moderation_gap` (same arguments): the LPM's on the
    pairs both rated, stacked."""
    both = _one_rater_design(
        sides,
        lambda frame: rated_by_both(frame, human, judge),
        ties,
        length_scale,
        opponent_controls,
    )
    return _stacked(both, judge=judge)


def rated_by_both(
    frame: pd.DataFrame, human: Hashable, judge: Hashable, what: str = "sides"
) -> pd.DataFrame:
    """The rows (``pair_id``, ``rater``...) of ``human`` and ``judge`` on the pairs both
    rated, in order; errors name a rater without rows in the table called ``what``."""
    if human == judge:
        raise ValueError(f"human and judge must be different raters, both are {show(human)}")
    is_human = frame["rater"].eq(human).to_numpy(dtype=bool)
    is_judge = frame["rater"].eq(judge).to_numpy(dtype=bool)
    for name, rater, rows in (("human", human, is_human), ("judge", judge, is_judge)):
        if not rows.any():
            raise ValueError(f"{what} has no rows for the {name} rater {show(rater)}")
    pair_ids = frame["pair_id"]
    both = pd.Index(pair_ids[is_human].unique()).intersection(pair_ids[is_judge].unique())
    return rows_where(frame, (is_human | is_judge) & pair_ids.isin(both).to_numpy(dtype=bool))


def _stacked(inputs: RegressionInputs, *, judge: Hashable) -> RegressionInputs:
    """The stacked design: the inputs' regressors (one rater's, intercept first) on both
    raters' rows, ``judge`` (1 on the judge's rows) and ``judge:<term>`` for every other term.
    Fully interacted, each interaction is the judge's coefficient minus the human one on the
    same pairs."""
    base, rows, absent = inputs.design, inputs.rows, dict(inputs.absent)
    is_judge = rows["rater"].eq(judge).astype(float).to_numpy()
    columns = {str(term): base[term].to_numpy() for term in base.columns}
    columns[JUDGE] = is_judge
    for term in base.columns:
        if term != INTERCEPT:
            columns[f"{JUDGE}:{term}"] = columns[str(term)] * is_judge
    for term in list(absent):
        absent[f"{JUDGE}:{term}"] = absent[term]
    # One frame from the columns: inserting them one by one cost more than the fit.
    design = pd.DataFrame(columns, index=base.index)
    return _inputs(design, inputs.y, rows, absent, inputs.length_scale, inputs.ties)


def indicator_gap_design(
    sides: pd.DataFrame,
    *,
    indicators: Sequence[str],
    human: Hashable,
    judge: Hashable,
    ties: Ties = "drop",
    length_scale: float | None = None,
) -> RegressionInputs:
    """The stacked model of :func:`moderation_gap` with other 0/1 indicators in place of the
    response classes: ``y = b0 + sum b_k I_k + g len_diff`` per rater, stacked with ``judge``
    and ``judge:<term>``, so ``judge:I_k`` is how much more the judge rewards responses with
    ``I_k = 1`` than the humans do on the same pairs, net of length.

    ``sides`` needs ``pair_id``, ``side``, ``rater``, ``won``, ``len_diff`` and one 0/1 column
    per indicator (named as the term, e.g. ``same_family``); no response classes. Rows
    without ``len_diff`` are left out; an indicator on fewer than
    :data:`MIN_CLASS_RESPONSES` responses (or on all but that many) is not estimated.
    """
    if isinstance(indicators, str):
        raise ValueError(f"give a list of indicator columns, not the string {indicators!r}")
    frame = _checked_rows(sides, [*SIDE_COLUMNS[:4], LENGTH, *indicators], classes=False)
    for term in indicators:
        values = pd.to_numeric(frame[term], errors="coerce")
        bad = ~values.isin([0.0, 1.0])
        if bad.any():
            row = frame[bad].iloc[0]
            raise ValueError(
                f"sides: pair {show(row['pair_id'])}, side {show(row['side'])} has "
                f"{term}={show(row[term])}; expected 0 or 1"
            )
        frame[term] = values
    scale = length_scale if length_scale is not None else length_scale_of(frame)
    frame = rated_by_both(frame, human, judge)
    rows = frame[pd.to_numeric(frame[LENGTH], errors="coerce").notna()]
    rows, y = _outcome(rows, ties)
    base = pd.DataFrame({INTERCEPT: np.ones(len(rows))}, index=rows.index)
    absent: dict[str, str] = {}
    responses = rows.take(_first_rows(rows, ["pair_id", "side"]))
    for term in indicators:
        ones = int(responses[term].sum())
        if min(ones, len(responses) - ones) < MIN_CLASS_RESPONSES:
            absent[term] = (
                f"{ones} of {len(responses)} rated responses have {term} = 1: fewer than "
                f"{MIN_CLASS_RESPONSES} on one side for an interval"
            )
            continue
        base[term] = rows[term].astype(float)
    if scale is None:
        absent[LENGTH] = "len_diff has no spread"
    else:
        base[LENGTH] = rows[LENGTH].astype(float) / scale
    return _stacked(_inputs(base, y, rows, absent, scale, ties), judge=judge)


def indicator_gap(
    sides: pd.DataFrame,
    *,
    indicators: Sequence[str],
    human: Hashable,
    judge: Hashable,
    ties: Ties = "drop",
    level: float = 0.95,
    length_scale: float | None = None,
) -> LinearModel:
    """Fit :func:`indicator_gap_design`: OLS clustered by pair, as :func:`moderation_gap`.

    The bias of indicator ``I`` is ``model.estimate("judge:I")``; the humans' own effect is
    ``model.estimate("I")`` and the judge's ``model.combination({"I": 1, "judge:I": 1})``.
    """
    inputs = indicator_gap_design(
        sides,
        indicators=indicators,
        human=human,
        judge=judge,
        ties=ties,
        length_scale=length_scale,
    )
    return inputs.fit(level)


def moderation_gap(
    sides: pd.DataFrame,
    *,
    human: Hashable,
    judge: Hashable,
    level: float = 0.95,
    **options: Unpack[LpmOptions],
) -> ModerationGap:
    """Stack ``human`` and ``judge`` rows and estimate the refusal gaps (module docstring).

    Regressors: the LPM's, ``judge`` (1 on the judge's rows) and ``judge:<term>`` for every LPM
    term. Only pairs rated by both are used, so the gap compares the raters on the same pairs.
    Standard errors are clustered by pair, which holds the human and judge rows of a pair
    together. ``opponent_controls`` as in :func:`refusal_lpm` (interacted with ``judge`` too).
    """
    inputs = gap_design(sides, human=human, judge=judge, **options)
    model = inputs.fit(level)
    gaps = {cls: model.estimate(f"{JUDGE}:{term}") for cls, term in CLASS_TERMS.items()}
    return ModerationGap(
        human=human,
        judge=judge,
        model=model,
        gaps=gaps,
        length=model.estimate(f"{JUDGE}:{LENGTH}"),
        n_pairs=len(pd.unique(inputs.clusters)),
    )


def gap_table(
    sides: pd.DataFrame,
    *,
    human: Hashable,
    judges: Sequence[Hashable],
    ties: Ties = "drop",
    level: float = 0.95,
    opponent_controls: bool = False,
) -> pd.DataFrame:
    """The gaps of several judges against the same humans, one row per (judge, class).

    Columns: ``judge``, ``response_class``, ``term``, ``human_pp``, ``judge_pp`` (the two
    raters' own coefficients), ``gap_pp`` with ``ci_low_pp`` / ``ci_high_pp`` and ``p_value``,
    ``n_pairs`` (pairs rated by both) and ``note`` (why a gap is undefined). A final row per
    judge holds the length interaction. Ready for a table, a forest plot or a CSV export.
    """
    if isinstance(judges, str):
        raise ValueError(f"give a list of judges, not the string {judges!r}")
    frame = _checked_sides(sides)
    scale = length_scale_of(frame)
    tables = [
        moderation_gap(
            frame,
            human=human,
            judge=judge,
            ties=ties,
            level=level,
            length_scale=scale,
            opponent_controls=opponent_controls,
        ).table()
        for judge in judges
    ]
    if not tables:
        return pd.DataFrame(columns=GAP_COLUMNS)
    return pd.concat(tables, ignore_index=True)
