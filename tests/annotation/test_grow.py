"""Growing an audit: more items from the same strata, inclusion probabilities updated; what
an audit can still hold, and what gets it more (add items, raise k)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from scipy import stats

from annotation import sampling, selectors, services
from annotation.models import Audit, AuditItem
from tests.annotation import test_audit_build
from tests.annotation.test_audit_build import build, classify, make_audit
from tests.factories import PairFactory, UserFactory

flagged = test_audit_build.flagged  # the fixture: 40 pairs with known strata

POOLS = {"ethics_refusal": 5, "technical_refusal": 3, "low_margin": 8, "random": 24}


def probabilities(audit: Audit) -> dict[str, set[float]]:
    found: dict[str, set[float]] = {}
    for stratum, p in AuditItem.objects.filter(audit=audit).values_list(
        "stratum", "inclusion_probability"
    ):
        found.setdefault(stratum, set()).add(round(p, 12))
    return found


# --- The pure rules ---------------------------------------------------------------------------


def test_it_splits_new_items_in_proportion_to_the_quotas() -> None:
    quotas = {"ethics_refusal": 3, "technical_refusal": 2, "low_margin": 4, "random": 6}
    room = {"ethics_refusal": 2, "technical_refusal": 1, "low_margin": 4, "random": 18}
    assert sampling.allocate(15, quotas=quotas, room=room) == {
        # 3:2:4:6 of 15 asks 3, 2, 4, 6; ethics has room for 2 and technical for 1, so the 2
        # they cannot take go to low margin and random, 4:6 (largest remainder).
        "ethics_refusal": 2,
        "technical_refusal": 1,
        "low_margin": 4,
        "random": 8,
    }
    assert sampling.allocate(5, quotas={"random": 6, "low_margin": 0}, room={"random": 9}) == {
        "random": 5
    }


def test_it_refuses_more_items_than_the_strata_have_left() -> None:
    with pytest.raises(sampling.SelectionError) as error:
        sampling.allocate(4, quotas={"random": 6, "ethics_refusal": 2}, room={"random": 3})
    assert error.value.field == "n"
    assert "only 3 pairs left" in error.value.message
    with pytest.raises(sampling.SelectionError, match="every one of them is in the audit"):
        sampling.allocate(1, quotas={"random": 6}, room={"random": 0})


def test_it_makes_two_draws_one_simple_random_sample() -> None:
    """Draw 2 of 6, then 2 more of the 4 left, over many seeds: each of the C(6, 4) = 15
    sets of four turns up equally often (chi-square, scipy), and each pair is in the union
    with probability 4/6."""
    pool = [sampling.PairSignals(i, f"k{i}") for i in range(6)]
    strata = {"random": pool}
    unions: Counter[frozenset[int]] = Counter()
    seeds = 3000
    for seed in range(seeds):
        first = sampling.draw(strata, {"random": 2}, seed=seed)
        more = sampling.draw_more(
            strata,
            drawn={"random": [d.pair_id for d in first]},
            added={"random": 2},
            seed=seed,
            round_=1,
            first_position=2,
        )
        assert {d.inclusion_probability for d in more} == {4 / 6}
        assert sorted(d.position for d in more) == [2, 3]
        unions[frozenset(d.pair_id for d in (*first, *more))] += 1
    assert len(unions) == math.comb(6, 4)
    observed = [unions[frozenset(s)] for s in itertools.combinations(range(6), 4)]
    assert stats.chisquare(observed).pvalue > 0.001
    for pair in range(6):
        share = sum(n for s, n in unions.items() if pair in s) / seeds
        assert abs(share - 4 / 6) < 5 * math.sqrt(4 / 6 * 2 / 6 / seeds)


# --- The service ------------------------------------------------------------------------------


def test_it_grows_an_audit_and_updates_every_items_probability(
    flagged: dict[str, Any], lead: User
) -> None:
    audit = build(flagged, lead)  # ethics 3/5, technical 2/3, low margin 4/8, random 6/24
    before = set(audit.items.values_list("pair_id", flat=True))
    added = services.audit_grow(audit=audit, n=10, by=lead)

    assert sum(added.values()) == 10
    assert added == {"ethics_refusal": 2, "technical_refusal": 1, "low_margin": 3, "random": 4}
    audit.refresh_from_db()
    assert audit.items.count() == 25 and audit.target_size == 25
    counts = Counter(audit.items.values_list("stratum", flat=True))
    assert probabilities(audit) == {name: {round(counts[name] / POOLS[name], 12)} for name in POOLS}
    # Old items kept, new ones from the right pools, never twice.
    assert before <= set(audit.items.values_list("pair_id", flat=True))
    index = {pair.pk: i for i, pair in enumerate(flagged["pairs"])}
    ranges = {
        "ethics_refusal": range(0, 5),
        "technical_refusal": range(5, 8),
        "low_margin": range(8, 16),
        "random": range(16, 40),
    }
    for item in audit.items.all():
        assert index[item.pair_id] in ranges[item.stratum]
    # Horvitz-Thompson: 1/probability over the items still adds up to the dataset.
    total = sum(1 / p for p in audit.items.values_list("inclusion_probability", flat=True))
    assert total == pytest.approx(40)
    positions = sorted(audit.items.values_list("position", flat=True))
    assert positions == list(range(25))
    # Strata without a quota (the uncertain class here) keep 0.
    assert audit.selection["quotas"] == {"uncertain_class": 0, **counts}
    assert audit.selection["growth"][0]["added"] == added
    assert audit.selection["growth"][0]["by"] == lead.username


def test_it_fills_an_exhausted_stratum_and_gives_the_rest_to_the_others(
    flagged: dict[str, Any], lead: User
) -> None:
    audit = build(flagged, lead)
    services.audit_grow(audit=audit, n=10, by=lead)
    added = services.audit_grow(audit=audit, n=6, by=lead)  # ethics 5/5, technical 3/3 now
    assert "ethics_refusal" not in added and "technical_refusal" not in added
    assert sum(added.values()) == 6
    assert probabilities(audit)["ethics_refusal"] == {1.0}
    assert probabilities(audit)["technical_refusal"] == {1.0}
    assert len(audit.selection["growth"]) == 2


def test_it_refuses_to_grow_past_the_pools_and_writes_nothing(
    flagged: dict[str, Any], lead: User
) -> None:
    audit = build(flagged, lead)
    with pytest.raises(ValidationError) as error:
        services.audit_grow(audit=audit, n=26, by=lead)
    assert "only 25 pairs left" in str(error.value)
    assert audit.items.count() == 15
    assert probabilities(audit)["random"] == {0.25}


def test_it_refuses_to_grow_when_the_dataset_moved_pairs_between_strata(
    flagged: dict[str, Any], lead: User
) -> None:
    audit = build(flagged, lead)
    classify(flagged["pairs"][30].response_b, "ethical_refusal")  # random -> ethics refusal
    with pytest.raises(ValidationError, match="the dataset changed since this audit was built"):
        services.audit_grow(audit=audit, n=2, by=lead)
    PairFactory(prompt__dataset=flagged["dataset"], source_key="late-pair")
    assert audit.items.count() == 15


def test_it_grows_the_same_way_for_the_same_seed(flagged: dict[str, Any], lead: User) -> None:
    one = build(flagged, lead, name="one")
    two = build(flagged, lead, name="two")
    services.audit_grow(audit=one, n=5, by=lead)
    services.audit_grow(audit=two, n=5, by=lead)
    assert list(one.items.order_by("position").values_list("pair_id", flat=True)) == list(
        two.items.order_by("position").values_list("pair_id", flat=True)
    )


# --- Capacity and what gets more --------------------------------------------------------------


def test_it_says_what_an_audit_can_hold_and_which_action_gets_more(lead: User) -> None:
    people = [UserFactory(username=f"c{i}") for i in range(3)]
    audit = make_audit(lead=lead, annotators=people, n_items=100, pairs=160, k=2)
    capacity = selectors.audit_capacity(audit)
    assert (capacity.labels_possible, capacity.labels_left, capacity.pairs_left) == (200, 200, 60)
    assert capacity.most_labels == 160 * 3
    assert capacity.reach(150).fits
    more = capacity.reach(320)  # 120 past what it holds: 60 items at k = 2, or k = 4 (> 3)
    assert (more.add_items, more.raise_k, more.sentence) == (60, None, "add 60 items")
    both = capacity.reach(250)  # 50 more: 25 items, or k = 3 (300 labels)
    assert both.sentence == "add 25 items or k = 3"
    never = capacity.reach(25_398)  # the demo's "about 25398 more labels"
    assert not never.reachable
    assert never.sentence == (
        "out of reach: at most 480 more labels, with all 60 pairs left added and k = 3"
    )


def test_it_raises_k_and_refuses_to_lower_it(lead: User) -> None:
    people = [UserFactory(username=f"k{i}") for i in range(3)]
    audit = make_audit(lead=lead, annotators=people, n_items=4, k=2)
    services.audit_overlap_set(audit=audit, overlap_k=3)
    assert Audit.objects.get(pk=audit.pk).overlap_k == 3
    with pytest.raises(ValidationError, match="raised, not lowered"):
        services.audit_overlap_set(audit=audit, overlap_k=2)
    with pytest.raises(ValidationError, match="needs 4 annotators"):
        services.audit_overlap_set(audit=audit, overlap_k=4)
    assert Audit.objects.get(pk=audit.pk).overlap_k == 3


# --- Pages and API ----------------------------------------------------------------------------


def test_it_grows_an_audit_from_its_page(
    flagged: dict[str, Any], lead: User, lead_client: Client
) -> None:
    audit = build(flagged, lead)
    page = lead_client.get(f"/audits/{audit.pk}/").content.decode()
    assert "<strong>30</strong> labels" in page  # 15 items x k = 2
    assert "<strong>25</strong> pairs left" in page
    response = lead_client.post(f"/audits/{audit.pk}/grow/", {"n": "10"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "10 items added" in html
    assert "<strong>50</strong> labels" in html
    assert AuditItem.objects.filter(audit=audit).count() == 25
    refused = lead_client.post(f"/audits/{audit.pk}/grow/", {"n": "99"}, follow=True)
    assert (
        "No items added: 99 items asked for, but this audit&#x27;s strata have only 15 pairs left"
        in refused.content.decode()
    )
    assert AuditItem.objects.filter(audit=audit).count() == 25


def test_it_keeps_growing_and_k_for_leads(
    flagged: dict[str, Any],
    lead: User,
    annotator_client: Client,
    outsider_client: Client,
) -> None:
    audit = build(flagged, lead)
    for client in (annotator_client, outsider_client):
        assert client.post(f"/audits/{audit.pk}/grow/", {"n": "2"}).status_code == 403
        assert client.post(f"/audits/{audit.pk}/overlap/", {"overlap_k": "3"}).status_code == 403
        assert client.post(f"/api/audits/{audit.pk}/grow/", {"n": 2}).status_code == 403
        assert client.get(f"/api/audits/{audit.pk}/capacity/").status_code == 403
    assert Client().post(f"/audits/{audit.pk}/grow/", {"n": "2"}).status_code == 302
    assert audit.items.count() == 15


def test_it_grows_an_audit_and_reports_capacity_through_the_api(
    flagged: dict[str, Any], lead: User, lead_client: Client
) -> None:
    audit = build(flagged, lead)
    response = lead_client.post(
        f"/api/audits/{audit.pk}/grow/", {"n": 4}, content_type="application/json"
    )
    assert response.status_code == 200
    assert sum(response.json()["added"].values()) == 4
    assert response.json()["audit"]["target_size"] == 19
    capacity = lead_client.get(f"/api/audits/{audit.pk}/capacity/?labels=60").json()
    assert capacity["labels_possible"] == 38 and capacity["pairs_left"] == 21
    assert capacity["reach"]["sentence"] == "add 11 items"
    bad = lead_client.post(
        f"/api/audits/{audit.pk}/grow/", {"n": 0}, content_type="application/json"
    )
    assert bad.status_code == 400 and "n" in bad.json()
    assert lead_client.get(f"/api/audits/{audit.pk}/capacity/?labels=x").status_code == 400
