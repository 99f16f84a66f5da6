"""Quality control: the Wilson interval against published values and statsmodels, the
per-annotator figures and flags, the lead's table, gold pairs from the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from statsmodels.stats.proportion import proportion_confint

from annotation import quality, queue, selectors, services
from annotation.models import Assignment, Audit
from tests.annotation.test_audit_build import label_queue, make_audit
from tests.factories import UserFactory

# --- The statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, Table II, method 3 (Wilson score
        # interval without continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_it_matches_newcombes_worked_examples(
    successes: int, n: int, low: float, high: float
) -> None:
    interval = quality.wilson(successes, n)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


@pytest.mark.parametrize(("successes", "n"), [(0, 1), (1, 1), (7, 10), (13, 40), (400, 401)])
def test_it_matches_statsmodels_wilson_interval(successes: int, n: int) -> None:
    interval = quality.wilson(successes, n)
    expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert interval is not None
    assert (interval.low, interval.high) == pytest.approx(expected, abs=1e-12)


def test_it_has_no_interval_without_data_and_refuses_impossible_counts() -> None:
    assert quality.wilson(0, 0) is None
    with pytest.raises(ValueError, match="3 successes out of 2"):
        quality.wilson(3, 2)


def test_it_computes_each_annotators_figures_and_flags() -> None:
    row = quality.LabelRow
    rows = [
        # items 1-4 sampled, labelled by annotators 10 and 20; 30 is fast and always left
        row(1, 10, "A", True, 12.0),
        row(1, 20, "A", False, 9.0),
        row(1, 30, "B", True, 0.3),
        row(2, 10, "B", False, 14.0),
        row(2, 20, "B", True, 8.0),
        row(2, 30, "A", True, 0.4),
        row(3, 10, "tie", None, 10.0),
        row(3, 20, "A", True, 7.0),
        # gold items 8 (answer A) and 9 (answer tie)
        row(8, 10, "A", True, 11.0, gold_outcome="A"),
        row(9, 10, "tie", None, 11.0, gold_outcome="tie"),
        row(8, 30, "B", True, 0.2, gold_outcome="A"),
        row(9, 30, "A", True, 0.2, gold_outcome="tie"),
    ]
    result = quality.annotator_quality(
        rows,
        thresholds=quality.Thresholds(min_seconds=3.0, min_gold_accuracy=0.7),
        annotators=[10, 20, 30, 40],
    )
    ten, twenty, thirty, forty = (result[k] for k in (10, 20, 30, 40))
    assert ten.labels == 5 and ten.median_seconds == 11.0
    assert (ten.gold.successes, ten.gold.n) == (2, 2)  # type: ignore[union-attr]
    # 10 vs others: item 1 (20 agrees, 30 not), item 2 (20 agrees, 30 not), item 3 (20 not)
    assert (ten.agreement.successes, ten.agreement.n) == (2, 5)  # type: ignore[union-attr]
    assert (ten.left.successes, ten.left.n) == (2, 3)  # type: ignore[union-attr]
    assert ten.flags == []
    assert twenty.gold is None and twenty.flags == []
    assert (thirty.left.successes, thirty.left.n) == (4, 4)  # type: ignore[union-attr]
    assert thirty.median_seconds == pytest.approx(0.25)  # of 0.2, 0.2, 0.3, 0.4
    assert thirty.flags == ["too fast", "below gold"]
    assert (forty.labels, forty.median_seconds, forty.agreement) == (0, None, None)


# --- The lead's table ------------------------------------------------------------------------


@pytest.fixture
def qc_audit(lead: User, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Three annotators on 4 items (k = 3) and 2 gold pairs, served first (every gold draw
    hits); `fast` answers in 0.5 s and always left."""
    monkeypatch.setattr(queue, "_percent_draw", lambda: 0)
    careful, steady, fast = (UserFactory(username=name) for name in ("careful", "steady", "fast"))
    audit = make_audit(lead=lead, annotators=[careful, steady, fast], n_items=4, pairs=6, k=3)
    spare = list(audit.dataset.pairs.exclude(audit_items__audit=audit).order_by("source_key"))
    services.gold_add(
        audit=audit,
        lines=services.parse_gold_lines(
            f"{spare[0].source_key}, A\n{spare[1].source_key}, B, the B answer cites the law"
        ),
    )
    services.audit_options_set(audit=audit, gold_percent=50)
    plan = {"careful": (8, None), "steady": (6, None), "fast": (0.5, "left")}

    def truth(assignment: Assignment) -> str:
        outcome = assignment.item.gold_outcome or "A"
        return queue.to_side(outcome, a_on_left=assignment.a_on_left)

    for person in (careful, steady, fast):
        seconds, always = plan[person.username]
        choose = truth if always is None else lambda _, side=always: side
        label_queue(audit, person, choose, seconds=seconds, submitted_after_s=30)
    return {"audit": audit, "people": (careful, steady, fast)}


def test_it_flags_a_fast_left_clicker_in_the_quality_table(qc_audit: dict[str, Any]) -> None:
    audit = qc_audit["audit"]
    rows = {row.user.username: row for row in selectors.quality_table(audit)}
    assert set(rows) == {"careful", "steady", "fast"}
    careful, fast = rows["careful"], rows["fast"]
    assert careful.labels == 6  # 4 sampled items and 2 gold
    assert (careful.figures.gold.successes, careful.figures.gold.n) == (2, 2)  # type: ignore[union-attr]
    assert careful.figures.flags == []
    assert fast.figures.median_seconds == 0.5
    assert fast.figures.left is not None and fast.figures.left.share == 1.0
    assert "too fast" in fast.figures.flags
    # fast chose left on the gold pairs: right only where A happened to be on the left
    assert fast.figures.gold is not None and fast.figures.gold.n == 2
    gold = {g.item.gold_outcome: (g.right, g.answers) for g in selectors.gold_items(audit)}
    assert gold["A"][1] == gold["B"][1] == 3


def test_it_shows_the_quality_table_and_gold_pairs_to_leads(
    qc_audit: dict[str, Any], lead_client: Client, annotator_client: Client
) -> None:
    audit = qc_audit["audit"]
    html = lead_client.get(f"/audits/{audit.pk}/").content.decode()
    assert 'data-testid="quality"' in html and 'data-annotator="fast"' in html
    fast_row = html.split('data-annotator="fast"')[1].split("</tr>")[0]
    assert "too fast" in fast_row and "0.5 s" in fast_row and "100%" in fast_row
    assert "the B answer cites the law" in html
    api = lead_client.get(f"/api/audits/{audit.pk}/quality/").json()
    fast = next(row for row in api if row["annotator"] == "fast")
    assert fast["flags"][0] == "too fast" and fast["left"]["share"] == 1.0
    assert annotator_client.get(f"/api/audits/{audit.pk}/quality/").status_code == 403


def test_it_adds_gold_pairs_from_the_page_and_names_the_bad_line(
    lead: User, annotator: User, lead_client: Client
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=2, pairs=4, k=1)
    spare = list(audit.dataset.pairs.exclude(audit_items__audit=audit).order_by("source_key"))
    bad = lead_client.post(
        f"/audits/{audit.pk}/gold/",
        {"lines": f"{spare[0].source_key}, A\n{spare[1].source_key}, C"},
        follow=True,
    )
    assert "line 2: &#x27;C&#x27; is not an answer" in bad.content.decode()
    assert not audit.items.gold().exists()
    good = lead_client.post(
        f"/audits/{audit.pk}/gold/",
        {"lines": f"{spare[0].source_key}, A, a note\n{spare[1].source_key}\ttie"},
        follow=True,
    )
    assert "2 gold pair(s) added. Set a gold rate above 0 to serve them." in good.content.decode()
    assert sorted(audit.items.gold().values_list("gold_outcome", flat=True)) == ["A", "tie"]


def test_it_keeps_quality_settings_and_gold_for_leads(
    lead: User,
    annotator: User,
    annotator_client: Client,
    outsider_client: Client,
    lead_client: Client,
) -> None:
    audit = make_audit(lead=lead, annotators=[annotator], n_items=2, pairs=3, k=1)
    spare = audit.dataset.pairs.exclude(audit_items__audit=audit).get()
    options = {
        "queue_policy": "spread_first",
        "gold_percent": "10",
        "qc_min_seconds": "2",
        "qc_min_gold_accuracy": "0.8",
        "blind_adjudication": "on",
    }
    for client in (annotator_client, outsider_client):
        assert client.post(f"/audits/{audit.pk}/options/", options).status_code == 403
        gold = client.post(f"/audits/{audit.pk}/gold/", {"lines": f"{spare.source_key}, A"})
        assert gold.status_code == 403
    assert Audit.objects.get(pk=audit.pk).gold_percent == 0
    assert lead_client.post(f"/audits/{audit.pk}/options/", options).status_code == 302
    saved = Audit.objects.get(pk=audit.pk)
    assert (saved.queue_policy, saved.gold_percent, saved.blind_adjudication) == (
        "spread_first",
        10,
        True,
    )
    assert (saved.qc_min_seconds, saved.qc_min_gold_accuracy) == (2.0, 0.8)
    too_much = lead_client.post(
        f"/audits/{audit.pk}/options/", {**options, "gold_percent": "80"}, follow=True
    )
    assert "Gold rate (%): Ensure this value is less than or equal to 50." in (
        too_much.content.decode()
    )
    assert Audit.objects.get(pk=audit.pk).gold_percent == 10
