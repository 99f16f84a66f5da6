"""Tribunal's statistics: pure functions over pandas/numpy, no Django.

Definitions, sources and the worked examples the tests reproduce are in METHODS.md; each
function's docstring gives its formula. Vote tables are long DataFrames with columns
``item``, ``rater``, ``value`` (plus an optional cluster column such as the prompt); results
are :class:`Estimate` (value, n, optional bootstrap CI, formula details) or
:class:`Undefined` (value None and the reason) - never NaN, never an exception for
degenerate data. Bad input (a missing column, a rater voting twice on an item, an unknown
verdict) raises ``ValueError`` with a message naming the place.

For many figures over one large table, code it once with :func:`code_votes` (per tie policy)
and pass the result instead of the DataFrame; bootstrap replicates are memoised, so metrics
over the same table and seed share one resampling.
"""

from __future__ import annotations

from analysis.metrics.agreement import (
    cohen_kappa,
    confusion_matrix,
    constant_answer_baseline,
    fleiss_kappa,
    gwet_ac,
    human_ceiling,
    krippendorff_alpha,
    percent_agreement,
    scott_pi,
)
from analysis.metrics.bootstrap import percentile_interval, resample_sums
from analysis.metrics.consensus import DawidSkene, dawid_skene, majority_vote
from analysis.metrics.engine import weight_matrix
from analysis.metrics.outcomes import (
    BOTH_BAD,
    OUTCOMES,
    S1,
    S2,
    TIE,
    A,
    B,
    Estimate,
    Result,
    TiePolicy,
    Undefined,
    combine_orders,
    parse_outcome,
    swap,
)
from analysis.metrics.position import (
    PositionReport,
    left_preference,
    position_report,
    wilson_interval,
)
from analysis.metrics.ranking import (
    Ranking,
    bradley_terry,
    kendall_tau,
    separability,
    spearman_rho,
)
from analysis.metrics.slices import metrics_by_slice
from analysis.metrics.votes import CodedVotes, code_votes

__all__ = [
    "BOTH_BAD",
    "OUTCOMES",
    "S1",
    "S2",
    "TIE",
    "A",
    "B",
    "CodedVotes",
    "DawidSkene",
    "Estimate",
    "PositionReport",
    "Ranking",
    "Result",
    "TiePolicy",
    "Undefined",
    "bradley_terry",
    "code_votes",
    "cohen_kappa",
    "combine_orders",
    "confusion_matrix",
    "constant_answer_baseline",
    "dawid_skene",
    "fleiss_kappa",
    "gwet_ac",
    "human_ceiling",
    "kendall_tau",
    "krippendorff_alpha",
    "left_preference",
    "majority_vote",
    "metrics_by_slice",
    "parse_outcome",
    "percent_agreement",
    "percentile_interval",
    "position_report",
    "resample_sums",
    "scott_pi",
    "separability",
    "spearman_rho",
    "swap",
    "weight_matrix",
    "wilson_interval",
]

# Analysis II: refusal gap, style, criteria, PPI, confidence sequences, release gate.
from analysis.metrics.criteria import CriteriaReport, criteria_importance
from analysis.metrics.gate import (
    EXIT_CODES,
    GateResult,
    GateRuleError,
    evaluate_gate,
    parse_rules,
)
from analysis.metrics.ppi import (
    classical_mean,
    labels_needed,
    ppi_by_group,
    ppi_mean,
)
from analysis.metrics.refusal import (
    RESPONSE_CLASSES,
    LinearModel,
    ModerationGap,
    class_rates,
    gap_table,
    moderation_gap,
    refusal_lpm,
    response_sides,
)
from analysis.metrics.sequential import (
    ConfidenceSequence,
    confidence_sequence,
    labels_for_half_width,
)
from analysis.metrics.style import (
    StyleSensitivity,
    length_controlled_win_rates,
    markdown_counts,
    style_features,
    style_sensitivity,
)

__all__ += [
    "EXIT_CODES",
    "RESPONSE_CLASSES",
    "ConfidenceSequence",
    "CriteriaReport",
    "GateResult",
    "GateRuleError",
    "LinearModel",
    "ModerationGap",
    "StyleSensitivity",
    "class_rates",
    "classical_mean",
    "confidence_sequence",
    "criteria_importance",
    "evaluate_gate",
    "gap_table",
    "labels_for_half_width",
    "labels_needed",
    "length_controlled_win_rates",
    "markdown_counts",
    "moderation_gap",
    "parse_rules",
    "ppi_by_group",
    "ppi_mean",
    "refusal_lpm",
    "response_sides",
    "style_features",
    "style_sensitivity",
]
