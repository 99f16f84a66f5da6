"""The shape of a stored snapshot, written once: pydantic models of ``MetricSnapshot.metrics``
and ``MetricSnapshot.counts`` (no Django); and of a comparison of two judges
(:class:`Comparison`, computed on request), which is made of the same figures.

:func:`analysis.figures.figures_compute` and :func:`analysis.studies.studies_compute` write
plain JSON; :func:`metrics_parse` reads it back as :class:`SnapshotMetrics`, whose attributes
are what every reader uses (``metrics.figures.S1.judges[rater].vs_humans.cohen_kappa``), never
string paths. A model keeps which keys it was given: ``model.as_json()`` is the stored JSON
again, key for key and number for number (``tests/analysis/test_snapshot_shape.py``), so a
section a snapshot left out (the PPI in a dataset, the studies of an old snapshot) stays left
out. Keys also come back in the writer's order, except where that order follows the data (the
PPI rows' columns); PostgreSQL's jsonb keeps no key order anyway.

Sections that may be replaced by their reason (``{"reason": "no response lengths"}``) have every
other field optional; ``reason`` says why they are empty. Keys that name raters (``j:12``,
``u:3``, ``h:crowd``), slice dimensions and model names are dictionary keys.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Sequence
from typing import Any, TypeAlias, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Number: TypeAlias = int | float  # kept as stored: 1 stays 1, 1.0 stays 1.0
Scalar: TypeAlias = bool | int | float | str | None
Interval: TypeAlias = tuple[Number | None, Number | None]


class Shape(BaseModel):
    """A part of a snapshot: read-only, and dumped with only the keys it was read from.

    Unknown keys are kept (``extra="allow"``) so a snapshot written by a newer version still
    reads; the shape test fails on any key a fresh snapshot has and these models do not name.
    """

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def as_json(self) -> dict[str, Any]:
        """The JSON this was read from (the keys it was given, numbers as they were)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


# --- one figure --------------------------------------------------------------------------------


class Result(Shape):
    """An Estimate or Undefined as :func:`analysis.metrics.outcomes.result_json` writes it:
    ``value``, ``n``, ``ci``, ``level`` and ``details``, or ``value`` None and ``reason``."""

    # In the writer's key order (value, reason, n, ci, level, details: a defined result has
    # no reason, an undefined one no ci or level), so a dump keeps the stored order too.
    value: Number | None = None
    reason: str | None = None
    n: int = 0
    ci: tuple[Number, Number] | None = None
    level: Number | None = None
    details: dict[str, Scalar] = Field(default_factory=dict)

    @property
    def defined(self) -> bool:
        return self.value is not None

    @classmethod
    def of(cls, value: Number | None, ci: Interval | None = None, n: int | None = None) -> Result:
        """A figure shown like a stored one: a rate and its interval stored side by side (an
        annotator's left rate, a model's strength), or a scaled copy. An interval with a
        missing end is left out."""
        data: dict[str, Any] = {"value": value}
        if ci is not None and ci[0] is not None and ci[1] is not None:
            data["ci"] = (ci[0], ci[1])
        if n is not None:
            data["n"] = n
        return cls.model_validate(data)


# --- counts --------------------------------------------------------------------------------------


class SnapshotCounts(Shape):
    """What a snapshot was computed from (``MetricSnapshot.counts``)."""

    items: int = 0
    prompts: int = 0
    human_votes: int = 0
    humans: int = 0
    judges: int = 0
    verdicts: int = 0
    unparsed_verdicts: int = 0
    adjudications: int = 0
    items_with_human_votes: int = 0
    # Counts and latest ids of what was read (analysis.selectors.*_watermark): compared whole.
    watermark: dict[str, Any] | None = None


# --- the head: subject, settings, raters, progress -----------------------------------------------


class Subject(Shape):
    kind: str = ""
    id: int | None = None
    name: str = ""
    dataset: str | None = None  # an audit's dataset


class Settings(Shape):
    n_boot: int = 0
    level: Number = 0.95
    seed: int = 0
    cluster: str = "prompt"
    policies: dict[str, str] = Field(default_factory=dict)
    categories: dict[str, list[str]] = Field(default_factory=dict)
    majority: str = ""


class HumanRater(Shape):
    id: str
    name: str
    votes: int = 0


class JudgeRater(Shape):
    id: str  # j:<judge id>
    judge_id: int
    name: str
    version: int
    label: str
    model_id: str = ""
    verdicts: int = 0
    unparsed: int = 0


class Raters(Shape):
    humans: list[HumanRater] = Field(default_factory=list)
    judges: list[JudgeRater] = Field(default_factory=list)


class StratumProgress(Shape):
    stratum: str
    items: int
    labels: int
    complete: int


class Progress(Shape):
    """An audit's (items, labels, strata) or a dataset's (pairs, votes) progress."""

    # audits
    items: int = 0
    overlap_k: int | None = None
    labels: int = 0
    labels_needed: int = 0
    items_labelled: int = 0
    items_complete: int = 0
    adjudicated: int = 0
    annotators: int = 0
    strata: list[StratumProgress] = Field(default_factory=list)
    # datasets
    pairs: int = 0
    pairs_with_votes: int = 0
    votes: int = 0
    voters: int = 0
    verdicts: int = 0


# --- two-rater figures ---------------------------------------------------------------------------


class Coefficients(Shape):
    """One comparison's two-rater figures (``cohen_kappa_linear``: S1 judges only)."""

    percent_agreement: Result | None = None
    cohen_kappa: Result | None = None
    scott_pi: Result | None = None
    gwet_ac: Result | None = None
    cohen_kappa_linear: Result | None = None


class Reliability(Shape):
    fleiss_kappa: Result | None = None
    krippendorff_alpha: Result | None = None


class Ceiling(Shape):
    """The people among themselves: two-rater figures over every two people on an item, and
    the several-rater coefficients."""

    percent_agreement: Result | None = None
    cohen_kappa: Result | None = None
    scott_pi: Result | None = None
    gwet_ac: Result | None = None
    fleiss_kappa: Result | None = None
    krippendorff_alpha: Result | None = None


class Baseline(Shape):
    """Agreement of a constant answer (the people's most common vote)."""

    vs_humans: Result | None = None
    vs_majority: Result | None = None


class JudgeFigures(Shape):
    vs_humans: Coefficients = Field(default_factory=Coefficients)
    vs_majority: Coefficients = Field(default_factory=Coefficients)
    vs_each_human: dict[str, Result] = Field(default_factory=dict)


class HumanPair(Shape):
    """Two people's agreement with each other."""

    a: str
    b: str
    percent_agreement: Result | None = None
    cohen_kappa: Result | None = None


class PolicyFigures(Shape):
    """Every two-rater figure under one tie policy (S1 or S2)."""

    ceiling: Ceiling = Field(default_factory=Ceiling)
    baseline: Baseline = Field(default_factory=Baseline)
    judges: dict[str, JudgeFigures] = Field(default_factory=dict)
    all_raters: Reliability = Field(default_factory=Reliability)
    human_pairs: list[HumanPair] = Field(default_factory=list)


class Figures(Shape):
    S1: PolicyFigures = Field(default_factory=PolicyFigures)
    S2: PolicyFigures = Field(default_factory=PolicyFigures)

    def policy(self, name: str) -> PolicyFigures:
        """``S1`` or ``S2`` by name."""
        if name not in ("S1", "S2"):
            raise ValueError(f"no tie policy {name!r}")
        figures: PolicyFigures = getattr(self, name)
        return figures


class Table(Shape):
    """A confusion matrix: rows the judge's verdict, columns the reference's."""

    categories: list[str] = Field(default_factory=list)
    rows: list[list[int]] = Field(default_factory=list)
    total: int = 0


class JudgeConfusion(Shape):
    vs_majority: Table | None = None
    vs_humans: Table | None = None


# --- position bias -------------------------------------------------------------------------------


class OrderAgreement(Shape):
    """Agreement with the people's majority counting a pair right only in both orders, and
    each order alone, on the same pairs."""

    n: int = 0
    both_orders: Result | None = None
    original_order: Result | None = None
    swapped_order: Result | None = None


class PositionBySlice(Shape):
    """Consistency overall (``all``) and per slice dimension, ``{value: result}``."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, Result]] = Field(init=False)  # type: ignore[assignment]

    all: Result | None = None

    def dimensions(self) -> dict[str, dict[str, Result]]:
        return dict(self.__pydantic_extra__ or {})


class PositionOrders(Shape):
    agreement: OrderAgreement | None = None
    by_slice: PositionBySlice | None = None


class JudgePosition(Shape):
    method: str | None = None  # both_orders, consistent_flag or None (one order only)
    consistency: Result | None = None
    fairness: Result | None = None
    n: int = 0
    consistent: int | None = None
    primacy: int | None = None
    recency: int | None = None
    other: int | None = None
    orders: PositionOrders | None = None


class AnnotatorSide(Shape):
    """An annotator's share of side choices that picked the left response (Wilson CI)."""

    rater: str
    n: int
    left: int
    rate: Number | None = None
    ci: Interval = (None, None)
    p_value: Number | None = None


class Position(Shape):
    judges: dict[str, JudgePosition] = Field(default_factory=dict)
    annotators: list[AnnotatorSide] = Field(default_factory=list)


# --- consensus and rankings ----------------------------------------------------------------------


class Majority(Shape):
    items: int = 0
    decided_by: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, int] = Field(default_factory=dict)
    mean_support: Number | None = None


class DawidSkene(Result):
    """The fitted model, or (as an undefined Result) the reason there is none."""

    accuracy: dict[str, Number | None] = Field(default_factory=dict)
    prior: dict[str, Number | None] = Field(default_factory=dict)
    agrees_with_majority: Number | None = None
    iterations: int | None = None
    converged: bool | None = None


class Consensus(Shape):
    majority: Majority = Field(default_factory=Majority)
    dawid_skene: DawidSkene | None = None


class RankedModel(Shape):
    model: str
    strength: Number | None = None
    ci: Interval = (None, None)
    rank: int
    wins: Number | None = None
    games: Number | None = None


class BradleyTerry(Result):
    """A Bradley-Terry ranking (``models``), or (as an undefined Result) why there is none."""

    models: list[RankedModel] = Field(default_factory=list)
    boot_undefined: Number | None = None


class JudgeRanking(Shape):
    ranking: BradleyTerry | None = None
    kendall_tau: Result | None = None
    spearman_rho: Result | None = None
    separability: Result | None = None


class Ranking(Shape):
    reason: str | None = None
    humans: BradleyTerry | None = None
    judges: dict[str, JudgeRanking] = Field(default_factory=dict)


# --- slices and trend ----------------------------------------------------------------------------


class SliceCeiling(Shape):
    S1: Result | None = None
    S2: Result | None = None


class SliceJudge(Shape):
    S1: Result | None = None
    S2: Result | None = None
    kappa_S1: Result | None = None


class SliceRow(Shape):
    value: Scalar = None
    items: int = 0
    prompts: int | None = None
    ceiling: SliceCeiling = Field(default_factory=SliceCeiling)
    judges: dict[str, SliceJudge] = Field(default_factory=dict)


class SliceDimension(Shape):
    label: str = ""
    rows: list[SliceRow] = Field(default_factory=list)
    omitted: int = 0


class TrendPoint(Shape):
    S1: Number | None = None
    S2: Number | None = None
    kappa_S1: Number | None = None


class Trend(Shape):
    label_count: int = 0
    names: dict[str, str] = Field(default_factory=dict)
    judges: dict[str, TrendPoint] = Field(default_factory=dict)
    ceiling: TrendPoint = Field(default_factory=TrendPoint)


# --- studies: refusal gap ------------------------------------------------------------------------


class ClassRate(Shape):
    """Win, loss and tie rates of one rater for one response class (Wilson intervals)."""

    rater: str
    response_class: str
    n: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    win_rate: Number | None = None
    win_low: Number | None = None
    win_high: Number | None = None
    loss_rate: Number | None = None
    loss_low: Number | None = None
    loss_high: Number | None = None
    tie_rate: Number | None = None
    tie_low: Number | None = None
    tie_high: Number | None = None
    wl_ratio: Number | None = None
    wl_low: Number | None = None
    wl_high: Number | None = None


class LpmRow(Shape):
    term: str
    coef_pp: Number | None = None
    se_pp: Number | None = None
    ci_low_pp: Number | None = None
    ci_high_pp: Number | None = None
    p_value: Number | None = None
    note: str = ""


class Lpm(Shape):
    reason: str | None = None
    rows: list[LpmRow] = Field(default_factory=list)
    n: int | None = None


class GapRow(Shape):
    response_class: str = Field(alias="class")
    term: str
    human: Result
    judge: Result
    gap: Result
    gap_ties_half: Result


class RefusalGap(Shape):
    pairs: int | None = None
    reason: str | None = None
    rows: list[GapRow] = Field(default_factory=list)
    length: Result | None = None


class RefusalStudy(Shape):
    reason: str | None = None
    pairs: int = 0
    classifier: str | None = None
    length_unit: str = ""
    similarity: bool = False
    class_counts: dict[str, int] = Field(default_factory=dict)
    raters: dict[str, str] = Field(default_factory=dict)
    rates: list[ClassRate] = Field(default_factory=list)
    rates_vs_normal: list[ClassRate] = Field(default_factory=list)
    lpm: dict[str, Lpm] = Field(default_factory=dict)
    gaps: dict[str, RefusalGap] = Field(default_factory=dict)


# --- studies: style and length -------------------------------------------------------------------


class StyleRow(Shape):
    feature: str
    human: Result
    judge: Result
    net: Result


class StyleFit(Shape):
    pairs: int | None = None
    reason: str | None = None
    rows: list[StyleRow] = Field(default_factory=list)


class LcRow(Shape):
    model: str
    n: int | None = None
    win_rate: Number | None = None
    lc_win_rate: Number | None = None
    lc_low: Number | None = None
    lc_high: Number | None = None
    note: str = ""


class LcWinRates(Shape):
    """Per rater, the models' raw and length-controlled win rates; or the reason for none."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, list[LcRow]] = Field(init=False)  # type: ignore[assignment]

    reason: str | None = None

    def by_rater(self) -> dict[str, list[LcRow]]:
        return dict(self.__pydantic_extra__ or {})


class StyleStudy(Shape):
    reason: str | None = None
    pairs: int = 0
    features: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    length_unit: str = ""
    raters: dict[str, str] = Field(default_factory=dict)
    sensitivity: dict[str, StyleFit] = Field(default_factory=dict)
    lc_win_rates: LcWinRates = Field(default_factory=LcWinRates)


# --- studies: criteria ---------------------------------------------------------------------------


class CriteriaRow(Shape):
    """How much one criterion explains the judge's and the people's overall verdicts."""

    criterion: str
    judge_agreement: Number | None = None
    judge_agreement_low: Number | None = None
    judge_agreement_high: Number | None = None
    judge_agreement_n: int | None = None
    judge_beta: Number | None = None
    judge_beta_low: Number | None = None
    judge_beta_high: Number | None = None
    judge_dominance: Number | None = None
    judge_share: Number | None = None
    human_agreement: Number | None = None
    human_agreement_low: Number | None = None
    human_agreement_high: Number | None = None
    human_agreement_n: int | None = None
    human_beta: Number | None = None
    human_beta_low: Number | None = None
    human_beta_high: Number | None = None
    human_dominance: Number | None = None
    human_share: Number | None = None
    dominance_diff: Number | None = None
    diff_low: Number | None = None
    diff_high: Number | None = None


class CriteriaJudge(Shape):
    pairs: int = 0
    criteria: list[str] = Field(default_factory=list)
    rows: list[CriteriaRow] = Field(default_factory=list)
    r2: dict[str, Result] = Field(default_factory=dict)
    style_share: dict[str, Result] = Field(default_factory=dict)
    dropped: dict[str, str] = Field(default_factory=dict)


class CriteriaStudy(Shape):
    reason: str | None = None
    judges: dict[str, CriteriaJudge] = Field(default_factory=dict)
    raters: dict[str, str] = Field(default_factory=dict)


# --- studies: self-family preference -------------------------------------------------------------


class FamilyRow(Shape):
    family: str
    judge: str
    own: bool
    pairs: int = 0
    judge_win: Result
    human_win: Result
    difference: Result


class FamilyLpm(Shape):
    family: str | None = None
    pairs: int | None = None
    reason: str | None = None
    human: Result | None = None
    judge: Result | None = None
    interaction: Result | None = None


class SelfFamilyStudy(Shape):
    reason: str | None = None
    raters: dict[str, str] = Field(default_factory=dict)
    judge_families: dict[str, str | None] = Field(default_factory=dict)
    model_families: dict[str, str | None] = Field(default_factory=dict)
    unknown_models: list[str] = Field(default_factory=list)
    length_unit: str = ""
    rows: list[FamilyRow] = Field(default_factory=list)
    lpm: dict[str, FamilyLpm] = Field(default_factory=dict)


# --- studies: few labels, many verdicts ----------------------------------------------------------


class PpiRow(Shape):
    """One group's prediction-powered human win rate (:func:`analysis.metrics.ppi.ppi_row`)."""

    group: str
    n_labelled: int | None = None
    n_judged: int | None = None
    judge_only: Number | None = None
    classical: Number | None = None
    classical_low: Number | None = None
    classical_high: Number | None = None
    ppi: Number | None = None
    ppi_low: Number | None = None
    ppi_high: Number | None = None
    lam: Number | None = Field(default=None, alias="lambda")
    effective_labels: Number | None = None
    note: str | None = None
    labels_more: Number | None = None


class PpiTable(Shape):
    reason: str | None = None
    rows: list[PpiRow] = Field(default_factory=list)


class PpiStudy(Shape):
    reason: str | None = None
    raters: dict[str, str] = Field(default_factory=dict)
    labelled: int = 0
    method: str = ""
    by_model: dict[str, PpiTable] = Field(default_factory=dict)
    by_class: dict[str, PpiTable] = Field(default_factory=dict)


PathPoint: TypeAlias = tuple[int, Number | None, Number | None, Number | None]


class SequentialJudge(Shape):
    reason: str | None = None
    current: Result | None = None
    fixed_n: Result | None = None
    more: int | None = None
    projection: str | None = None
    path: list[PathPoint] = Field(default_factory=list)  # (labels, lower, centre, upper)


class SequentialStudy(Shape):
    reason: str | None = None
    half_width: Number | None = None
    judges: dict[str, SequentialJudge] = Field(default_factory=dict)


class Studies(Shape):
    half_width: Number = 0.05
    refusal: RefusalStudy = Field(default_factory=RefusalStudy)
    style: StyleStudy = Field(default_factory=StyleStudy)
    criteria: CriteriaStudy = Field(default_factory=CriteriaStudy)
    self_family: SelfFamilyStudy | None = None
    ppi: PpiStudy | None = None
    sequential: SequentialStudy | None = None


# --- the whole -----------------------------------------------------------------------------------


class SnapshotMetrics(Shape):
    """``MetricSnapshot.metrics``: every figure of an audit or a dataset."""

    schema_version: int = Field(default=1, alias="schema")
    subject: Subject = Field(default_factory=Subject)
    settings: Settings = Field(default_factory=Settings)
    raters: Raters = Field(default_factory=Raters)
    progress: Progress = Field(default_factory=Progress)
    figures: Figures = Field(default_factory=Figures)
    confusion: dict[str, JudgeConfusion] = Field(default_factory=dict)
    position: Position = Field(default_factory=Position)
    consensus: Consensus = Field(default_factory=Consensus)
    ranking: Ranking = Field(default_factory=Ranking)
    slices: dict[str, SliceDimension] = Field(default_factory=dict)
    trend: Trend = Field(default_factory=Trend)
    studies: Studies | None = None

    def judge(self, rater: str) -> JudgeRater | None:
        """The judge version ``rater`` (``j:<id>``) names, if it is one of this snapshot's."""
        return next((j for j in self.raters.judges if j.id == rater), None)

    def human_names(self) -> dict[str, str]:
        """Each person's rater id and name, in the snapshot's order."""
        return {h.id: h.name for h in self.raters.humans}


def metrics_parse(data: Any) -> SnapshotMetrics:
    """``MetricSnapshot.metrics`` as :class:`SnapshotMetrics` (an empty dict reads as empty).

    Strict: what the writer's check uses. Stored snapshots are read with :func:`metrics_read`.
    """
    return SnapshotMetrics.model_validate(data or {})


def counts_parse(data: Any) -> SnapshotCounts:
    return SnapshotCounts.model_validate(data or {})


# --- stored snapshots written by older versions --------------------------------------------------


class SnapshotUnreadable(ValueError):
    """A stored snapshot this version cannot read, even with what older versions left out
    filled in: stored by older code (or edited by hand). Readers treat it as stale and ask for
    a fresh one (``MetricSnapshot.stale_reason``, ``analysis.services.snapshot_readable``)."""

    def __init__(self, part: str, problems: Sequence[str]) -> None:
        self.part = part
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        if len(self.problems) > 5:
            shown += f"; and {len(self.problems) - 5} more"
        super().__init__(f"the stored {part} do not match this version's shape ({shown})")


# A figure that an older version did not write reads as undefined, as the readers before the
# typed snapshot showed a missing one (report_self_family's ``row.get(...) or {}``); the
# self-family row's ``own`` as False (``bool(row.get("own"))``). Nothing else is filled: a
# missing id, name or term cannot be made up, and such a snapshot is stale.
NOT_STORED = {"value": None, "reason": "not in this snapshot (stored by an older version)"}
FILLED: dict[tuple[type[BaseModel], str], Any] = {(FamilyRow, "own"): False}


def metrics_read(data: Any) -> SnapshotMetrics:
    """A stored ``MetricSnapshot.metrics``: :func:`metrics_parse`, after filling the figures
    older versions left out (``FILLED``, ``NOT_STORED``). Raises :class:`SnapshotUnreadable`
    when that is not enough."""
    return _read(SnapshotMetrics, data, "figures")


def counts_read(data: Any) -> SnapshotCounts:
    """A stored ``MetricSnapshot.counts`` (every field has a default: only a value of the
    wrong type makes it unreadable)."""
    return _read(SnapshotCounts, data, "counts")


def _read(model: type[Shape], data: Any, part: str) -> Any:
    data = data or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc
    filled = copy.deepcopy(data)
    if _fill(model, filled, error.errors()):
        try:
            return model.model_validate(filled)
        except ValidationError as exc:
            error = exc
    raise SnapshotUnreadable(part, [_problem(e) for e in error.errors()]) from None


def _problem(error: Any) -> str:
    place = ".".join(f"[{step}]" if isinstance(step, int) else str(step) for step in error["loc"])
    return f"{place.replace('.[', '[')}: {error['msg'].lower()}"


def _fill(model: type[BaseModel], data: Any, errors: Sequence[Any]) -> bool:
    """Fill in ``data`` each missing key that ``FILLED`` or ``NOT_STORED`` covers; True when
    every error was such a key."""
    for error in errors:
        loc = error["loc"]
        found = _field(model, loc) if error["type"] == "missing" else None
        if found is None:
            return False
        owner, annotation = found
        if (owner, loc[-1]) in FILLED:
            value = FILLED[(owner, loc[-1])]
        elif isinstance(annotation, type) and issubclass(annotation, Result):
            value = NOT_STORED
        else:
            return False
        parent = data
        for step in loc[:-1]:
            parent = parent[step]
        parent[loc[-1]] = copy.deepcopy(value)
    return True


def _field(model: type[BaseModel], loc: Sequence[Any]) -> tuple[type[BaseModel], Any] | None:
    """The model class holding the field a pydantic error's ``loc`` ends at, and the field's
    type; None where the place is not a model's field."""
    current: Any = model
    owner: type[BaseModel] | None = None
    for step in loc:
        current, owner = _unwrap(current), None
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {**current.model_fields}
            fields.update({f.alias: f for f in current.model_fields.values() if f.alias})
            if step in fields:
                owner, current = current, fields[step].annotation
            else:  # a key of a model whose other keys are typed (PositionBySlice, LcWinRates)
                extra = get_type_hints(current).get("__pydantic_extra__")
                if extra is None or get_origin(extra) is not dict:
                    return None
                current = get_args(extra)[1]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list:
            current = get_args(current)[0]
        else:
            return None
    return (owner, _unwrap(current)) if owner is not None else None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` as ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def unknown_keys(model: BaseModel, where: str = "") -> list[str]:
    """Every key under ``model`` that no field names (a shape out of date with its writer)."""
    found: list[str] = []
    extra = model.__pydantic_extra__ or {}
    typed_extra = isinstance(model, PositionBySlice | LcWinRates)
    if not typed_extra:
        found += [f"{where}/{key}" for key in extra]
    for name in type(model).model_fields:
        found += _unknown_in(getattr(model, name), f"{where}/{name}")
    if typed_extra:
        for key, value in extra.items():
            found += _unknown_in(value, f"{where}/{key}")
    return found


def _unknown_in(value: Any, where: str) -> list[str]:
    if isinstance(value, BaseModel):
        return unknown_keys(value, where)
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _unknown_in(v, f"{where}/{key}")]
    if isinstance(value, list | tuple):
        return [k for i, v in enumerate(value) for k in _unknown_in(v, f"{where}[{i}]")]
    return []


# --- a judge comparison (computed on request, never stored) --------------------------------------
#
# What :func:`analysis.compare.judges_compare` writes (its figures by
# :func:`analysis.metrics.drift.drift_figures`) and reads back with :func:`comparison_parse`:
# the page, ``judge_compare``, the export manifest and the gate read these attributes; the API
# and ``judge_compare --format json`` answer with ``as_json()``, the written JSON again.


class ComparedJudge(Shape):
    """One of the two judges, as the comparison names it."""

    id: int
    name: str
    version: int
    label: str
    model_id: str = ""
    fingerprint: str = ""


class ConfigChanges(Shape):
    """Which hashed parts of the two configurations differ (:func:`analysis.compare.
    config_changes`): ``fields`` None when a configuration was not recorded."""

    fields: list[str] | None = None
    what: str = ""
    only: bool = False


class FlipMatrix(Shape):
    """Counts of (first, second) verdicts; rows are the first judge's."""

    labels: list[str] = Field(default_factory=list)
    counts: list[list[int]] = Field(default_factory=list)


class DriftSettings(Shape):
    n_boot: int = 0
    level: Number = 0.95
    seed: int = 0
    alpha: Number = 0.05
    min_n: int = 0
    slices: list[str] = Field(default_factory=list)


class McNemar(Shape):
    """b = only the first judge right, c = only the second."""

    b: int = 0
    c: int = 0
    n: int = 0
    statistic: Number | None = None
    p_value: Number = 1.0
    exact: bool = True


class AgreementDelta(Shape):
    """One coefficient for both judges and the paired change ``second - first``."""

    first: Result
    second: Result
    delta: Result


class AgreementChange(Shape):
    n: int = 0
    kinds: dict[str, AgreementDelta] = Field(default_factory=dict)
    mcnemar: McNemar = Field(default_factory=McNemar)


class SliceTest(Shape):
    """One slice value's flip rate and agreement change, tested (``drift.slice_tests``)."""

    slice: str
    value: str
    n: int = 0
    flips: int = 0
    flip_rate: Number | None = None
    rest_flip_rate: Number | None = None
    p_flip: Number | None = None
    q_flip: Number | None = None
    tested: bool = False
    # with people's verdicts
    labelled: int | None = None
    agreement_first: Number | None = None
    agreement_second: Number | None = None
    agreement_delta: Number | None = None
    p_agreement: Number | None = None
    q_agreement: Number | None = None
    shifted: bool = False
    why: list[str] = Field(default_factory=list)
    flip_rate_ci: tuple[Number, Number] | None = None
    clusters: int | None = None


class JudgeOrders(Shape):
    """One judge in each presentation order: position consistency, and with people's
    verdicts agreement in both orders and in each."""

    position_consistency: PositionBySlice = Field(default_factory=PositionBySlice)
    agreement: OrderAgreement | None = None


class Orders(Shape):
    first: JudgeOrders | None = None
    second: JudgeOrders | None = None


class DriftFigures(Shape):
    """:func:`analysis.metrics.drift.drift_figures`; ``agreement`` only with people."""

    n: int = 0
    flip_rate: Result = Field(default_factory=Result)
    flip_matrix: FlipMatrix = Field(default_factory=FlipMatrix)
    settings: DriftSettings = Field(default_factory=DriftSettings)
    agreement: AgreementChange | None = None
    slices: list[SliceTest] = Field(default_factory=list)
    shifted: int = 0
    orders: Orders = Field(default_factory=Orders)


class Comparison(Shape):
    """Two judges on the same pairs: ``second`` (v2) against the baseline ``first`` (v1)."""

    subject: Subject = Field(default_factory=Subject)
    first: ComparedJudge
    second: ComparedJudge
    people: str = ""
    pairs: int = 0
    pairs_compared: int = 0
    pairs_labelled: int = 0
    length_unit: str = ""
    length_cuts: list[Number] = Field(default_factory=list)
    slice_names: dict[str, str] = Field(default_factory=dict)
    changes: ConfigChanges = Field(default_factory=ConfigChanges)
    figures: DriftFigures = Field(default_factory=DriftFigures)

    def judge(self, which: str) -> ComparedJudge:
        """``first`` or ``second`` by name."""
        if which not in ("first", "second"):
            raise ValueError(f"no judge {which!r} in a comparison")
        judge: ComparedJudge = getattr(self, which)
        return judge

    def slice_name(self, row: SliceTest) -> str:
        """``Category: coding``: the slice's name as pages show it, and the value."""
        return f"{self.slice_names.get(row.slice, row.slice)}: {row.value}"


def comparison_parse(data: Any) -> Comparison:
    """The JSON :func:`analysis.compare.judges_compare` writes, as :class:`Comparison`."""
    return Comparison.model_validate(data)
