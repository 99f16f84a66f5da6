"""Length and markdown style: how much does a judge reward them, net of the humans?

METHODS.md section 5. Features of a pair (response A against response B):

- ``length`` = tanh(len_diff / sd(len_diff)), len_diff = tokens_A - tokens_B and the standard
  deviation taken over the pairs: the bounded length term of AlpacaEval's length-controlled
  win rate (Dubois et al. 2024, arXiv 2404.04475).
- ``headers``, ``lists``, ``bold``: (f_A - f_B) / (f_A + f_B + 1) for markdown header lines,
  list items and bold spans, the normalised differences of Chatbot Arena's style control
  (LMSYS, "Does style matter?", 2024). Counts come from ``<feature>_a`` / ``<feature>_b``
  columns, or are made from ``text_a`` / ``text_b`` by :func:`markdown_counts`.

:func:`style_sensitivity` stacks one row per (pair, rater) for the humans and one judge,
y = 1 when A wins (0 when B does; ties dropped, or 0.5 with ``ties="half"``), and fits
``y = b0 + b.x + judge (c0 + c.x)`` by OLS with standard errors clustered by pair (the same
machinery as :mod:`analysis.metrics.refusal`). ``b_k`` is the humans' sensitivity to feature
k, ``b_k + c_k`` the judge's, and ``c_k`` the judge's sensitivity **net of the humans' on the
same pairs**, with its interval and p-value. Coefficients are in percentage points of win
probability per unit of the feature (length: from equal to much longer, tanh = 1).

:func:`length_controlled_win_rates` fits, per rater, a Bradley-Terry logistic model with the
style features as covariates (Arena's style control): logit P(A wins) = a + theta_modelA -
theta_modelB + g.x. A model's length-controlled win rate is the mean, over its comparisons, of
sigmoid(theta_model - theta_opponent): the win probability once length, markdown and the A
slot carry no weight. (AlpacaEval averages against one fixed baseline; here the opponents are
the ones the model actually met.) Interval by the delta method on a sandwich covariance. Where
every model always sits in the same slot (AlpacaEval's files put the baseline first) the slot
cannot be told from the models and the fit has no slot term, as AlpacaEval's own GLM has none.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Unpack

import numpy as np
import pandas as pd
from scipy import special

from analysis.metrics.outcomes import BOTH_BAD, TIE, A, B, Estimate, Result, Undefined, normal_z
from analysis.metrics.refusal import (
    INTERCEPT,
    JUDGE,
    LinearModel,
    RegressionInputs,
    Ties,
    points_row,
    rated_by_both,
    rows_where,
)
from analysis.metrics.votes import refuse_first, require_columns, show
from judges.core.markdown import markdown_count

LENGTH: Final = "length"
MARKDOWN_FEATURES: Final = ("headers", "lists", "bold")
FEATURES: Final = (LENGTH, *MARKDOWN_FEATURES)


def markdown_counts(text: str | None) -> dict[str, int]:
    """Header lines, list items and bold spans in ``text`` outside code, counted by the rules the
    stored response features use (`judges.core.markdown`)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return dict.fromkeys(MARKDOWN_FEATURES, 0)
    counts = markdown_count(str(text))
    return {"headers": counts.headers, "lists": counts.list_items, "bold": counts.bold}


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / (a + b + 1.0)


def style_features(pairs: pd.DataFrame, *, length_scale: float | None = None) -> pd.DataFrame:
    """The style features of each pair (module docstring), one row per row of ``pairs``.

    ``pairs`` needs ``pair_id``, ``tokens_a``, ``tokens_b``; markdown features come from
    ``headers_a`` ... ``bold_b`` count columns, else from ``text_a`` / ``text_b``, else are
    left out. ``length_scale`` overrides the standard deviation of the length difference.
    Returns ``pair_id`` and one column per feature available.
    """
    frame = require_columns(pairs, ["pair_id", "tokens_a", "tokens_b"], "pairs")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({"pair_id": frame["pair_id"]})
    diff = _numbers(frame, "tokens_a") - _numbers(frame, "tokens_b")
    scale = length_scale
    if scale is None and len(diff) >= 2:
        scale = float(np.std(diff, ddof=1))
    if scale is not None and np.isfinite(scale) and scale > 0:
        out[LENGTH] = np.tanh(diff / scale)
    counted = None
    for feature in MARKDOWN_FEATURES:
        columns = [f"{feature}_a", f"{feature}_b"]
        if set(columns) <= set(frame.columns):
            a, b = _numbers(frame, columns[0]), _numbers(frame, columns[1])
        elif {"text_a", "text_b"} <= set(frame.columns):
            if counted is None:
                counted = {
                    side: pd.DataFrame([markdown_counts(t) for t in frame[f"text_{side}"]])
                    for side in ("a", "b")
                }
            a = counted["a"][feature].to_numpy(dtype=float)
            b = counted["b"][feature].to_numpy(dtype=float)
        else:
            continue
        out[feature] = _normalised_difference(a, b)
    return out


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    refuse_first(frame, values.isna() | (values < 0), column, "is not a count (0 or more)")
    return values.to_numpy(dtype=float)


def _won_a(verdicts: pd.DataFrame, raters: Sequence[Hashable]) -> pd.DataFrame:
    """pair_id, rater, won_a (1 / 0 / 0.5) for the named raters; errors name the row."""
    votes = require_columns(verdicts, ["pair_id", "rater", "verdict"], "verdicts")
    votes = votes[votes["rater"].isin(list(raters)) & votes["verdict"].notna()]
    mapping = {"a": 1.0, "model_a": 1.0, "b": 0.0, "model_b": 0.0}
    mapping.update({k: 0.5 for k in (TIE, "tie (inconsistent)", BOTH_BAD, "bothbad")})
    mapping["tie (bothbad)"] = 0.5
    # Each distinct spelling read once (a handful), not every row's string.
    codes, spellings = pd.factorize(votes["verdict"])
    of_spelling = np.array([mapping.get(str(v).strip().lower(), np.nan) for v in spellings])
    won = pd.Series(of_spelling[codes] if len(codes) else [], index=votes.index, dtype=float)
    if won.isna().any():
        place = won.index[won.isna().to_numpy()][0]
        raise ValueError(
            f"verdicts row {place}: verdict {show(votes.loc[place, 'verdict'])} is not "
            f"{A}, {B}, tie or both_bad"
        )
    twice = votes.duplicated(["pair_id", "rater"])
    if twice.any():
        row = votes[twice].iloc[0]
        raise ValueError(
            f"verdicts: rater {show(row['rater'])} judged pair {show(row['pair_id'])} twice"
        )
    return pd.DataFrame(
        {"pair_id": votes["pair_id"], "rater": votes["rater"], "won_a": won.astype(float)}
    )


class StyleOptions(TypedDict, total=False):
    """What :func:`style_sensitivity` passes on to :func:`style_design` (defaults there)."""

    ties: Ties
    features: Sequence[str]
    length_scale: float | None


def style_design(
    pairs: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    human: Hashable,
    judge: Hashable,
    ties: Ties = "drop",
    features: Sequence[str] = FEATURES,
    length_scale: float | None = None,
) -> RegressionInputs:
    """The regression inputs of :func:`style_sensitivity` (same arguments).

    Only pairs judged by both raters enter, so the net sensitivity compares them on the same
    pairs. Features the pair table cannot supply are listed in ``absent``.
    """
    if human == judge:
        raise ValueError(f"human and judge must be different raters, both are {show(human)}")
    if ties not in ("drop", "half"):
        raise ValueError(f"ties must be 'drop' or 'half', got {ties!r}")
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown style feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
    table = style_features(pairs, length_scale=length_scale)
    if table["pair_id"].duplicated().any():
        twice = table.loc[table["pair_id"].duplicated(), "pair_id"].iloc[0]
        raise ValueError(f"pairs: pair_id {show(twice)} twice")
    won = _won_a(verdicts, [human, judge])
    both = rated_by_both(won, human, judge, "verdicts")
    rows = both.merge(table, on="pair_id", how="inner")
    if ties == "drop":
        rows = rows_where(rows, (rows["won_a"] != 0.5).to_numpy(dtype=bool))
    rows = rows.reset_index(drop=True)
    absent: dict[str, str] = {}
    columns: dict[str, np.ndarray] = {INTERCEPT: np.ones(len(rows))}
    used = []
    for feature in features:
        if feature not in rows.columns:
            absent[feature] = f"no {feature} data in the pair table"
            absent[f"{JUDGE}:{feature}"] = absent[feature]
            continue
        columns[feature] = rows[feature].to_numpy(dtype=float)
        used.append(feature)
    is_judge = rows["rater"].eq(judge).to_numpy(dtype=float)
    columns[JUDGE] = is_judge
    for feature in used:
        columns[f"{JUDGE}:{feature}"] = columns[feature] * is_judge
    return RegressionInputs(
        design=pd.DataFrame(columns),
        y=rows["won_a"].to_numpy(dtype=float),
        clusters=rows["pair_id"].to_numpy(),
        rows=rows,
        absent=absent,
        length_scale=None,
        ties=ties,
    )


@dataclass(frozen=True)
class StyleSensitivity:
    """The stacked style model of one judge against the humans (module docstring)."""

    human: Hashable
    judge: Hashable
    model: LinearModel
    net: Mapping[str, Result]
    n_pairs: int

    def table(self) -> pd.DataFrame:
        """One row per feature: ``human_pp``, ``judge_pp``, ``net_pp`` with interval, p."""
        rows = []
        for feature in FEATURES:
            human = self.model.estimate(feature)
            own = self.model.combination({feature: 1.0, f"{JUDGE}:{feature}": 1.0})
            net = self.net.get(feature) or Undefined(f"{feature} not requested")
            row = {"judge": self.judge, "feature": feature}
            rows.append({**row, **points_row("net_pp", human, own, net)})
        columns = [
            "judge",
            "feature",
            "human_pp",
            "judge_pp",
            "net_pp",
            "ci_low_pp",
            "ci_high_pp",
            "p_value",
            "n_pairs",
            "note",
        ]
        return pd.DataFrame(rows, columns=columns)


def style_sensitivity(
    pairs: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    human: Hashable,
    judge: Hashable,
    level: float = 0.95,
    **options: Unpack[StyleOptions],
) -> StyleSensitivity:
    """A judge's sensitivity to length and markdown, net of the humans' on the same pairs.

    ``pairs``: ``pair_id``, ``tokens_a``, ``tokens_b`` and markdown counts or texts (see
    :func:`style_features`). ``verdicts``: ``pair_id``, ``rater``, ``verdict`` (A, B, tie,
    both_bad). ``net[feature]`` is the judge-minus-human coefficient on the 0-1 scale.
    ``options`` as for :func:`style_design`: ``ties`` (``"drop"``), ``features`` (all),
    ``length_scale``, which fixes the standard deviation that scales the length difference
    (default: the pairs' own).
    """
    inputs = style_design(pairs, verdicts, human=human, judge=judge, **options)
    model = inputs.fit(level)
    features = options.get("features", FEATURES)
    net = {feature: model.estimate(f"{JUDGE}:{feature}") for feature in features}
    return StyleSensitivity(
        human=human,
        judge=judge,
        model=model,
        net=net,
        n_pairs=len(pd.unique(inputs.clusters)),
    )


# --------------------------------------------------------------------------------------------
# Length-controlled win rates


@dataclass(frozen=True)
class LogisticFit:
    """A ridge-stabilised logistic fit: coefficients, sandwich covariance, convergence."""

    params: np.ndarray
    cov: np.ndarray
    converged: bool
    iterations: int


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    ridge: np.ndarray | float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LogisticFit:
    """Maximise sum y log p + (1-y) log(1-p) - ridge/2 |beta|^2 by Newton's method.

    ``y`` may be fractional (a tie counts 1/2). ``ridge`` (scalar or one value per column)
    keeps coefficients finite when a model never loses; with ``ridge=0`` this is ordinary
    maximum likelihood. ``cov`` is the sandwich H^-1 (sum s_i s_i') H^-1 (HC0), valid with
    fractional outcomes.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    penalty = np.broadcast_to(np.asarray(ridge, dtype=float), (x.shape[1],))
    beta = np.zeros(x.shape[1])
    converged = False
    iteration = 0
    objective = -np.inf
    while iteration < max_iter:
        iteration += 1
        eta = x @ beta
        p = special.expit(eta)
        gradient = x.T @ (y - p) - penalty * beta
        hessian = (x * (p * (1.0 - p))[:, np.newaxis]).T @ x + np.diag(penalty)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        current = _penalised_loglik(x, y, beta, penalty)
        size = 1.0
        while size > 1e-8:
            candidate = beta + size * step
            value = _penalised_loglik(x, y, candidate, penalty)
            if value >= current - 1e-12:
                break
            size /= 2.0
        beta = beta + size * step
        moved = float(np.max(np.abs(size * step))) if len(step) else 0.0
        if abs(value - objective) < tol * (1.0 + abs(value)) and moved < 1e-7:
            converged = True
            break
        objective = value
    p = special.expit(x @ beta)
    hessian = (x * (p * (1.0 - p))[:, np.newaxis]).T @ x + np.diag(penalty)
    scores = x * (y - p)[:, np.newaxis]
    bread = np.linalg.pinv(hessian)
    cov = bread @ (scores.T @ scores) @ bread
    return LogisticFit(params=beta, cov=cov, converged=converged, iterations=iteration)


def _penalised_loglik(x: np.ndarray, y: np.ndarray, beta: np.ndarray, penalty: Any) -> float:
    eta = x @ beta
    # log sigmoid(eta) = -log(1 + exp(-eta)), computed stably with logaddexp.
    loglik = -(y * np.logaddexp(0.0, -eta) + (1.0 - y) * np.logaddexp(0.0, eta)).sum()
    return float(loglik - 0.5 * (penalty * beta * beta).sum())


def length_controlled_win_rates(
    pairs: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    rater: Hashable,
    features: Sequence[str] = FEATURES,
    ties: Ties = "half",
    level: float = 0.95,
    ridge: float = 1e-4,
) -> pd.DataFrame:
    """Raw and length-controlled win rates of each model under one rater's verdicts.

    ``pairs`` needs ``model_a``, ``model_b`` besides the style inputs. ``ties="half"``
    (default) counts a tie as half a win, AlpacaEval's convention. ``ridge`` is a small L2
    penalty on the model strengths only, so that a model that never lost keeps a finite
    strength. Returns one row per model: ``n`` comparisons, ``win_rate`` (raw, ties 1/2),
    ``lc_win_rate`` with ``lc_low`` / ``lc_high``, and ``note`` when undefined.
    """
    frame = require_columns(pairs, ["pair_id", "model_a", "model_b"], "pairs")
    if ties not in ("drop", "half"):
        raise ValueError(f"ties must be 'drop' or 'half', got {ties!r}")
    same = frame["model_a"].eq(frame["model_b"])
    if same.any():
        where = same.idxmax()
        raise ValueError(
            f"pairs: pair {show(frame.loc[where, 'pair_id'])} compares model "
            f"{show(frame.loc[where, 'model_a'])} with itself"
        )
    table = style_features(frame).assign(
        model_a=frame["model_a"].to_numpy(), model_b=frame["model_b"].to_numpy()
    )
    won = _won_a(verdicts, [rater])
    if won.empty:
        raise ValueError(f"verdicts has no rows for rater {show(rater)}")
    rows = won.merge(table, on="pair_id", how="inner")
    if ties == "drop":
        rows = rows[rows["won_a"] != 0.5]
    rows = rows.reset_index(drop=True)
    columns = ["model", "n", "win_rate", "lc_win_rate", "lc_low", "lc_high", "note"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    codes, models = pd.factorize(pd.concat([rows["model_a"], rows["model_b"]]), sort=True)
    half = len(rows)
    code_a, code_b = codes[:half], codes[half:]
    m = len(models)
    used = [f for f in features if f in rows.columns and np.ptp(rows[f].to_numpy()) > 0]
    strengths = np.zeros((half, m - 1))
    for k in range(1, m):
        strengths[:, k - 1] = (code_a == k).astype(float) - (code_b == k).astype(float)
    # The A-slot intercept only where the data can tell it from the strengths: when every model
    # always sits in the same slot (AlpacaEval's files: the baseline is always A), the slot
    # column is a sum of strength columns and would absorb them all (every rate 50% [50, 50]).
    slot = _slot_identified(strengths)
    lead = 1 if slot else 0
    # Columns: [A-slot intercept], strengths of models 1..m-1 (model 0 is the reference at 0),
    # then the style features.
    x = np.zeros((half, lead + (m - 1) + len(used)))
    if slot:
        x[:, 0] = 1.0
    x[:, lead : lead + m - 1] = strengths
    for j, feature in enumerate(used):
        x[:, lead + m - 1 + j] = rows[feature].to_numpy(dtype=float)
    y = rows["won_a"].to_numpy(dtype=float)
    penalty = np.zeros(x.shape[1])
    penalty[lead : lead + m - 1] = ridge
    fit = fit_logistic(x, y, ridge=penalty)
    theta = np.concatenate([[0.0], fit.params[lead : lead + m - 1]])
    z = normal_z(level)
    out = []
    for k, model in enumerate(models):
        involved = (code_a == k) | (code_b == k)
        n = int(involved.sum())
        raw = np.where(code_a[involved] == k, y[involved], 1.0 - y[involved]).mean()
        opponent = np.where(code_a[involved] == k, code_b[involved], code_a[involved])
        prob = special.expit(theta[k] - theta[opponent])
        value = float(prob.mean())
        # Gradient of the mean over the strength parameters (reference model has none).
        gradient = np.zeros(x.shape[1])
        slope = prob * (1.0 - prob)
        if k > 0:
            gradient[lead + k - 1] += slope.sum() / n
        np.subtract.at(gradient, lead + opponent[opponent > 0] - 1, slope[opponent > 0] / n)
        se = float(np.sqrt(max(gradient @ fit.cov @ gradient, 0.0)))
        note = "" if fit.converged else "the logistic fit did not converge"
        out.append(
            {
                "model": model,
                "n": n,
                "win_rate": float(raw),
                "lc_win_rate": value,
                "lc_low": max(0.0, value - z * se),
                "lc_high": min(1.0, value + z * se),
                "note": note,
            }
        )
    return pd.DataFrame(out, columns=columns)


def _slot_identified(strengths: np.ndarray) -> bool:
    """Can an A-slot intercept be told apart from the model strengths (some model sits in both
    slots)? False when the column of ones lies in the strengths' span."""
    if strengths.shape[1] == 0:
        return True
    ones = np.ones((strengths.shape[0], 1))
    rank = np.linalg.matrix_rank(strengths)
    return bool(np.linalg.matrix_rank(np.hstack([ones, strengths])) > rank)


def lc_win_rate(table: pd.DataFrame, model: Hashable, *, level: float = 0.95) -> Result:
    """One model's length-controlled win rate from :func:`length_controlled_win_rates`.

    ``level`` is the one the table was made with (it is not stored in the table).
    """
    rows = table[table["model"] == model]
    if rows.empty:
        return Undefined(f"no comparisons of model {show(model)}")
    row = rows.iloc[0]
    if row["note"]:
        return Undefined(str(row["note"]), n=int(row["n"]))
    return Estimate(
        value=float(row["lc_win_rate"]),
        n=int(row["n"]),
        ci=(float(row["lc_low"]), float(row["lc_high"])),
        level=level,
        details={"raw_win_rate": float(row["win_rate"])},
    )
