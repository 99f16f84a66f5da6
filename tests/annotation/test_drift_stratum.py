"""The drift stratum: the pairs whose verdict flipped between two chosen judge versions, drawn
with known inclusion probabilities (issue 12 item 1, last bullet)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from annotation import sampling, services
from annotation.models import AuditItem, Stratum
from tests.annotation.test_audit_build import classify, make_dataset
from tests.factories import JudgeFactory, VerdictFactory

# Verdicts of v1 and v2 on pairs 0-59. Flipped: 0-9 A -> B, 10-14 A -> tie, 15-19 tie -> B,
# 20-21 B -> both_bad (a tie: flipped); not flipped: 22-23 tie -> both_bad (both ties), 24-25
# v2 missing, 26-27 v2 has no combined outcome (an order failed); the rest A -> A.
FLIPPED = set(range(22))


def _outcomes(i: int) -> tuple[str | None, str | None, bool]:
    """(v1, v2, v2 has a row) for pair i."""
    if i < 10:
        return "A", "B", True
    if i < 15:
        return "A", "tie", True
    if i < 20:
        return "tie", "B", True
    if i < 22:
        return "B", "both_bad", True
    if i < 24:
        return "tie", "both_bad", True
    if i < 26:
        return "A", None, False
    if i < 28:
        return "A", None, True
    return "A", "A", True


@pytest.fixture
def drift(db: None) -> dict[str, Any]:
    dataset, pairs = make_dataset(60, name="drift")
    v1 = JudgeFactory(name="gpt-judge", version=1, fingerprint="v1")
    v2 = JudgeFactory(name="gpt-judge", version=2, fingerprint="v2")
    for i, pair in enumerate(pairs):
        before, after, has_row = _outcomes(i)
        VerdictFactory(judge=v1, pair=pair, outcome=before)
        if has_row:
            VerdictFactory(judge=v2, pair=pair, outcome=after)
    # An ethics refusal among the flipped pairs: drift comes first, so it stays in drift.
    classify(pairs[3].response_a, "ethical_refusal")
    classify(pairs[40].response_a, "ethical_refusal")
    return {"dataset": dataset, "pairs": pairs, "v1": v1, "v2": v2}


def _build(drift: dict[str, Any], lead: User, **options: Any) -> Any:
    arguments: dict[str, Any] = {
        "name": "Drift audit",
        "dataset": drift["dataset"],
        "judges": [],
        "size": 20,
        "overlap_k": 1,
        "quotas": {sampling.DRIFT: 8, sampling.ETHICS_REFUSAL: 1},
        "thresholds": {},
        "seed": 3,
        "created_by": lead,
        "drift_judges": [drift["v1"], drift["v2"]],
    }
    arguments.update(options)
    return services.audit_build(**arguments)


def test_the_flip_rule_codes_both_bad_as_a_tie_and_ignores_missing_verdicts() -> None:
    assert sampling.is_flipped("A", "B")
    assert sampling.is_flipped("A", "tie")
    assert sampling.is_flipped("B", "both_bad")
    assert not sampling.is_flipped("tie", "both_bad")
    assert not sampling.is_flipped("A", None)
    assert not sampling.is_flipped(None, "B")
    assert not sampling.is_flipped("B", "B")


def test_it_puts_only_flipped_pairs_in_the_drift_stratum(drift: dict[str, Any], lead: User) -> None:
    audit = _build(drift, lead)

    index = {pair.pk: i for i, pair in enumerate(drift["pairs"])}
    drawn = AuditItem.objects.filter(audit=audit, stratum=Stratum.DRIFT)
    assert drawn.count() == 8
    assert {index[item.pair_id] for item in drawn} <= FLIPPED
    assert audit.selection["available"][sampling.DRIFT] == len(FLIPPED)
    assert audit.selection["drift_judges"] == [drift["v1"].pk, drift["v2"].pk]
    # Pair 3 is an ethics refusal too, but drift comes first; pair 40 is the only other one.
    ethics = AuditItem.objects.filter(audit=audit, stratum=Stratum.ETHICS_REFUSAL)
    assert [index[item.pair_id] for item in ethics] == [40]


def test_the_drift_probabilities_estimate_the_number_of_flipped_pairs(
    drift: dict[str, Any], lead: User
) -> None:
    audit = _build(drift, lead)

    drawn = AuditItem.objects.filter(audit=audit, stratum=Stratum.DRIFT)
    for item in drawn:
        assert item.inclusion_probability == pytest.approx(8 / 22)
    # Horvitz-Thompson: the sum of 1/p over the stratum's items is the stratum's size.
    assert sum(1 / item.inclusion_probability for item in drawn) == pytest.approx(22)


def test_every_flipped_pair_is_drawn_with_the_probability_it_was_given(
    drift: dict[str, Any], lead: User
) -> None:
    """Over many seeds each flipped pair turns up in about quota / pool of the audits."""
    index = {pair.pk: i for i, pair in enumerate(drift["pairs"])}
    signals = [
        sampling.PairSignals(pair_id=p.pk, sort_key=p.source_key, flipped=index[p.pk] in FLIPPED)
        for p in drift["pairs"]
    ]
    strata = sampling.partition(signals)
    counts = dict.fromkeys(FLIPPED, 0)
    runs = 2000
    for seed in range(runs):
        for row in sampling.draw(strata, {sampling.DRIFT: 8}, seed=seed):
            counts[index[row.pair_id]] += 1
    for count in counts.values():
        assert count / runs == pytest.approx(8 / 22, abs=0.05)


def test_a_grown_audit_keeps_drawing_flipped_pairs(drift: dict[str, Any], lead: User) -> None:
    audit = _build(drift, lead)

    services.audit_grow(audit=audit, n=10, by=lead)

    index = {pair.pk: i for i, pair in enumerate(drift["pairs"])}
    drawn = AuditItem.objects.filter(audit=audit, stratum=Stratum.DRIFT)
    assert {index[item.pair_id] for item in drawn} <= FLIPPED
    assert sum(1 / item.inclusion_probability for item in drawn) == pytest.approx(22)


def test_a_drift_quota_needs_two_different_versions(drift: dict[str, Any], lead: User) -> None:
    with pytest.raises(ValidationError) as missing:
        _build(drift, lead, drift_judges=[])
    with pytest.raises(ValidationError) as same:
        _build(drift, lead, drift_judges=[drift["v1"], drift["v1"]])

    assert "two judge versions" in str(missing.value.message_dict[sampling.DRIFT])
    assert "different" in str(same.value.message_dict["drift_judges"])
    assert not AuditItem.objects.exists()


def test_the_audit_form_offers_the_drift_stratum_to_leads(
    drift: dict[str, Any], lead_client: Client, annotator_client: Client
) -> None:
    page = lead_client.get("/audits/new/")
    counts = lead_client.get(
        "/audits/new/availability/",
        {
            "dataset": "drift",
            "drift_before": drift["v1"].pk,
            "drift_after": drift["v2"].pk,
        },
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="drift_before"' in html and 'name="quota_drift"' in html
    assert 'data-stratum="drift">22<' in counts.content.decode()
    assert annotator_client.get("/audits/new/").status_code == 403


def test_the_audit_form_builds_a_drift_audit(drift: dict[str, Any], lead_client: Client) -> None:
    response = lead_client.post(
        "/audits/new/",
        {
            "name": "From the form",
            "dataset": "drift",
            "drift_before": drift["v1"].pk,
            "drift_after": drift["v2"].pk,
            "size": 12,
            "overlap_k": 1,
            "quota_ethics_refusal": 0,
            "quota_technical_refusal": 0,
            "quota_low_margin": 0,
            "quota_drift": 12,
            "quota_random": 0,
            "seed": 5,
            "hold_minutes": 10,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    items = AuditItem.objects.filter(audit__name="From the form")
    assert items.count() == 12
    assert set(items.values_list("stratum", flat=True)) == {Stratum.DRIFT}


def test_the_api_builds_a_drift_audit_and_names_a_missing_version(
    drift: dict[str, Any], lead_client: Client
) -> None:
    body = {
        "name": "API drift",
        "dataset": "drift",
        "size": 5,
        "overlap_k": 1,
        "quotas": {"drift": 5, "random": 0},
        "seed": 2,
        "drift_judges": [drift["v1"].pk, drift["v2"].pk],
    }
    created = lead_client.post("/api/audits/", body, content_type="application/json")
    unknown = lead_client.post(
        "/api/audits/",
        {**body, "name": "Nope", "drift_judges": [drift["v1"].pk, 999999]},
        content_type="application/json",
    )

    assert created.status_code == 201, created.content
    items = AuditItem.objects.filter(audit__name="API drift")
    assert items.count() == 5 and {i.stratum for i in items} == {Stratum.DRIFT}
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "no judge with id 999999", "field": "drift_judges"}
    assert not AuditItem.objects.filter(audit__name="Nope").exists()
