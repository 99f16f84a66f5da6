"""The refusal instrument in the report: how the classifier's classes compare with people's,
and how much that moves the refusal gap (issue 11 items 4 and 5; docs/refusal-classifier.md,
"The instrument in the report").

Three figures, for an audit or a dataset:

- **Confusion matrix**: people's final class of a response (a lead's class adjudication, else
  the annotators' majority; `annotation.selectors.final_response_classes`) against the
  classifier's class, rows = people, columns = classifier. Each row carries the share the
  classifier got right with a Wilson interval (Wilson 1927, checked against statsmodels'
  ``proportion_confint(method="wilson")``), and so does the binary "did it decline?" view.
- **The refusal gap twice**: each judge's moderation gap (EthRef x judge,
  :func:`analysis.metrics.refusal.moderation_gap`, the report's own function) on the same
  pairs, once with the classifier's classes and once with people's classes where people gave
  one (the classifier's elsewhere), so a lead sees how much the instrument moves the headline.
- **What could misclassification do?** The classifier's name and fingerprint, its worst
  held-out accuracy (``judges/refusal/heldout.json``) and a sensitivity bound on the gap: the
  expected number of misclassified responses, m = round((1 - worst held-out accuracy) x
  responses), taken among the classifier's least sure responses (lowest top-class
  probability, people-classed ones excluded), each moved to its runner-up class when that
  moves the gap in the adverse direction (greedy, one response at a time; see the docs for
  why this and not a Rogan-Gladen correction).

Pure functions take DataFrames (``instrument_compute``); ``instrument_inputs`` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis import selectors as analysis_selectors
from analysis.metrics.outcomes import json_number, result_json
from analysis.metrics.position import wilson_interval
from analysis.metrics.refusal import (
    CLASS_TERMS,
    ETHICAL_REFUSAL,
    JUDGE,
    RESPONSE_CLASSES,
    TECHNICAL_REFUSAL,
    gap_design,
    moderation_gap,
    response_sides,
)
from annotation import selectors as annotation_selectors
from annotation.models import Audit, AuditItem
from corpus.models import Dataset, Pair
from judges.models import ClassificationRun, ResponseClassification

HUMAN: Final = "human"
DECLINED: Final = frozenset({ETHICAL_REFUSAL, TECHNICAL_REFUSAL})
GAP_CLASS: Final = ETHICAL_REFUSAL  # the headline: Pasch's ethical-refusal gap
HELDOUT_JSON: Final = Path(__file__).resolve().parent.parent / "judges/refusal/heldout.json"
MAX_FLIPS: Final = 2000  # the sensitivity search refits once per candidate: a ceiling


# --- confusion matrix ------------------------------------------------------------------------


def confusion(
    machine: Sequence[str], people: Sequence[str], *, level: float = 0.95
) -> dict[str, Any]:
    """Counts of (people's class, classifier's class) over the same responses, with the share
    of each people-class row the classifier got right and its Wilson interval, and the binary
    "did it decline?" agreement."""
    if len(machine) != len(people):
        raise ValueError(f"{len(machine)} classifier classes but {len(people)} people's classes")
    for what, values in (("classifier", machine), ("people", people)):
        unknown = sorted(set(values) - set(RESPONSE_CLASSES))
        if unknown:
            raise ValueError(f"{what}: unknown class {unknown[0]!r}")
    index = {name: i for i, name in enumerate(RESPONSE_CLASSES)}
    counts = np.zeros((len(RESPONSE_CLASSES), len(RESPONSE_CLASSES)), dtype=int)
    for ours, theirs in zip(machine, people, strict=True):
        counts[index[theirs], index[ours]] += 1
    rows = []
    for name in RESPONSE_CLASSES:
        i = index[name]
        n = int(counts[i].sum())
        right = int(counts[i, i])
        ci = wilson_interval(right, n, level) if n else None
        rows.append(
            {
                "people": name,
                "counts": [int(v) for v in counts[i]],
                "n": n,
                "correct": right,
                "share": json_number(right / n) if n else None,
                "ci": [json_number(ci[0]), json_number(ci[1])] if ci else None,
            }
        )
    declined_machine = np.array([c in DECLINED for c in machine], dtype=bool)
    declined_people = np.array([c in DECLINED for c in people], dtype=bool)
    n = len(machine)
    agree = int((declined_machine == declined_people).sum())
    ci = wilson_interval(agree, n, level) if n else None
    total_right = int(np.trace(counts))
    overall = wilson_interval(total_right, n, level) if n else None
    return {
        "classes": list(RESPONSE_CLASSES),
        "rows": rows,
        "n": n,
        "level": level,
        "accuracy": {
            "correct": total_right,
            "share": json_number(total_right / n) if n else None,
            "ci": [json_number(overall[0]), json_number(overall[1])] if overall else None,
        },
        "declined": {
            "correct": agree,
            "share": json_number(agree / n) if n else None,
            "ci": [json_number(ci[0]), json_number(ci[1])] if ci else None,
        },
    }


# --- the gap with either set of classes ------------------------------------------------------


def with_people_classes(pairs: pd.DataFrame, people: Mapping[int, str]) -> pd.DataFrame:
    """``pairs`` (``response_a``, ``response_b``, ``class_a``, ``class_b``) with each class
    replaced by people's class of that response where people gave one."""
    out = pairs.copy()
    for side in ("a", "b"):
        found = out[f"response_{side}"].map(people)
        out[f"class_{side}"] = found.where(found.notna(), out[f"class_{side}"])
    return out


def gap_of(
    pairs: pd.DataFrame, verdicts: pd.DataFrame, *, judge: Hashable, level: float = 0.95
) -> dict[str, Any]:
    """The judge's ethical-refusal moderation gap against the human majority on these pairs
    (:func:`moderation_gap`, as the report computes it), as JSON."""
    sides = response_sides(_pair_columns(pairs), verdicts)
    if not (sides["rater"].eq(HUMAN).any() and sides["rater"].eq(judge).any()):
        return {"value": None, "reason": "no human and judge verdicts on the same pairs", "n": 0}
    fit = moderation_gap(sides, human=HUMAN, judge=judge, level=level)
    return result_json(fit.gaps[GAP_CLASS])


def _pair_columns(pairs: pd.DataFrame) -> pd.DataFrame:
    columns = ["pair_id", "class_a", "class_b", "tokens_a", "tokens_b"]
    if {"sim_a", "sim_b"} <= set(pairs.columns) and pairs[["sim_a", "sim_b"]].notna().all().all():
        columns += ["sim_a", "sim_b"]
    return pairs[columns]


class _Design:
    """The gap's design (:func:`gap_design`, as :func:`moderation_gap` builds it) kept as a
    matrix, so the sensitivity search can change one response's class dummies and refit the
    point estimate (least squares through X'X and X'y) in microseconds."""

    def __init__(self, pairs: pd.DataFrame, verdicts: pd.DataFrame, judge: Hashable) -> None:
        sides = response_sides(_pair_columns(pairs), verdicts)
        inputs = gap_design(sides, human=HUMAN, judge=judge)
        self.columns = {name: i for i, name in enumerate(inputs.design.columns)}
        self.x = inputs.design.to_numpy(dtype=float)
        self.y = np.asarray(inputs.y, dtype=float)
        rows = inputs.rows.reset_index(drop=True)
        self.is_judge = rows["rater"].eq(judge).to_numpy(dtype=float)
        self.where: dict[tuple[Any, str], list[int]] = {}
        for index, key in enumerate(zip(rows["pair_id"], rows["side"], strict=True)):
            self.where.setdefault(key, []).append(index)
        self.term = f"{JUDGE}:{CLASS_TERMS[GAP_CLASS]}"
        # The normal equations: a flip changes a few rows, so each refit is a small update.
        self.xtx = self.x.T @ self.x
        self.xty = self.x.T @ self.y

    def _solve(self, xtx: np.ndarray, xty: np.ndarray) -> float | None:
        if self.term not in self.columns:
            return None
        coefficients, *_ = np.linalg.lstsq(xtx, xty, rcond=None)
        return float(coefficients[self.columns[self.term]])

    def gap(self) -> float | None:
        return self._solve(self.xtx, self.xty)

    def moved(self, pair_id: Any, side: str, new_class: str) -> float | None:
        """The gap's point estimate with one response (pair, side) in `new_class`; None when
        the response has no rows here or its new class has no column in this design. Only
        that response's rows change, so X'X and X'y are updated by those rows alone."""
        rows = self.where.get((pair_id, side))
        if not rows:
            return None
        before = self.x[rows]
        after = before.copy()
        for response_class, term in CLASS_TERMS.items():
            value = 1.0 if new_class == response_class else 0.0
            if term not in self.columns:
                if value:
                    return None
                continue
            after[:, self.columns[term]] = value
            after[:, self.columns[f"{JUDGE}:{term}"]] = value * self.is_judge[rows]
        y = self.y[rows]
        xtx = self.xtx - before.T @ before + after.T @ after
        xty = self.xty - before.T @ y + after.T @ y
        return self._solve(xtx, xty)


# --- sensitivity to misclassification --------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A response the classifier might have got wrong: its confidence and runner-up class."""

    response_id: int
    confidence: float  # probability of the classifier's top class
    runner_up: str


def expected_misclassified(n_responses: int, worst_accuracy: float | None) -> int:
    """m = round((1 - worst held-out accuracy) x responses): how many of these responses
    the classifier can be expected to get wrong on a model it never saw."""
    if worst_accuracy is None or n_responses <= 0:
        return 0
    return round((1.0 - worst_accuracy) * n_responses)


def sensitivity_bound(
    pairs: pd.DataFrame,
    verdicts: pd.DataFrame,
    *,
    judge: Hashable,
    candidates: Iterable[Candidate],
    flips: int,
    level: float = 0.95,
) -> dict[str, Any]:
    """The gap recomputed with the `flips` least sure responses moved to their runner-up
    class, each only when that moves the gap in the adverse direction: once pushing the gap
    down (``low``) and once up (``high``). Greedy: each candidate's effect is measured alone
    (one refit per candidate), then all the candidates that push one way are flipped
    together and the gap refitted with :func:`moderation_gap` (its interval comes with it).
    """
    place = {
        **{r: (p, "A") for p, r in zip(pairs["pair_id"], pairs["response_a"], strict=True)},
        **{r: (p, "B") for p, r in zip(pairs["pair_id"], pairs["response_b"], strict=True)},
    }
    chosen = sorted(
        (c for c in candidates if c.response_id in place),
        key=lambda c: (c.confidence, c.response_id),
    )[: max(0, min(flips, MAX_FLIPS))]
    design = _Design(pairs, verdicts, judge)
    base = design.gap()
    out: dict[str, Any] = {
        "flips": len(chosen),
        "asked": flips,
        "gap": json_number(base),
        "low": None,
        "high": None,
        "up": 0,
        "down": 0,
    }
    if base is None:
        out["reason"] = "the gap is not estimable on these pairs"
        return out
    up: dict[int, str] = {}
    down: dict[int, str] = {}
    for candidate in chosen:
        moved = design.moved(*place[candidate.response_id], candidate.runner_up)
        if moved is None:
            continue
        if moved > base + 1e-12:
            up[candidate.response_id] = candidate.runner_up
        elif moved < base - 1e-12:
            down[candidate.response_id] = candidate.runner_up
    for name, changes in (("high", up), ("low", down)):
        if not changes:
            out[name] = {"value": json_number(base), "ci": None, "flipped": 0}
            continue
        sides = response_sides(_pair_columns(_reclassed(pairs, changes)), verdicts)
        fit = moderation_gap(sides, human=HUMAN, judge=judge, level=level)
        result = result_json(fit.gaps[GAP_CLASS])
        out[name] = {"value": result["value"], "ci": result.get("ci"), "flipped": len(changes)}
    out["up"], out["down"] = len(up), len(down)
    return out


def _reclassed(pairs: pd.DataFrame, changes: Mapping[int, str]) -> pd.DataFrame:
    return with_people_classes(pairs, changes)


# --- held-out figures and the classifier's name ----------------------------------------------


@lru_cache(maxsize=1)
def heldout_figures(path: str = str(HELDOUT_JSON)) -> dict[str, Any]:
    """The classifier's held-out evaluation (``python -m judges.refusal.evaluate``): its name,
    head and the worst held-out model or set on "did it decline?"."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    declined = data.get("declined_or_not", {})
    units = [*declined.get("held_out_models", []), *declined.get("held_out_sets", [])]
    worst = min(units, key=lambda unit: unit.get("accuracy", 1.0), default=None)
    return {
        "classifier": data.get("classifier"),
        "head_sha256": data.get("head_sha256"),
        "command": data.get("command"),
        "worst": (
            {
                "unit": worst.get("unit"),
                "accuracy": worst.get("accuracy"),
                "ci": worst.get("ci95"),
                "n": worst.get("n"),
                "string_match_accuracy": worst.get("string_match_accuracy"),
            }
            if worst
            else None
        ),
    }


# --- the whole section -----------------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentInputs:
    """``pairs``: one row per pair with ``pair_id``, ``response_a``/``response_b`` (ids),
    ``class_a``/``class_b`` (the classifier's), ``tokens_a``/``tokens_b`` and optionally
    ``sim_a``/``sim_b``. ``verdicts``: ``pair_id``, ``rater`` (``human`` or a judge),
    ``verdict``. ``people``: response id -> people's final class. ``candidates``: the
    classifier's confidence and runner-up class per response."""

    pairs: pd.DataFrame
    verdicts: pd.DataFrame
    judges: Mapping[str, str]
    people: Mapping[int, str]
    candidates: Sequence[Candidate] = ()
    classifier: str | None = None
    unresolved: int = 0  # responses whose annotators disagree and no lead decided
    heldout: Mapping[str, Any] = field(default_factory=dict)
    # What a classification run recorded of the classifier: kind and head (may be empty).
    identity: Mapping[str, Any] = field(default_factory=dict)


def instrument_compute(inputs: InstrumentInputs, *, level: float = 0.95) -> dict[str, Any]:
    """Every figure of the section as JSON (see the module docstring)."""
    pairs = inputs.pairs
    classified = pairs[pairs["class_a"].notna() & pairs["class_b"].notna()]
    classified = classified[classified["tokens_a"].notna() & classified["tokens_b"].notna()]
    machine_of: dict[int, str] = {}
    for side in ("a", "b"):
        ids, classes = classified[f"response_{side}"], classified[f"class_{side}"]
        machine_of.update(zip(ids, classes, strict=True))
    both = sorted(r for r in inputs.people if r in machine_of)
    worst = (inputs.heldout.get("worst") or {}) if inputs.heldout else {}
    head = inputs.identity.get("head_sha256")
    out: dict[str, Any] = {
        "classifier": inputs.classifier,
        "classifier_kind": inputs.identity.get("kind"),
        # Do the held-out figures describe this classifier? Only when its head is the one
        # they were measured on; None when no run recorded which classifier it was.
        "heldout_applies": None if not head else head == inputs.heldout.get("head_sha256"),
        "heldout": dict(inputs.heldout),
        "people_classes": len(inputs.people),
        "unresolved": inputs.unresolved,
        "confusion": confusion(
            [machine_of[r] for r in both], [inputs.people[r] for r in both], level=level
        ),
        "pairs": len(classified),
        "gaps": {},
    }
    if classified.empty:
        out["reason"] = "no classified pairs"
        return out
    corrected = with_people_classes(classified, inputs.people)
    n_responses = 2 * len(classified)
    flips = expected_misclassified(n_responses, worst.get("accuracy"))
    unsure = [c for c in inputs.candidates if c.response_id not in inputs.people]
    verdicts = inputs.verdicts[inputs.verdicts["pair_id"].isin(classified["pair_id"])]
    out["expected_misclassified"] = flips
    out["responses"] = n_responses
    for judge, name in inputs.judges.items():
        row: dict[str, Any] = {"name": name}
        if not (verdicts["rater"].eq(HUMAN).any() and verdicts["rater"].eq(judge).any()):
            row["reason"] = "no human and judge verdicts on the same pairs"
            out["gaps"][judge] = row
            continue
        try:
            row["classifier"] = gap_of(classified, verdicts, judge=judge, level=level)
            row["people"] = gap_of(corrected, verdicts, judge=judge, level=level)
            row["sensitivity"] = sensitivity_bound(
                classified, verdicts, judge=judge, candidates=unsure, flips=flips, level=level
            )
        except ValueError as exc:  # data the model cannot take: say why, keep the others
            row = {"name": name, "reason": str(exc)}
        out["gaps"][judge] = row
    return out


# --- reading the inputs ----------------------------------------------------------------------


def people_classes(
    *, audit: Audit | None = None, dataset: Dataset | None = None
) -> tuple[dict[int, str], int]:
    """Response id -> people's final class, and how many responses are unresolved. For a
    dataset, every audit of it in creation order (a later audit's class of the same response
    replaces an earlier one)."""
    if (audit is None) == (dataset is None):
        raise ValueError("give an audit or a dataset")
    audits = [audit] if audit is not None else list(Audit.objects.filter(dataset=dataset))
    audits.sort(key=lambda a: (a.created_at, a.pk))
    found: dict[int, str] = {}
    unresolved: set[int] = set()
    for one in audits:
        finals = annotation_selectors.final_response_classes(one)
        if not finals:
            continue
        item_ids = {item_id for item_id, _ in finals}
        responses = {
            item_id: (a, b)
            for item_id, a, b in AuditItem.objects.filter(pk__in=item_ids).values_list(
                "pk", "pair__response_a_id", "pair__response_b_id"
            )
        }
        for (item_id, side), (value, _source) in finals.items():
            response = responses[item_id][0 if side == "A" else 1]
            if value is None:
                unresolved.add(response)
                found.pop(response, None)
            else:
                found[response] = value
                unresolved.discard(response)
    return found, len(unresolved)


def _candidates(response_ids: Iterable[int], classifier: str | None) -> list[Candidate]:
    if classifier is None:
        return []
    rows = ResponseClassification.objects.filter(
        response_id__in=list(response_ids), classifier=classifier
    ).values_list("response_id", "label", "score", "scores")
    found = []
    for response_id, label, score, scores in rows:
        others = {k: v for k, v in (scores or {}).items() if k != label and k in RESPONSE_CLASSES}
        if not others:
            continue
        runner_up = max(sorted(others), key=lambda k: others[k])
        found.append(Candidate(response_id, float(score), runner_up))
    return found


def instrument_inputs(
    *, audit: Audit | None = None, dataset: Dataset | None = None
) -> InstrumentInputs:
    """The section's inputs for an audit (its items, the annotators' majority) or a dataset
    (every pair, the imported votes): what the report's refusal gap reads, plus people's
    classes and the classifier's confidence."""
    if (audit is None) == (dataset is None):
        raise ValueError("give an audit or a dataset")
    if audit is not None:
        table = analysis_selectors.audit_votes(audit)
        pairs_qs = Pair.objects.filter(audit_items__audit=audit)
        dataset_id = audit.dataset_id
    else:
        assert dataset is not None
        table = analysis_selectors.dataset_votes(dataset)
        pairs_qs = Pair.objects.filter(dataset=dataset)
        dataset_id = dataset.pk
    votes = table.votes[table.votes["kind"].isin(["majority", "judge"])]
    verdicts = (
        votes[["item", "rater", "value"]]
        .replace({"rater": {analysis_selectors.MAJORITY: HUMAN}})
        .rename(columns={"item": "pair_id", "value": "verdict"})
    )
    details = analysis_selectors.pair_details(pairs_qs, dataset_id)
    frame = details.frame[details.frame["pair_id"].isin(table.items["item"])]
    responses_of = {
        pk: (a, b)
        for pk, a, b in Pair.objects.filter(pk__in=list(frame["pair_id"])).values_list(
            "pk", "response_a_id", "response_b_id"
        )
    }
    frame = frame.assign(
        response_a=frame["pair_id"].map(lambda pk: responses_of[pk][0]),
        response_b=frame["pair_id"].map(lambda pk: responses_of[pk][1]),
    )
    people, unresolved = people_classes(audit=audit, dataset=dataset)
    responses = set(frame["response_a"]) | set(frame["response_b"])
    return InstrumentInputs(
        pairs=frame.reset_index(drop=True),
        verdicts=verdicts.reset_index(drop=True),
        judges={rater: info.label for rater, info in table.judges.items()},
        people={r: c for r, c in people.items() if r in responses},
        candidates=_candidates(responses, details.classifier),
        classifier=details.classifier,
        unresolved=unresolved,
        heldout=heldout_figures(),
        identity=classifier_identity(details.classifier),
    )


def classifier_identity(fingerprint: str | None) -> dict[str, Any]:
    """The kind and head of the classifier with this fingerprint, as the latest
    classification run that used it recorded them (empty when none did)."""
    if fingerprint is None:
        return {}
    counts = (
        ClassificationRun.objects.filter(classifier=fingerprint)
        .order_by("-created_at", "-pk")
        .values_list("counts", flat=True)
        .first()
    ) or {}
    if not counts.get("classifier_kind"):
        return {}
    return {"kind": counts["classifier_kind"], "head_sha256": counts.get("classifier_head_sha256")}


# --- export: people's classes per pair -------------------------------------------------------


def people_classes_by_pair(
    *, audit: Audit | None = None, dataset: Dataset | None = None
) -> pd.DataFrame:
    """One row per pair that people classed at least one response of: ``pair_id``,
    ``people_class_a`` and ``people_class_b`` (people's final class of each response, None
    where people gave none or disagree without a lead's decision). For the calibration
    export's columns beside the classifier's ``class_a``/``class_b``."""
    people, _ = people_classes(audit=audit, dataset=dataset)
    pairs = Pair.objects.filter(
        **({"audit_items__audit": audit} if audit is not None else {"dataset": dataset})
    ).values_list("pk", "response_a_id", "response_b_id")
    rows = [
        (pk, people.get(a), people.get(b))
        for pk, a, b in pairs.order_by("pk")
        if a in people or b in people
    ]
    return pd.DataFrame.from_records(
        rows, columns=["pair_id", "people_class_a", "people_class_b"]
    ).astype(object)


# --- for the page ----------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100.0 * float(value):.1f}%"


def _points(result: Mapping[str, Any] | None) -> dict[str, str]:
    """A gap (0-1 scale) in points with its interval, or why it is undefined."""
    result = result or {}
    value = result.get("value")
    if value is None:
        return {"value": "undefined", "ci": "", "reason": str(result.get("reason") or "")}
    ci = result.get("ci")
    text = f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else ""
    return {"value": f"{100 * float(value):+.1f} pts", "ci": text, "reason": ""}


def instrument_model(out: Mapping[str, Any]) -> dict[str, Any]:
    """The section's JSON as the template shows it: percentages and points as text."""
    table = out.get("confusion") or {}
    worst = (out.get("heldout") or {}).get("worst") or {}
    rows = [
        {
            "people": row["people"],
            "counts": row["counts"],
            "n": row["n"],
            "share": _pct(row["share"]),
            "ci": (f"[{_pct(row['ci'][0])}, {_pct(row['ci'][1])}]" if row.get("ci") else ""),
        }
        for row in table.get("rows", [])
    ]
    gaps = []
    for judge, row in (out.get("gaps") or {}).items():
        sensitivity = row.get("sensitivity") or {}
        gaps.append(
            {
                "judge": judge,
                "name": row.get("name", judge),
                "reason": row.get("reason", ""),
                "classifier": _points(row.get("classifier")),
                "people": _points(row.get("people")),
                "low": _points(sensitivity.get("low")),
                "high": _points(sensitivity.get("high")),
                "flips": sensitivity.get("flips", 0),
                "up": sensitivity.get("up", 0),
                "down": sensitivity.get("down", 0),
            }
        )
    accuracy = table.get("accuracy") or {}
    declined = table.get("declined") or {}

    def share(figure: Mapping[str, Any]) -> str:
        ci = figure.get("ci")
        tail = f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else ""
        return _pct(figure.get("share")) + tail

    return {
        "classifier": out.get("classifier"),
        "kind": out.get("classifier_kind"),
        "applies": out.get("heldout_applies"),
        "name": (out.get("heldout") or {}).get("classifier"),
        "head": ((out.get("heldout") or {}).get("head_sha256") or "")[:12],
        "command": (out.get("heldout") or {}).get("command"),
        "worst": {
            "unit": worst.get("unit"),
            "accuracy": _pct(worst.get("accuracy")),
            "ci": (f"[{_pct(worst['ci'][0])}, {_pct(worst['ci'][1])}]" if worst.get("ci") else ""),
        }
        if worst
        else None,
        "classes": table.get("classes", list(RESPONSE_CLASSES)),
        "rows": rows,
        "n": table.get("n", 0),
        "accuracy": share(accuracy),
        "declined": share(declined),
        "people_classes": out.get("people_classes", 0),
        "unresolved": out.get("unresolved", 0),
        "pairs": out.get("pairs", 0),
        "responses": out.get("responses", 0),
        "expected_misclassified": out.get("expected_misclassified", 0),
        "max_flips": MAX_FLIPS,
        "gaps": gaps,
        "reason": out.get("reason", ""),
    }
