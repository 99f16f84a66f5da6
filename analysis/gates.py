"""Release gates: rules an audit's figures must meet before a judge version ships.

- :func:`gate_set` stores a gate for an audit, pinned to a judge version's fingerprint (the
  latest gate is the one in force);
- :func:`gate_evaluate` checks a gate, or rules given at the call, against the audit's latest
  snapshot (recomputed first when stale): PASS, FAIL or INCONCLUSIVE, with the reason;
- :func:`gate_check_record` checks the gate's rules for another version of its judge (v2)
  and records the answer pinned to v2's fingerprint (a :class:`GateCheck`; the gate in force
  does not move);
- :func:`gate_json` is the verdict as the API and ``manage.py gate --format json`` give it.

The rule language and its evaluation are pure (:mod:`analysis.metrics.gate`); the figures a
rule may name come from the snapshot through :func:`analysis.studies.gate_figures`.

Drift rules (``flip_rate``, ``delta.<coefficient>``, see :data:`DRIFT_METRICS`) compare two
judges: the gate's pinned judge is the *candidate* (v2) and the *baseline* (v1) is the judge
passed as ``baseline`` (``manage.py gate --baseline``, the API's ``baseline``) or, by
default, the newest earlier version of the pinned judge's name on the audit. Their figures
are computed on request by :func:`analysis.compare.judges_compare` on the audit's items; with
no baseline a drift rule is INCONCLUSIVE ("no baseline judge").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from analysis import compare, selectors
from analysis.metrics import drift
from analysis.metrics.gate import GateResult, GateRuleError, evaluate_gate, parse_rules
from analysis.models import GateCheck, MetricSnapshot, ReleaseGate
from analysis.services import snapshot_compute, snapshot_is_current, snapshot_readable
from analysis.studies import GATE_METRICS, gate_figures
from annotation.models import Audit
from judges.models import Judge


@dataclass(frozen=True)
class GateOutcome:
    """A gate's verdict on an audit and where its figures came from."""

    result: GateResult
    judge: Judge | None  # the judge version whose figures were read
    snapshot: MetricSnapshot | None
    rules: tuple[str, ...]
    baseline: Judge | None = None  # the drift rules' v1, when any rule is about drift


DRIFT_METRICS: dict[str, str] = {
    "flip_rate": "share of pairs whose verdict differs from the baseline judge's "
    "(slices: category=..., response_class=..., length_bucket=..., stratum=...)",
    **{
        f"delta.{kind}": f"paired change in {kind} with the people's majority against the "
        "baseline judge (write delta(" + kind + "))"
        for kind in drift.AGREEMENT_KINDS
    },
}


def drift_rules(rules: Sequence[str]) -> bool:
    """Does any rule name a drift figure (and so need a baseline judge)?"""
    parsed = parse_rules(list(rules), known_metrics=[*GATE_METRICS, *DRIFT_METRICS])
    return any(rule.metric in DRIFT_METRICS for rule in parsed)


def drift_baseline(audit: Audit, candidate: Judge) -> Judge | None:
    """The default baseline of a drift rule: the newest earlier version of the candidate's
    name among the audit's judges."""
    earlier = [
        j
        for j in selectors.audit_judges(audit)
        if j.name == candidate.name and j.version < candidate.version
    ]
    return max(earlier, key=lambda j: (j.version, j.pk), default=None)


def gate_rules_parse(rules: Sequence[str]) -> list[str]:
    """The rules, stripped and checked; raises ``GateRuleError`` naming the rule and field."""
    cleaned = [r.strip() for r in rules if r and r.strip() and not r.strip().startswith("#")]
    parse_rules(cleaned, known_metrics=[*GATE_METRICS, *DRIFT_METRICS])
    return cleaned


def gate_set(*, audit: Audit, judge: Judge, rules: Sequence[str], created_by: Any) -> ReleaseGate:
    """Write a new gate for ``audit`` (the latest gate is the one in force).

    The gate is pinned to ``judge``'s fingerprint: figures of another version of that judge
    make it INCONCLUSIVE. Raises ``ValidationError`` (fields ``rules``, ``judge``).
    """
    try:
        cleaned = gate_rules_parse(rules)
    except GateRuleError as exc:
        raise ValidationError({"rules": str(exc)}) from None
    if judge.pk not in {j.pk for j in selectors.audit_judges(audit)}:
        raise ValidationError({"judge": f"{judge} is not one of this audit's judges"})
    with transaction.atomic():
        return ReleaseGate.objects.create(
            audit=audit,
            judge=judge,
            judge_fingerprint=judge.fingerprint,
            rules=cleaned,
            created_by=created_by,
        )


def gate_latest(audit: Audit) -> ReleaseGate | None:
    return ReleaseGate.objects.filter(audit=audit).select_related("judge").first()


def _gate_judge(snapshot: MetricSnapshot | None, pinned: Judge) -> Judge | None:
    """The newest version of the pinned judge (same name) that the snapshot has figures of."""
    if snapshot is None:
        return None
    ids = [j.judge_id for j in snapshot.typed.raters.judges]
    return Judge.objects.filter(pk__in=ids, name=pinned.name).order_by("-version", "-pk").first()


def gate_evaluate(
    *,
    audit: Audit,
    gate: ReleaseGate | None = None,
    rules: Sequence[str] | None = None,
    judge: Judge | None = None,
    refresh: bool = True,
    baseline: Judge | None = None,
) -> GateOutcome:
    """Check a gate against the audit's latest figures: PASS, FAIL or INCONCLUSIVE.

    By default the audit's gate in force; ``rules`` and ``judge`` check other rules without
    storing them (as a CI pipeline keeping its rules in its own repository would). With
    ``refresh`` a stale snapshot is recomputed first, so the answer counts every label.
    Drift rules compare the judge read with ``baseline`` (default: :func:`drift_baseline`).
    Raises ``ValueError`` when there is no gate, ``GateRuleError`` for a rule it cannot read.
    """
    if rules is None:
        gate = gate or gate_latest(audit)
        if gate is None:
            raise ValueError(f"audit {audit.pk} has no release gate: write one first")
        rules, pinned, fingerprint = gate.rules, gate.judge, gate.judge_fingerprint
    else:
        if judge is None:
            raise ValueError("checking rules needs the judge they are about")
        pinned, fingerprint = judge, judge.fingerprint
    cleaned = gate_rules_parse(rules)
    snapshot = selectors.snapshot_latest(audit=audit)
    stale = snapshot is not None and snapshot.stale_reason is not None
    if refresh and (stale or not snapshot_is_current(snapshot, audit=audit)):
        snapshot = snapshot_compute(audit=audit)
    elif stale:  # stored by older code: no figures until the fresh snapshot asked for is in
        snapshot, _ = snapshot_readable(snapshot, audit=audit)
    used = _gate_judge(snapshot, pinned)
    figures = gate_figures(snapshot.typed, f"j:{used.pk}") if snapshot and used else {}
    compared_with = None
    if used is not None and drift_rules(cleaned):
        compared_with = baseline or drift_baseline(audit, used)
        if compared_with is not None and compared_with.pk != used.pk:
            compared = compare.judges_compare(first=compared_with, second=used, audit=audit)
            figures = {**figures, **drift.gate_figures(compared.figures.as_json())}
        else:
            compared_with = None
            figures = {
                **figures,
                **{name: {"value": None, "reason": "no baseline judge"} for name in DRIFT_METRICS},
            }
    result = evaluate_gate(
        cleaned,
        figures,
        fingerprint=used.fingerprint if used else None,
        pinned_fingerprint=fingerprint,
    )
    return GateOutcome(
        result=result, judge=used, snapshot=snapshot, rules=tuple(cleaned), baseline=compared_with
    )


def gate_json(audit: Audit, outcome: GateOutcome, gate: ReleaseGate | None) -> dict[str, Any]:
    """The JSON of a gate's verdict (the API's and ``manage.py gate --format json``'s)."""
    result = outcome.result.as_dict()
    judge = outcome.judge
    return {
        "audit": audit.pk,
        "gate": gate.pk if gate is not None else None,
        "status": result["status"],
        "exit_code": outcome.result.exit_code,
        "reason": result["reason"],
        "labels_needed": result["labels_needed"],
        "judge": {"id": judge.pk, "name": judge.name, "version": judge.version}
        if judge is not None
        else None,
        "pinned_fingerprint": gate.judge_fingerprint if gate is not None else None,
        "fingerprint": result["fingerprint"],
        "snapshot": outcome.snapshot.pk if outcome.snapshot is not None else None,
        "rules": result["rules"],
    } | (
        {"baseline": {"id": b.pk, "name": b.name, "version": b.version}}
        if (b := outcome.baseline) is not None
        else {}
    )


def gate_check_record(
    *,
    audit: Audit,
    candidate: Judge,
    created_by: Any,
    baseline: Judge | None = None,
    gate: ReleaseGate | None = None,
) -> GateCheck:
    """Check the rules of the gate in force (or ``gate``) for ``candidate`` and record it.

    The rules are read for the candidate's own figures (so the pin to v1's fingerprint does
    not make them INCONCLUSIVE), drift rules against ``baseline`` (default: the gate's pinned
    judge when it is an earlier version, else :func:`drift_baseline`). The row is pinned to
    the candidate's fingerprint. Raises ``ValidationError`` (``gate``, ``judge``).
    """
    gate = gate or gate_latest(audit)
    if gate is None:
        raise ValidationError({"gate": f"audit {audit.pk} has no release gate: write one first"})
    if candidate.pk not in {j.pk for j in selectors.audit_judges(audit)}:
        raise ValidationError({"judge": f"{candidate} is not one of this audit's judges"})
    if baseline is None and gate.judge.pk != candidate.pk and gate.judge.name == candidate.name:
        baseline = gate.judge if gate.judge.version < candidate.version else None
    outcome = gate_evaluate(audit=audit, rules=gate.rules, judge=candidate, baseline=baseline)
    answer = gate_json(audit, outcome, None) | {
        "gate": gate.pk,
        "pinned_fingerprint": candidate.fingerprint,
    }
    with transaction.atomic():
        return GateCheck.objects.create(
            gate=gate,
            judge=candidate,
            judge_fingerprint=candidate.fingerprint,
            baseline=outcome.baseline,
            status=answer["status"],
            result=answer,
            created_by=created_by,
        )


def gate_statuses(audit: Audit) -> dict[str, str]:
    """The audit's gate in force, checked against the latest snapshot (never recomputed), as
    ``{"j:<judge id>": status}`` for the judge version it checked; empty without a gate or
    when its rules cannot be checked."""
    gate = gate_latest(audit)
    if gate is None:
        return {}
    try:
        outcome = gate_evaluate(audit=audit, gate=gate, refresh=False)
    except (GateRuleError, ValueError):
        return {}
    return {f"j:{outcome.judge.pk}": outcome.result.status} if outcome.judge else {}
