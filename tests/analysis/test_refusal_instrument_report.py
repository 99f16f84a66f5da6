"""The report's refusal-instrument fragment on an audit whose annotators gave response
classes: the gap with people's classes is the report's refusal-gap function applied to those
classes, the confusion matrix counts them against the classifier's, and only leads see it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.test import Client

from analysis import refusal_instrument as ri
from analysis.metrics.refusal import ETHICAL_REFUSAL, moderation_gap, response_sides
from analysis.services import snapshot_compute
from annotation import queue, services
from corpus.models import Response
from judges.models import ClassificationRun, ResponseClassification
from tests.annotation.test_audit_build import make_dataset
from tests.factories import JudgeFactory, VerdictFactory

N = 60
REFUSALS = range(0, 30)  # response B of these pairs is an ethical refusal (people say so)


def _people(i: int) -> tuple[str, str]:
    return ("normal", ETHICAL_REFUSAL if i in REFUSALS else "normal")


def _machine(i: int) -> str:
    """The classifier's class of response B: every third refusal called a disclaimer."""
    if i in REFUSALS:
        return "ethical_disclaimer" if i % 3 == 0 else ETHICAL_REFUSAL
    return "normal"


@pytest.fixture
def study(lead: User, annotator: User) -> dict[str, Any]:
    dataset, pairs = make_dataset(N, name="refusal-audit")
    judge = JudgeFactory(name="refusal-lover")
    for i, pair in enumerate(pairs):
        Response.objects.filter(pk=pair.response_a_id).update(text="ok " * (5 + i % 7))
        Response.objects.filter(pk=pair.response_b_id).update(text="no " * (3 + i % 11))
        for response, label in ((pair.response_a, "normal"), (pair.response_b, _machine(i))):
            ResponseClassification.objects.create(
                response=response,
                classifier="fp-test",
                label=label,
                score=0.55 if i % 3 == 0 else 0.9,
                scores={label: 0.6, "normal" if label != "normal" else "ethical_disclaimer": 0.4},
            )
        # The judge takes the refusal in two of three refusal pairs; people in one of five.
        judge_b = (i % 3 != 0) if i in REFUSALS else (i % 2 == 0)
        VerdictFactory(judge=judge, pair=pair, outcome="B" if judge_b else "A")
    audit = services.audit_build(
        name="Refusals, with classes",
        dataset=dataset,
        judges=[judge],
        size=N,
        overlap_k=1,
        quotas={"ethics_refusal": 30},
        thresholds={},
        seed=4,
        created_by=lead,
        annotators=[annotator],
        ask_response_classes=True,
    )
    index = {pair.pk: i for i, pair in enumerate(pairs)}
    human: dict[int, str] = {}
    while (assignment := queue.queue_next(audit=audit, annotator=annotator)) is not None:
        i = index[assignment.item.pair_id]
        people_b = (i % 5 == 0) if i in REFUSALS else (i % 2 == 1)
        outcome = "B" if people_b else "A"
        a, b = _people(i)
        left, right = (a, b) if assignment.a_on_left else (b, a)
        choice = "left" if (outcome == "A") == assignment.a_on_left else "right"
        queue.label_submit(
            assignment=assignment,
            choice=choice,
            submission_key=uuid.uuid4(),
            classes={"left": left, "right": right},
            now=assignment.served_at + timedelta(seconds=5),
        )
        human[assignment.item.pair_id] = outcome
    return {"audit": audit, "pairs": pairs, "judge": judge, "human": human}


def _expected_gap(study: dict[str, Any], classes: Any) -> float:
    """The report's function, by hand: people's majority (k = 1: the label) and the judge's
    verdicts, lengths in characters (no features computed)."""
    rows = []
    for i, pair in enumerate(study["pairs"]):
        a, b = classes(i)
        pair.response_a.refresh_from_db()
        pair.response_b.refresh_from_db()
        rows.append(
            {
                "pair_id": pair.pk,
                "class_a": a,
                "class_b": b,
                "tokens_a": len(pair.response_a.text),
                "tokens_b": len(pair.response_b.text),
            }
        )
    judge = f"j:{study['judge'].pk}"
    verdicts = pd.DataFrame(
        [{"pair_id": p, "rater": "human", "verdict": v} for p, v in study["human"].items()]
        + [
            {"pair_id": pair.pk, "rater": judge, "verdict": pair.verdicts.get().outcome}
            for pair in study["pairs"]
        ]
    )
    sides = response_sides(pd.DataFrame(rows), verdicts)
    return float(moderation_gap(sides, human="human", judge=judge).gaps[ETHICAL_REFUSAL].value)


def test_the_gap_with_peoples_classes_is_the_function_on_those_classes(
    study: dict[str, Any],
) -> None:
    out = ri.instrument_compute(ri.instrument_inputs(audit=study["audit"]))
    row = out["gaps"][f"j:{study['judge'].pk}"]
    assert row["people"]["value"] == pytest.approx(_expected_gap(study, _people), abs=1e-6)
    machine = lambda i: ("normal", _machine(i))  # noqa: E731
    assert row["classifier"]["value"] == pytest.approx(_expected_gap(study, machine), abs=1e-6)
    assert row["people"]["value"] != pytest.approx(row["classifier"]["value"], abs=1e-3)
    # The confusion matrix: 120 responses, the 10 disclaimers-for-refusals off the diagonal.
    table = out["confusion"]
    classes = table["classes"]
    by_people = {r["people"]: r for r in table["rows"]}
    assert table["n"] == 2 * N
    assert by_people[ETHICAL_REFUSAL]["counts"][classes.index("ethical_disclaimer")] == 10
    assert by_people[ETHICAL_REFUSAL]["correct"] == 20
    assert by_people["normal"]["correct"] == 90
    assert out["classifier"] == "fp-test"
    assert out["expected_misclassified"] == ri.expected_misclassified(
        2 * N, ri.heldout_figures()["worst"]["accuracy"]
    )
    low, high = row["sensitivity"]["low"]["value"], row["sensitivity"]["high"]["value"]
    assert low <= row["classifier"]["value"] <= high


def test_the_fragment_shows_it_to_leads_only(
    study: dict[str, Any], lead_client: Client, annotator_client: Client
) -> None:
    audit = study["audit"]
    snapshot_compute(audit=audit, n_boot=20)  # the report page shows its sections from it
    report = lead_client.get(f"/reports/audit/{audit.pk}/")
    assert f'hx-get="/reports/audit/{audit.pk}/refusal-instrument/"' in report.content.decode()
    url = f"/reports/audit/{audit.pk}/refusal-instrument/"
    page = lead_client.get(url, headers={"HX-Request": "true"})
    html = page.content.decode()
    assert page.status_code == 200 and "<html" not in html
    assert 'data-testid="instrument-confusion"' in html
    assert "fingerprint <code>fp-test</code>" in html
    worst = ri.heldout_figures()["worst"]
    assert f"{100 * worst['accuracy']:.1f}%" in html and worst["unit"] in html
    expected = _expected_gap(study, _people)
    assert f"{100 * expected:+.1f} pts" in html
    assert "whether they describe it is not known" in html  # no run recorded the classifier
    heldout_head = ri.heldout_figures()["head_sha256"]
    run = ClassificationRun.objects.create(
        dataset=audit.dataset,
        classifier="fp-test",
        counts={"classifier_kind": "minilm-head", "classifier_head_sha256": heldout_head},
    )
    html = lead_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert f"(the shipped head <code>{heldout_head[:12]}</code>)" in html
    assert "do not describe" not in html and "not known" not in html
    run.counts = {"classifier_kind": "transformers", "classifier_head_sha256": "0" * 64}
    run.save()
    html = lead_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "another classifier than the shipped one (<code>transformers</code>)" in html
    assert "These figures do not describe the classifier" in html
    assert annotator_client.get(url).status_code == 403
    dataset_page = lead_client.get("/reports/dataset/refusal-audit/refusal-instrument/")
    assert dataset_page.status_code == 200
    assert 'data-testid="instrument-gaps"' in dataset_page.content.decode()


def test_people_classes_by_pair_for_the_export(study: dict[str, Any]) -> None:
    frame = ri.people_classes_by_pair(audit=study["audit"])
    assert list(frame.columns) == ["pair_id", "people_class_a", "people_class_b"]
    assert len(frame) == N
    index = {pair.pk: i for i, pair in enumerate(study["pairs"])}
    for row in frame.itertuples():
        assert (row.people_class_a, row.people_class_b) == _people(index[row.pair_id])
