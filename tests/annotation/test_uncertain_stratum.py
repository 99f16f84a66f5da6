"""The refusal strata read the classifier's probabilities, and uncertain responses form their
own stratum (issue 11 item 3)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import sampling, selectors, services
from judges.models import ResponseClassification
from tests.annotation.test_audit_build import make_dataset


def _classify(response: Any, label: str, *, ethical: float = 0.0, uncertain: bool = False) -> None:
    ResponseClassification.objects.create(
        response=response,
        classifier="test-classifier",
        label=label,
        score=0.6,
        scores={"normal": 1.0 - ethical, "ethical_refusal": ethical},
        refusal_probability=ethical,
        uncertain=uncertain,
    )


@pytest.fixture
def mixed(db: None) -> dict[str, Any]:
    """30 pairs. Uncertain: 0-5 (pair 0 also an ethical refusal, pair 1 uncertain on both
    sides, pair 5 uncertain on side B only). Ethics by top class: 6-7; ethics by probability
    alone (top class normal or technical_disclaimer, P(ethical_refusal) >= 0.3): 8-9;
    below the threshold: 10 (P = 0.29, normal) -> random. The other pairs are random."""
    dataset, pairs = make_dataset(30, name="mixed")
    _classify(pairs[0].response_a, "ethical_refusal", ethical=0.55, uncertain=True)
    _classify(pairs[1].response_a, "normal", uncertain=True)
    _classify(pairs[1].response_b, "technical_refusal", uncertain=True)
    for i in (2, 3, 4):
        _classify(pairs[i].response_a, "normal", ethical=0.1, uncertain=True)
    _classify(pairs[5].response_b, "ethical_disclaimer", uncertain=True)
    _classify(pairs[6].response_a, "ethical_refusal", ethical=0.9)
    _classify(pairs[7].response_b, "ethical_refusal", ethical=0.8)
    _classify(pairs[8].response_a, "normal", ethical=0.3)
    _classify(pairs[9].response_b, "technical_disclaimer", ethical=0.45)
    _classify(pairs[10].response_a, "normal", ethical=0.29)
    return {"dataset": dataset, "pairs": pairs}


def test_the_rule_reads_probability_and_uncertainty() -> None:
    signal = sampling.ResponseSignal
    assert sampling.response_flags([signal("normal", 0.3)]) == (True, False, False)
    assert sampling.response_flags([signal("normal", 0.29)]) == (False, False, False)
    assert sampling.response_flags([signal("normal", None, uncertain=True)]) == (
        False,
        False,
        True,
    )
    assert sampling.response_flags(
        [signal("technical_refusal", 0.0), signal("ethical_disclaimer", 0.0)]
    ) == (True, True, False)
    assert sampling.response_flags([signal("normal", 0.2)], ethics_probability=0.2)[0]
    uncertain_and_ethics = sampling.PairSignals(1, "a", ethics=True, uncertain=True)
    assert sampling.stratum_of(uncertain_and_ethics) == sampling.UNCERTAIN_CLASS


def test_the_uncertain_stratum_holds_exactly_the_pairs_with_an_uncertain_response(
    mixed: dict[str, Any],
) -> None:
    pairs = mixed["pairs"]
    strata = sampling.partition(
        selectors.pair_signals(dataset=mixed["dataset"], judges=[], margin_threshold=None)
    )
    index = {pair.pk: i for i, pair in enumerate(pairs)}
    members = {name: {index[s.pair_id] for s in found} for name, found in strata.items()}
    # From the rows themselves: every pair with a response classified uncertain.
    with_uncertain = {
        i
        for i, pair in enumerate(pairs)
        if ResponseClassification.objects.filter(
            response_id__in=[pair.response_a_id, pair.response_b_id], uncertain=True
        ).exists()
    }
    assert members[sampling.UNCERTAIN_CLASS] == with_uncertain == {0, 1, 2, 3, 4, 5}
    assert members[sampling.ETHICS_REFUSAL] == {6, 7, 8, 9}
    assert members[sampling.TECHNICAL_REFUSAL] == set()
    assert 10 in members[sampling.RANDOM]
    assert len(members[sampling.RANDOM]) == 30 - 10


def test_inclusion_probabilities_are_n_over_N_per_stratum(
    mixed: dict[str, Any], lead: User
) -> None:
    audit = services.audit_build(
        name="Unsure",
        dataset=mixed["dataset"],
        judges=[],
        size=10,
        overlap_k=1,
        quotas={"uncertain_class": 3, "ethics_refusal": 2},
        thresholds={},
        seed=7,
        created_by=lead,
    )
    items = list(audit.items.all())
    drawn = Counter(item.stratum for item in items)
    pools = audit.selection["available"]
    assert drawn == {"uncertain_class": 3, "ethics_refusal": 2, "random": 5}
    assert pools["uncertain_class"] == 6 and pools["ethics_refusal"] == 4
    for item in items:
        assert item.inclusion_probability == pytest.approx(
            drawn[item.stratum] / pools[item.stratum]
        )
    index = {pair.pk: i for i, pair in enumerate(mixed["pairs"])}
    assert {index[i.pair_id] for i in items if i.stratum == "uncertain_class"} <= set(range(6))
    assert audit.selection["thresholds"]["ethics_probability"] == sampling.ETHICS_PROBABILITY


def test_page_and_api_offer_the_stratum(mixed: dict[str, Any], lead_client: Client) -> None:
    html = lead_client.get("/audits/new/availability/", {"dataset": "mixed"}).content.decode()
    assert 'data-stratum="uncertain_class">6<' in html
    page = lead_client.get("/audits/new/").content.decode()
    assert 'name="quota_uncertain_class"' in page and "Uncertain class" in page
    created = lead_client.post(
        "/api/audits/",
        {
            "name": "Unsure API",
            "dataset": "mixed",
            "size": 4,
            "overlap_k": 1,
            "quotas": {"uncertain_class": 4, "random": 0},
            "seed": 3,
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["selection"]["quotas"]["uncertain_class"] == 4


def test_the_command_takes_the_stratum_and_the_setting(mixed: dict[str, Any], lead: User) -> None:
    from django.core.management import call_command

    from annotation.models import Audit

    call_command(
        "audit_build",
        "--dataset=mixed",
        "--size=5",
        "--k=1",
        "--quota",
        "uncertain_class=5",
        "--quota",
        "random=0",
        "--seed=1",
        "--ask-response-classes",
        f"--created-by={lead.username}",
        stdout=__import__("io").StringIO(),
    )
    audit = Audit.objects.get()
    assert audit.ask_response_classes
    assert set(audit.items.values_list("stratum", flat=True)) == {"uncertain_class"}
    assert {i.inclusion_probability for i in audit.items.all()} == {5 / 6}
