"""Model-card section per judge version: what an audit found, ready to paste.

JSON (`model_card`) and Markdown (`model_card_markdown`, through the Django template
`analysis/model_card.md`): what was audited (data, size, strata, annotators), agreement with
intervals against the human ceiling, the response classes of each model's responses with
rates, the refusal gap, position and length bias, and the release gate.

Every figure comes from the audit's latest metric snapshot, read in one place
(`snapshot_facts`) through its typed shape (`analysis.snapshot`). The response classes per
model and the gate are read from their own tables.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, Final

from django.template.loader import render_to_string

from analysis import selectors
from analysis.export import ExportError
from analysis.gates import gate_evaluate, gate_latest
from analysis.models import MetricSnapshot
from analysis.plots import result_text
from analysis.snapshot import Result, Shape
from annotation.models import Audit, AuditItem, Stratum
from corpus.models import Pair
from judges.models import Judge, ResponseClass, ResponseClassification

AGREEMENT = ("percent_agreement", "cohen_kappa")
CLASS_ORDER = [c.value for c in ResponseClass]
STRATA = {str(s.value): str(s.label) for s in Stratum}


def _given(model: Shape | None, name: str) -> Any:
    """A field the snapshot stored, else None (a default is not a stored figure)."""
    return getattr(model, name) if model is not None and name in model.model_fields_set else None


def _result(result: Result | None) -> dict[str, Any]:
    return result.as_json() if result is not None else {**MISSING}


MISSING: Final = {"value": None, "reason": "not in the snapshot"}


def snapshot_facts(snapshot: MetricSnapshot, rater: str) -> dict[str, Any]:
    """What the card needs from a snapshot for one judge (rater id `j:<judge id>`), read
    through the typed snapshot (:mod:`analysis.snapshot`).

    Missing parts become ``{"value": None, "reason": ...}`` results or ``None``, never a
    KeyError.
    """
    metrics = snapshot.typed
    settings, progress = metrics.settings, metrics.progress
    s1 = metrics.figures.S1
    found = s1.judges.get(rater)
    mine = found.vs_humans if found else None
    agreement = {
        name: {
            "judge": _result(getattr(mine, name, None)),
            "ceiling": _result(getattr(s1.ceiling, name)),
        }
        for name in AGREEMENT
    }
    position = metrics.position.judges.get(rater)
    studies = metrics.studies
    refusal = studies.refusal if studies is not None else None
    gaps = refusal.gaps.get(rater) if refusal is not None else None
    style = studies.style if studies is not None else None
    fit = style.sensitivity.get(rater) if style is not None else None
    length = next((r for r in fit.rows if r.feature == "length"), None) if fit else None
    judge = metrics.judge(rater)
    gap_rows = gaps.rows if gaps is not None else []
    return {
        "level": _given(settings, "level"),
        "n_boot": _given(settings, "n_boot"),
        "progress": {
            key: _given(progress, key)
            for key in ("items", "labels", "items_complete", "overlap_k", "adjudicated")
        }
        | {
            "annotators": _given(progress, "annotators"),
            "strata": [s.as_json() for s in progress.strata],
        },
        "judge": judge.as_json() if judge is not None else {},
        "agreement": agreement,
        "refusal_gap": {
            "reason": (_given(refusal, "reason") or _given(gaps, "reason"))
            if not gap_rows
            else None,
            "rows": [
                {
                    "class": row.response_class,
                    "human": row.human.as_json(),
                    "judge": row.judge.as_json(),
                    "gap": row.gap.as_json(),
                }
                for row in gap_rows
            ],
        },
        "position_bias": {
            "method": _given(position, "method"),
            "consistency": _result(_given(position, "consistency")),
            "fairness": _result(_given(position, "fairness")),
            "n": _given(position, "n"),
            "primacy": _given(position, "primacy"),
            "recency": _given(position, "recency"),
        },
        "length_bias": {
            "unit": _given(style, "length_unit"),
            "human": _result(length.human if length else None),
            "judge": _result(length.judge if length else None),
            "net": _result(length.net if length else None),
            "reason": None if length else _given(fit, "reason") or "no length figures",
        },
        "judge_ids": [j.judge_id for j in metrics.raters.judges],
    }


def _classes_by_model(audit: Audit) -> dict[str, Any]:
    """Response classes of each model's responses among the audit's pairs (latest classifier)."""
    pairs = Pair.objects.filter(
        pk__in=AuditItem.objects.sampled().filter(audit=audit).values("pair_id")
    )
    responses: dict[int, str] = {}
    for a, model_a, b, model_b in pairs.values_list(
        "response_a_id", "response_a__model_name", "response_b_id", "response_b__model_name"
    ):
        responses[a], responses[b] = model_a, model_b
    found = ResponseClassification.objects.filter(response_id__in=list(responses))
    classifier = found.order_by("-created_at", "-pk").values_list("classifier", flat=True).first()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    if classifier:
        for response_id, label in found.filter(classifier=classifier).values_list(
            "response_id", "label"
        ):
            counts[responses[response_id]][label] += 1
    totals = Counter(responses.values())
    models = []
    for model in sorted(totals):
        classified = sum(counts[model].values())
        models.append(
            {
                "model": model,
                "responses": totals[model],
                "classified": classified,
                "classes": {
                    label: {
                        "n": counts[model][label],
                        "rate": counts[model][label] / classified if classified else None,
                    }
                    for label in CLASS_ORDER
                },
            }
        )
    return {"classifier": classifier, "models": models}


def _gate(audit: Audit, judge: Judge) -> dict[str, Any]:
    gate = gate_latest(audit)
    if gate is None or gate.judge.name != judge.name:
        return {"status": None, "reason": "no release gate for this judge on this audit"}
    outcome = gate_evaluate(audit=audit, gate=gate, refresh=False)
    result = outcome.result.as_dict()
    return {
        "status": result["status"],
        "reason": result["reason"],
        "pinned_fingerprint": gate.judge_fingerprint,
        "rules": [
            {"rule": r["rule"], "status": r["status"], "reason": r["reason"]}
            for r in result["rules"]
        ],
    }


def model_card(audit: Audit, *, judge: Judge | None = None) -> list[dict[str, Any]]:
    """One card per judge version in the audit's latest snapshot (or only ``judge``'s).

    Raises ExportError when there are no figures yet or the judge has none.
    """
    snapshot = selectors.snapshot_latest(audit=audit)
    if snapshot is None:
        raise ExportError(f"audit {audit.pk} has no figures yet: recompute its report first")
    ids = [pk for pk in snapshot_facts(snapshot, "")["judge_ids"] if pk is not None]
    if judge is not None:
        if judge.pk not in ids:
            raise ExportError(f"judge {judge}: no figures in audit {audit.pk}'s latest snapshot")
        ids = [judge.pk]
    judges = {j.pk: j for j in Judge.objects.filter(pk__in=ids)}
    classes = _classes_by_model(audit)
    dataset_pairs = Pair.objects.filter(dataset_id=audit.dataset_id).count()
    cards = []
    for pk in ids:
        version = judges[pk]
        facts = snapshot_facts(snapshot, f"j:{pk}")
        progress = facts["progress"]
        cards.append(
            {
                "kind": "tribunal-model-card-section",
                "judge": {
                    "name": version.name,
                    "version": version.version,
                    "label": str(version),
                    "model_id": version.model_id,
                    "provider": version.provider,
                    "fingerprint": version.fingerprint,
                    "verdicts": facts["judge"].get("verdicts"),
                    "unparsed": facts["judge"].get("unparsed"),
                },
                "audited": {
                    "dataset": audit.dataset.name,
                    "dataset_pairs": dataset_pairs,
                    "audit": {"id": audit.pk, "name": audit.name, "status": audit.status},
                    **progress,
                },
                "snapshot": {
                    "id": snapshot.pk,
                    "created_at": snapshot.created_at.isoformat(),
                    "label_count": snapshot.label_count,
                    "level": facts["level"],
                    "n_boot": facts["n_boot"],
                },
                "agreement": facts["agreement"],
                "response_classes": classes,
                "refusal_gap": facts["refusal_gap"],
                "position_bias": facts["position_bias"],
                "length_bias": facts["length_bias"],
                "gate": _gate(audit, version),
            }
        )
    return cards


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rate(entry: Mapping[str, Any]) -> str:
    if not entry["n"]:
        return "0"
    return f"{entry['n']} ({100 * entry['rate']:.1f}%)"


def _gap_row(row: Mapping[str, Any]) -> tuple[str, str, str, str]:
    name = (row.get("class") or "").replace("_", " ")
    cells = [result_text(row.get(key)) for key in ("human", "judge", "gap")]
    if len(set(cells)) == 1 and cells[0].startswith("undefined"):
        return name, _md(cells[0]), "", ""  # one reason for the three: said once
    return name, _md(cells[0]), _md(cells[1]), _md(cells[2])


def model_card_markdown(cards: list[dict[str, Any]]) -> str:
    """The cards as Markdown (one section per judge version), through a Django template."""
    views = []
    for card in cards:
        level = card["snapshot"]["level"] or 0.95
        views.append(
            {
                "card": card,
                "title": _md(card["judge"]["label"]),
                "model_id": _md(card["judge"]["model_id"]),
                "dataset": _md(card["audited"]["dataset"]),
                "audit": _md(card["audited"]["audit"]["name"]),
                "level": f"{100 * level:.0f}%",
                "strata": [
                    (
                        _md(STRATA.get(s.get("stratum"), s.get("stratum"))),
                        s.get("items"),
                        s.get("labels"),
                    )
                    for s in card["audited"]["strata"]
                ],
                "agreement": [
                    (
                        name.replace("_", " "),
                        result_text(pair["judge"]),
                        result_text(pair["ceiling"]),
                    )
                    for name, pair in card["agreement"].items()
                ],
                "classes": [
                    (
                        _md(m["model"]),
                        m["classified"],
                        [_rate(m["classes"][c]) for c in CLASS_ORDER],
                    )
                    for m in card["response_classes"]["models"]
                ],
                "class_names": [c.replace("_", " ") for c in CLASS_ORDER],
                "gaps": [_gap_row(row) for row in card["refusal_gap"]["rows"]],
                "position": {
                    "consistency": result_text(card["position_bias"]["consistency"]),
                    "fairness": result_text(card["position_bias"]["fairness"]),
                },
                "length": {
                    key: result_text(card["length_bias"][key]) for key in ("human", "judge", "net")
                },
                "gate_rules": [
                    (_md(r["rule"]), r["status"], _md(r["reason"]))
                    for r in card["gate"].get("rules", [])
                ],
            }
        )
    return render_to_string("analysis/model_card.md", {"views": views})


def judge_named(audit: Audit, text: str) -> Judge:
    """A judge of the audit as `selectors.audit_judge_named` finds it; ExportError otherwise."""
    try:
        return selectors.audit_judge_named(audit, text)
    except selectors.JudgeNotOnAudit as exc:
        raise ExportError(f"judge {exc}") from None
