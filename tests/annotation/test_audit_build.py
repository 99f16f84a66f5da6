"""The audit builder: strata, quotas, inclusion probabilities, seeds; page, API and command.

Also home to the small helpers the other audit tests import (`make_dataset`, `make_audit`,
`label_queue`).
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from annotation import queue, sampling, services
from annotation.models import Assignment, Audit, AuditItem, Stratum
from corpus.models import Pair
from judges.models import ResponseClassification
from tests.factories import DatasetFactory, JudgeFactory, PairFactory, VerdictFactory


def make_dataset(n: int, *, name: str | None = None) -> tuple[Any, list[Any]]:
    dataset = DatasetFactory(**({"name": name} if name else {}))
    pairs = [
        PairFactory(prompt__dataset=dataset, source_key=f"{dataset.name}-{i:04d}") for i in range(n)
    ]
    return dataset, pairs


def make_audit(
    *,
    lead: User,
    annotators: list[User],
    n_items: int = 6,
    k: int = 2,
    pairs: int | None = None,
    seed: int = 1,
    name: str = "Test audit",
    dataset_name: str | None = None,
    **options: Any,
) -> Audit:
    """A random-control-only audit over a fresh dataset, the queue tests' starting point."""
    dataset, _ = make_dataset(pairs or n_items, name=dataset_name)
    return services.audit_build(
        name=name,
        dataset=dataset,
        judges=[],
        size=n_items,
        overlap_k=k,
        quotas={},
        thresholds={},
        seed=seed,
        created_by=lead,
        annotators=annotators,
        **options,
    )


def label_queue(
    audit: Audit,
    annotator: User,
    choose: Callable[[Assignment], str],
    *,
    seconds: float,
    submitted_after_s: float,
) -> None:
    """``annotator`` labels every item the queue serves them: ``choose`` picks the side, each
    label takes ``seconds`` of work and is submitted ``submitted_after_s`` after serving."""
    while (assignment := queue.queue_next(audit=audit, annotator=annotator)) is not None:
        queue.label_submit(
            assignment=assignment,
            choice=choose(assignment),
            submission_key=uuid.uuid4(),
            time_spent_ms=int(seconds * 1000),
            now=assignment.served_at + timedelta(seconds=submitted_after_s),
        )


def classify(response: Any, label: str) -> None:
    ResponseClassification.objects.create(
        response=response, classifier="test-classifier", label=label, score=0.9
    )


@pytest.fixture
def flagged(db: None) -> dict[str, Any]:
    """40 pairs with known strata.

    ethics: pairs 0-4 (pair 4 is also a technical refusal and low margin -> ethics wins);
    technical: pairs 5-7; low margin: 8-11 small margin, 12-13 swap flips, 14-15 judges split;
    the other 24 pairs are the random control pool.
    """
    dataset, pairs = make_dataset(40, name="flagged")
    judge_x, judge_y = JudgeFactory(name="judge-x"), JudgeFactory(name="judge-y")
    for i in range(5):
        classify(pairs[i].response_a, "ethical_refusal" if i % 2 else "ethical_disclaimer")
    classify(pairs[4].response_b, "technical_refusal")
    for i in range(5, 8):
        classify(pairs[i].response_b, "technical_disclaimer" if i == 5 else "technical_refusal")
    for pair in pairs[20:24]:
        classify(pair.response_a, "normal")  # a "normal" class flags nothing
    for i, pair in enumerate(pairs):
        margin_x = 0.1 if 8 <= i <= 11 or i == 4 else 3.0
        consistent = not 12 <= i <= 13
        outcome_y = "B" if 14 <= i <= 15 else "A"
        VerdictFactory(
            judge=judge_x, pair=pair, outcome="A", margin=margin_x, consistent=consistent
        )
        VerdictFactory(judge=judge_y, pair=pair, outcome=outcome_y, margin=2.0, consistent=True)
    return {"dataset": dataset, "pairs": pairs, "judges": [judge_x, judge_y]}


def build(flagged: dict[str, Any], lead: User, **overrides: Any) -> Audit:
    arguments: dict[str, Any] = {
        "name": "Refusals and close calls",
        "dataset": flagged["dataset"],
        "judges": flagged["judges"],
        "size": 15,
        "overlap_k": 2,
        "quotas": {"ethics_refusal": 3, "technical_refusal": 2, "low_margin": 4},
        "thresholds": {"margin": 0.5},
        "seed": 42,
        "created_by": lead,
    }
    arguments.update(overrides)
    return services.audit_build(**arguments)


# --- The pure rules ----------------------------------------------------------------------


def test_it_places_a_pair_in_the_first_stratum_by_priority() -> None:
    both = sampling.PairSignals(1, "a", ethics=True, technical=True, low_margin=True)
    technical = sampling.PairSignals(2, "b", technical=True, low_margin=True)
    close = sampling.PairSignals(3, "c", low_margin=True)
    plain = sampling.PairSignals(4, "d")
    assert [sampling.stratum_of(s) for s in (both, technical, close, plain)] == [
        "ethics_refusal",
        "technical_refusal",
        "low_margin",
        "random",
    ]


def test_it_uses_the_models_stratum_names() -> None:
    assert set(sampling.ALL_STRATA) == set(Stratum.values) - {Stratum.GOLD}


def test_it_flags_small_margins_swap_flips_and_split_judges() -> None:
    call = sampling.JudgeCall
    assert sampling.is_low_margin([call("A", True, -0.2)], margin_threshold=0.5)
    assert not sampling.is_low_margin([call("A", True, -0.8)], margin_threshold=0.5)
    assert sampling.is_low_margin([call("tie", False, None)], margin_threshold=None)
    assert sampling.is_low_margin([call("A", True, 2), call("B", True, -2)], margin_threshold=0.5)
    assert not sampling.is_low_margin(
        [call("A", True, 2), call(None, None, None)], margin_threshold=0.5
    )
    assert not sampling.is_low_margin([], margin_threshold=0.5)


def test_it_draws_each_pair_with_its_recorded_probability() -> None:
    """Over many seeds, each pair of a 10-pair pool with quota 3 is drawn about 30% of the time:
    the recorded inclusion probability is the real one."""
    pool = [sampling.PairSignals(i, f"k{i:02d}") for i in range(10)]
    strata = {"random": pool}
    hits: Counter[int] = Counter()
    seeds = 4000
    for seed in range(seeds):
        drawn = sampling.draw(strata, {"random": 3}, seed=seed)
        assert {d.inclusion_probability for d in drawn} == {0.3}
        hits.update(d.pair_id for d in drawn)
    for pair_id in range(10):
        # binomial standard deviation sqrt(.3*.7/4000) = 0.0072; allow 5 of them
        assert abs(hits[pair_id] / seeds - 0.3) < 0.036


def test_it_explains_an_impossible_quota() -> None:
    with pytest.raises(sampling.SelectionError) as error:
        sampling.resolve_quotas(
            size=10, quotas={"ethics_refusal": 4}, available={"ethics_refusal": 2, "random": 50}
        )
    assert error.value.field == "ethics_refusal"
    assert "only 2 pairs" in error.value.message


# --- The service --------------------------------------------------------------------------


def test_it_records_stratum_and_inclusion_probability_on_each_item(
    flagged: dict, lead: User
) -> None:
    audit = build(flagged, lead)
    items = list(audit.items.select_related("pair"))
    by_stratum = Counter(item.stratum for item in items)
    assert by_stratum == {"ethics_refusal": 3, "technical_refusal": 2, "low_margin": 4, "random": 6}
    index = {pair.pk: i for i, pair in enumerate(flagged["pairs"])}
    pools = {
        "ethics_refusal": set(range(0, 5)),
        "technical_refusal": set(range(5, 8)),
        "low_margin": set(range(8, 16)),
        "random": set(range(16, 40)),
        "uncertain_class": set(),
    }
    for item in items:
        assert index[item.pair_id] in pools[item.stratum]
        assert item.inclusion_probability == pytest.approx(
            by_stratum[item.stratum] / len(pools[item.stratum])
        )
    assert audit.selection["available"] == {name: len(p) for name, p in pools.items()}


def test_it_weights_items_back_to_the_whole_dataset(flagged: dict, lead: User) -> None:
    """Horvitz-Thompson: summing 1/probability over the items recovers the dataset's size."""
    audit = build(flagged, lead)
    total = sum(1 / item.inclusion_probability for item in audit.items.all())
    assert total == pytest.approx(Pair.objects.filter(dataset=flagged["dataset"]).count())


def test_it_selects_the_same_items_in_the_same_order_for_the_same_seed(
    flagged: dict, lead: User
) -> None:
    first = build(flagged, lead, seed=7)
    again = build(flagged, lead, seed=7)
    other = build(flagged, lead, seed=8)

    def picked(audit: Audit) -> list[tuple[int, int, str]]:
        return list(audit.items.order_by("position").values_list("position", "pair_id", "stratum"))

    assert picked(first) == picked(again)
    assert picked(first) != picked(other)


def test_it_shuffles_positions_into_a_permutation(flagged: dict, lead: User) -> None:
    audit = build(flagged, lead)
    positions = sorted(audit.items.values_list("position", flat=True))
    assert positions == list(range(15))
    strata_in_order = list(audit.items.order_by("position").values_list("stratum", flat=True))
    assert strata_in_order != sorted(strata_in_order, key=sampling.ALL_STRATA.index)


def test_it_refuses_a_quota_larger_than_the_pool_and_writes_nothing(
    flagged: dict, lead: User
) -> None:
    with pytest.raises(ValidationError) as error:
        build(flagged, lead, quotas={"ethics_refusal": 6})
    assert "only 5 pairs" in " ".join(error.value.message_dict["ethics_refusal"])
    assert not Audit.objects.exists()


def test_it_refuses_quotas_that_add_up_to_more_than_the_size(flagged: dict, lead: User) -> None:
    with pytest.raises(ValidationError) as error:
        build(flagged, lead, size=5)
    assert "more than the size 5" in " ".join(error.value.message_dict["size"])


def test_it_refuses_more_annotators_per_item_than_annotators(
    flagged: dict, lead: User, annotator: User
) -> None:
    with pytest.raises(ValidationError) as error:
        build(flagged, lead, annotators=[annotator], overlap_k=2)
    assert "overlap_k" in error.value.message_dict


# --- The page ------------------------------------------------------------------------------


def test_it_shows_the_pairs_available_per_stratum_before_creating(
    flagged: dict, lead_client: Client
) -> None:
    judges = flagged["judges"]
    response = lead_client.get(
        "/audits/new/availability/",
        {"dataset": "flagged", "judges": [j.pk for j in judges], "margin_threshold": "0.5"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-stratum="ethics_refusal">5<' in html
    assert 'data-stratum="technical_refusal">3<' in html
    assert 'data-stratum="low_margin">8<' in html
    assert 'data-stratum="random">24<' in html
    # Without the judges there is no low-margin pool: those pairs fall to the control.
    response = lead_client.get("/audits/new/availability/", {"dataset": "flagged"})
    assert 'data-stratum="low_margin">0<' in response.content.decode()


def test_it_builds_an_audit_from_the_page(
    flagged: dict, lead_client: Client, annotator: User, other_annotator: User
) -> None:
    form = {
        "name": "May audit",
        "dataset": "flagged",
        "judges": [j.pk for j in flagged["judges"]],
        "margin_threshold": "0.5",
        "size": "12",
        "overlap_k": "2",
        "quota_ethics_refusal": "2",
        "quota_technical_refusal": "1",
        "quota_low_margin": "4",
        "quota_random": "",
        "seed": "5",
        "annotators": [annotator.pk, other_annotator.pk],
        "allow_both_bad": "on",
        "criteria": "correctness, helpfulness",
        "guidelines": "Prefer the **correct** answer.",
        "hold_minutes": "5",
    }
    preview = lead_client.post("/audits/new/", {**form, "preview": "1"})
    assert preview.status_code == 200
    assert not Audit.objects.exists()
    assert 'data-stratum="random">24<' in preview.content.decode()

    response = lead_client.post("/audits/new/", form)
    audit = Audit.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/audits/{audit.pk}/"
    assert audit.items.count() == 12
    assert dict(Counter(audit.items.values_list("stratum", flat=True))) == {
        "ethics_refusal": 2,
        "technical_refusal": 1,
        "low_margin": 4,
        "random": 5,
    }
    assert set(audit.annotators.all()) == {annotator, other_annotator}
    assert audit.criteria == ["correctness", "helpfulness"]
    assert audit.allow_both_bad and audit.hold_seconds == 300

    detail = lead_client.get(response["Location"])
    assert detail.status_code == 200
    assert b"May audit" in detail.content


def test_it_shows_a_quota_error_on_the_quota_field(flagged: dict, lead_client: Client) -> None:
    response = lead_client.post(
        "/audits/new/",
        {
            "name": "Too many",
            "dataset": "flagged",
            "size": "10",
            "overlap_k": "1",
            "quota_ethics_refusal": "9",
            "quota_technical_refusal": "0",
            "quota_low_margin": "0",
            "seed": "1",
            "hold_minutes": "10",
        },
    )
    assert response.status_code == 200
    assert "quota 9 but only 5 pairs" in response.content.decode()
    assert not Audit.objects.exists()


@pytest.mark.parametrize("url", ["/audits/", "/audits/new/", "/audits/new/availability/"])
def test_it_keeps_audit_management_from_annotators_and_outsiders(
    url: str, annotator_client: Client, outsider_client: Client
) -> None:
    assert annotator_client.get(url).status_code == 403
    assert outsider_client.get(url).status_code == 403


def test_it_lists_every_audit_for_leads(lead_client: Client, lead: User, annotator: User) -> None:
    make_audit(lead=lead, annotators=[annotator], k=1)
    response = lead_client.get("/audits/")
    assert response.status_code == 200
    assert b"Test audit" in response.content


# --- The command and the API --------------------------------------------------------------


def test_it_builds_an_audit_from_the_command(flagged: dict, lead: User, annotator: User) -> None:
    out = io.StringIO()
    call_command(
        "audit_build",
        "--dataset",
        "flagged",
        "--judge",
        "judge-x",
        "--judge",
        "judge-y",
        "--margin",
        "0.5",
        "--size",
        "10",
        "--k",
        "1",
        "--quota",
        "ethics_refusal=5",
        "--seed",
        "3",
        "--created-by",
        lead.username,
        "--annotator",
        annotator.username,
        "--name",
        "CLI audit",
        stdout=out,
    )
    audit = Audit.objects.get(name="CLI audit")
    assert audit.items.filter(stratum="ethics_refusal").count() == 5
    assert audit.items.filter(stratum="random").count() == 5
    assert {i.inclusion_probability for i in audit.items.filter(stratum="ethics_refusal")} == {1.0}
    assert "ethics_refusal" in out.getvalue() and f"audit {audit.pk}" in out.getvalue()


def test_it_prints_the_pools_without_building_on_a_dry_run(flagged: dict, lead: User) -> None:
    out = io.StringIO()
    call_command("audit_build", "--dataset", "flagged", "--dry-run", stdout=out)
    assert "random" in out.getvalue() and "32 pairs available" in out.getvalue()
    assert not Audit.objects.exists()


def test_it_names_the_bad_option_from_the_command(flagged: dict, lead: User) -> None:
    with pytest.raises(CommandError, match="--quota ethics=3"):
        call_command("audit_build", "--dataset", "flagged", "--quota", "ethics=3")
    with pytest.raises(CommandError, match="ethics_refusal: quota 9"):
        call_command(
            "audit_build",
            "--dataset",
            "flagged",
            "--size",
            "10",
            "--quota",
            "ethics_refusal=9",
            "--created-by",
            lead.username,
            stdout=io.StringIO(),
        )


def test_it_builds_an_audit_through_the_api(
    flagged: dict, lead_client: Client, annotator_client: Client, annotator: User
) -> None:
    body = {
        "name": "API audit",
        "dataset": "flagged",
        "judges": [j.pk for j in flagged["judges"]],
        "size": 10,
        "overlap_k": 1,
        "quotas": {"low_margin": 8},
        "thresholds": {"margin": 0.5},
        "seed": 11,
        "annotators": [annotator.username],
    }
    assert (
        annotator_client.post("/api/audits/", body, content_type="application/json").status_code
        == 403
    )
    response = lead_client.post("/api/audits/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    audit = Audit.objects.get(name="API audit")
    assert response.json()["id"] == audit.pk
    assert audit.items.filter(stratum="low_margin").count() == 8
    assert {
        i.inclusion_probability for i in AuditItem.objects.filter(audit=audit, stratum="low_margin")
    } == {1.0}

    counts = lead_client.get("/api/audits/availability/", {"dataset": "flagged"}).json()
    assert counts == {
        "uncertain_class": 0,
        "ethics_refusal": 5,
        "technical_refusal": 3,
        "low_margin": 0,
        "random": 32,
    }

    too_big = lead_client.post(
        "/api/audits/", {**body, "quotas": {"low_margin": 9}}, content_type="application/json"
    )
    assert too_big.status_code == 400
    assert "only 8 pairs" in " ".join(too_big.json()["low_margin"])
    listed = annotator_client.get("/api/audits/").json()
    assert [a["name"] for a in listed] == ["API audit"]
