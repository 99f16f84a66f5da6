"""Re-judging an audit's calibration set (issue 12 item 2): a new judge version runs on exactly
the pairs people labelled, its comparison with v1 is linked when the run is done, and the gate
pinned to v1 is checked for v2 with the answer recorded pinned to v2's fingerprint."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from analysis import gates
from analysis.models import GateCheck, ReleaseGate
from annotation import models as am
from judges import services as judges_services
from judges.models import Judge, JudgeRun, Verdict
from tests.analysis.test_export import _label as label_submitted
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    PairFactory,
    PromptFactory,
    VerdictFactory,
)

pytestmark = pytest.mark.django_db

PEOPLE = ["A", "B", "tie", "A", "B", "A", "B", "A"]  # the labelled items' outcomes
LABELLED = (1, 2, 4, 5, 7, 8, 10, 11)  # positions of the items people labelled


def _label(item: am.AuditItem, user: User, outcome: str) -> None:
    label_submitted(item, user, outcome, a_on_left=True, ms=1500)
    item.label_count += 1
    item.save(update_fields=["label_count"])


def _verdict(judge: Judge, item: am.AuditItem, outcome: str) -> None:
    VerdictFactory(judge=judge, pair=item.pair, outcome=outcome, both_orders=True)


def _runnable(name: str, model_id: str) -> Judge:
    config = judges_services.judge_config_build(
        base_url="http://127.0.0.1:9/v1", preset_id="mt-bench", model_id=model_id, seed=7
    )
    return judges_services.judge_version_for(config, name)


@pytest.fixture
def audit(lead: User, annotator: User) -> am.Audit:
    """13 sampled items served in a shuffled order: 8 labelled by people, one adjudicated,
    4 not labelled, and a gold item with a lead's answer; judge v1 chosen for the audit."""
    dataset = DatasetFactory(name="calibration")
    audit = am.Audit.objects.create(
        name="cal", dataset=dataset, created_by=lead, target_size=13, overlap_k=1
    )
    v1 = _runnable("house-judge", "m-1")
    audit.judges.add(v1)
    people = iter(PEOPLE)
    for position in (5, 0, 11, 3, 8, 1, 9, 12, 2, 6, 10, 4, 7):
        item = am.AuditItem.objects.create(
            audit=audit,
            pair=PairFactory(prompt=PromptFactory(dataset=dataset), category="math"),
            stratum=am.Stratum.RANDOM,
            inclusion_probability=0.5,
            position=position,
        )
        if position in LABELLED:
            _label(item, annotator, next(people))
        elif position == 12:  # adjudicated by the lead without a label counted
            am.Adjudication.objects.create(item=item, lead=lead, outcome="B")
    gold = am.AuditItem.objects.create(
        audit=audit,
        pair=PairFactory(prompt=PromptFactory(dataset=dataset)),
        stratum=am.Stratum.GOLD,
        inclusion_probability=1.0,
        position=13,
        gold_outcome="A",
        label_count=1,
    )
    assert gold.pk
    return audit


def _labelled_pairs(audit: am.Audit) -> list[int]:
    return list(
        audit.items.filter(position__in=(*LABELLED, 12))
        .order_by("position")
        .values_list("pair_id", flat=True)
    )


def test_it_runs_v2_on_exactly_the_labelled_pairs(
    audit: am.Audit,
    lead_client: Client,
    tasks_sent: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    v2 = _runnable("house-judge", "m-2")
    assert v2.version == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(f"/api/audits/{audit.pk}/rejudge/", {"judge": v2.pk})
    assert response.status_code == 202, response.content
    body = response.json()
    run = JudgeRun.objects.get(pk=body["run"]["id"])
    assert run.pair_ids == _labelled_pairs(audit)  # labelled + adjudicated, serving order
    assert body["pairs"] == 9 and run.total == 9
    assert run.scope == f"audit {audit.pk} · labelled pairs"
    assert body["baseline"]["version"] == 1
    v1 = audit.judges.get(version=1)
    assert body["compare_url"] == f"/api/audits/{audit.pk}/compare/?a={v1.pk}&b={v2.pk}"
    assert set(audit.judges.values_list("version", flat=True)) == {1, 2}  # v2 joins the audit
    assert [t for t in tasks_sent if "judge_run" in str(t) and str(run.pk) in str(t)]


def test_the_page_links_the_comparison_once_the_run_is_done(
    audit: am.Audit, lead_client: Client
) -> None:
    v2 = _runnable("house-judge", "m-2")
    response = lead_client.post(f"/audits/{audit.pk}/rejudge/", {"judge": v2.pk})
    assert response.status_code == 302 and response["Location"].endswith("#rejudge")
    run = JudgeRun.objects.get(judge=v2)
    v1 = audit.judges.get(version=1)
    compare = f"/reports/audit/{audit.pk}/compare/?a={v1.pk}&amp;b={v2.pk}"
    page = lead_client.get(f"/audits/{audit.pk}/").content.decode()
    assert "Re-judge labelled pairs" in page and "(when the run is done)" in page
    assert compare not in page
    run.status = JudgeRun.Status.DONE
    run.save(update_fields=["status"])
    page = lead_client.get(f"/audits/{audit.pk}/").content.decode()
    assert compare in page


def test_it_refuses_an_audit_nobody_labelled_and_a_judge_that_cannot_run(
    lead: User, lead_client: Client
) -> None:
    dataset = DatasetFactory(name="empty")
    audit = am.Audit.objects.create(name="e", dataset=dataset, created_by=lead, target_size=1)
    am.AuditItem.objects.create(
        audit=audit,
        pair=PairFactory(prompt=PromptFactory(dataset=dataset)),
        stratum=am.Stratum.RANDOM,
        inclusion_probability=1.0,
        position=0,
    )
    v2 = _runnable("house-judge", "m-2")
    response = lead_client.post(f"/api/audits/{audit.pk}/rejudge/", {"judge": v2.pk})
    assert response.status_code == 400
    assert "nobody has labelled a pair" in str(response.json())
    assert not JudgeRun.objects.exists()


def test_an_imported_judge_cannot_be_rejudged(audit: am.Audit, lead_client: Client) -> None:
    imported = JudgeFactory(name="house-judge", version=3)
    response = lead_client.post(f"/api/audits/{audit.pk}/rejudge/", {"judge": imported.pk})
    assert response.status_code == 400 and "import its files" in str(response.json())
    assert not JudgeRun.objects.exists()
    assert not audit.judges.filter(pk=imported.pk).exists()  # rolled back with the run


@pytest.fixture
def judged(audit: am.Audit, lead: User) -> dict[str, Any]:
    """v1 and v2 verdicts on every item; v2 flips the first six of 13; a gate pinned to v1."""
    v1 = audit.judges.get(version=1)
    v2 = _runnable("house-judge", "m-2")
    audit.judges.add(v2)
    items = list(audit.items.sampled().order_by("position"))
    for item in items:
        people = item.labels.values_list("outcome", flat=True).first() or "A"
        _verdict(v1, item, people)
        _verdict(v2, item, ("B" if people == "A" else "A") if item.position < 6 else people)
    gate = gates.gate_set(
        audit=audit, judge=v1, rules=["flip_rate <= 0.95", "flip_rate <= 0.05"], created_by=lead
    )
    return {"v1": v1, "v2": v2, "gate": gate}


def test_the_gate_pinned_to_v1_is_checked_for_v2_and_recorded_for_v2(
    audit: am.Audit, judged: dict[str, Any], lead_client: Client
) -> None:
    v1, v2, gate = judged["v1"], judged["v2"], judged["gate"]
    page = lead_client.get(f"/reports/audit/{audit.pk}/compare/?a={v1.pk}&b={v2.pk}")
    assert "Check these rules for house-judge v2" in page.content.decode()
    response = lead_client.post(
        f"/reports/audit/{audit.pk}/gate/candidate/", {"a": v1.pk, "b": v2.pk}
    )
    assert response.status_code == 302 and response["Location"].endswith("#gate-check")
    check = GateCheck.objects.get()
    assert (check.gate_id, check.judge_id, check.baseline_id) == (gate.pk, v2.pk, v1.pk)
    assert check.judge_fingerprint == v2.fingerprint != v1.fingerprint
    assert check.result["fingerprint"] == v2.fingerprint
    # 6 flips in 13 pairs: surely under 0.95, surely over 0.05
    assert [r["status"] for r in check.result["rules"]] == ["PASS", "FAIL"]
    assert check.status == "FAIL"
    # the gate in force has not moved: still v1's, INCONCLUSIVE for v2's figures
    assert ReleaseGate.objects.get().judge_fingerprint == v1.fingerprint
    page = lead_client.get(f"/reports/audit/{audit.pk}/compare/?a={v1.pk}&b={v2.pk}")
    assert "<strong>FAIL</strong>" in page.content.decode()


def test_checking_needs_a_gate(audit: am.Audit, lead_client: Client) -> None:
    v1 = audit.judges.get(version=1)
    v2 = _runnable("house-judge", "m-2")
    audit.judges.add(v2)
    with pytest.raises(Exception, match="has no release gate"):
        gates.gate_check_record(audit=audit, candidate=v2, baseline=v1, created_by=None)
    response = lead_client.post(
        f"/reports/audit/{audit.pk}/gate/candidate/", {"a": v1.pk, "b": v2.pk}
    )
    assert response.status_code == 302 and not GateCheck.objects.exists()


def test_the_export_manifest_carries_each_versions_drift(
    audit: am.Audit, judged: dict[str, Any], tmp_path: Any
) -> None:
    from sklearn.metrics import cohen_kappa_score

    from analysis.export import export_to_file

    v1, v2 = judged["v1"], judged["v2"]
    result = export_to_file(audit_ids=[audit.pk], fmt="jsonl", path=tmp_path / "cal.jsonl")
    (drift,) = result["drift"]
    assert (drift["judge"], drift["baseline"]["version"], drift["candidate"]["version"]) == (
        "house-judge",
        1,
        2,
    )
    assert drift["candidate"]["fingerprint"] == v2.fingerprint
    assert drift["pairs_compared"] == 13
    # 6 of the 13 pairs flipped, inside its interval
    assert drift["flip_rate"]["value"] == pytest.approx(6 / 13, abs=1e-6)  # figures carry 6 places
    low, high = drift["flip_rate"]["ci"]
    assert low < 6 / 13 < high
    # kappa with the people on the 9 labelled pairs (8 labels, 1 adjudication), recomputed
    items = list(audit.items.sampled().filter(position__in=(*LABELLED, 12)).order_by("position"))
    people = [(item.labels.values_list("outcome", flat=True).first() or "B") for item in items]
    first = [Verdict.objects.get(judge=v1, pair=item.pair).outcome for item in items]
    second = [Verdict.objects.get(judge=v2, pair=item.pair).outcome for item in items]
    expected = cohen_kappa_score(second, people) - cohen_kappa_score(first, people)
    assert drift["delta_cohen_kappa"]["value"] == pytest.approx(expected, abs=1e-6)
    assert drift["delta_cohen_kappa"]["ci"][0] < expected


def test_the_manifest_survives_a_version_with_no_verdicts_yet(audit: am.Audit) -> None:
    """Right after a re-judge starts, v2 is one of the audit's judges with no verdict."""
    from analysis.export import manifest_drift

    v1 = audit.judges.get(version=1)
    audit.judges.add(_runnable("house-judge", "m-2"))
    for item in audit.items.sampled():
        _verdict(v1, item, "A")
    (drift,) = manifest_drift([audit], n_boot=50)
    assert drift["pairs_compared"] == 0
    assert drift["flip_rate"]["value"] is None
