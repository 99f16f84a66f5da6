"""Snapshots: the stored figures equal a direct computation, counts are kept, requests coalesce.

The fixture audit is written out below as plain data; the tests rebuild the vote table from
that data (not from the database) and compute the expected figures with analysis.metrics.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from analysis import selectors, services
from analysis.metrics import (
    S1,
    S2,
    code_votes,
    cohen_kappa,
    constant_answer_baseline,
    fleiss_kappa,
    human_ceiling,
    krippendorff_alpha,
    left_preference,
    percent_agreement,
    position_report,
)
from analysis.models import MetricSnapshot
from analysis.tasks import snapshot_refresh_task
from annotation.models import Adjudication, Audit, AuditItem, Label
from config.celery import app as celery_app
from config.roles import ensure_groups
from config.tasks import Job, coalesce_pending
from judges.models import Judge, ParseStatus, Verdict
from tests.factories import (
    DatasetFactory,
    JudgeFactory,
    LabelFactory,
    PairFactory,
    PromptFactory,
    UserFactory,
)

N_BOOT = 200
MODELS = ("alpha-7b", "beta-13b", "gamma-70b", "delta-8x7b")

# stratum, category, three annotators' labels (None: not labelled), judge 1 in both orders
# (None: failed), judge 2 in one order. Two pairs per prompt (items 2k and 2k+1).
ROWS: list[tuple[str, str, tuple[str | None, ...], tuple[str | None, str | None], str]] = [
    ("low_margin", "writing", ("A", "A", "B"), ("A", "A"), "A"),
    ("low_margin", "writing", ("B", "B", "B"), ("B", "A"), "B"),
    ("low_margin", "coding", ("tie", "A", None), ("A", "A"), "tie"),
    ("ethics_refusal", "coding", ("A", "B", "A"), ("B", "B"), "A"),
    ("ethics_refusal", "writing", ("B", "B", "tie"), ("B", "B"), "B"),
    ("ethics_refusal", "math", ("A", "A", "A"), ("A", "B"), "A"),
    ("random", "math", ("B", "A", "B"), ("tie", "tie"), "B"),
    ("random", "math", ("A", None, "A"), ("A", "A"), "tie"),
    ("random", "writing", ("both_bad", "tie", "B"), ("B", "B"), "B"),
    ("technical_refusal", "coding", ("B", "B", "A"), ("A", "A"), "B"),
    ("technical_refusal", "coding", ("A", "A", "A"), (None, None), "A"),
    ("random", "writing", (None, None, None), ("A", "A"), "A"),
]
ADJUDICATED = {6: "A"}  # item index -> the lead's outcome (the labels' majority is B)


@dataclass
class AuditData:
    audit: Audit
    pair_ids: list[int]
    prompt_of: dict[int, int]
    annotators: list[User]
    judges: list[Judge]
    rows: list[Any] = field(default_factory=list)

    @property
    def human_ids(self) -> list[str]:
        return [f"u:{u.pk}" for u in self.annotators]

    @property
    def judge_ids(self) -> list[str]:
        return [f"j:{j.pk}" for j in self.judges]


def combined(ab: str | None, ba: str | None) -> str | None:
    if ab is None or ba is None:
        return ab or ba
    return ab if ab == ba else "tie"


def build_audit(
    *,
    rows: list[Any] | None = None,
    judge_names: tuple[str, str] = ("gpt-4o judge", "llama-3 judge"),
    lead: User | None = None,
) -> AuditData:
    rows = ROWS if rows is None else rows
    lead_group, annotator_group = ensure_groups()
    lead = lead or UserFactory(username="audit-owner")
    lead.groups.add(lead_group)
    annotators = [UserFactory(username=f"annotator-{k}") for k in range(3)]
    for user in annotators:
        user.groups.add(annotator_group)
    dataset = DatasetFactory(name="refusals")
    judges = [
        JudgeFactory(name=judge_names[0], swap_policy=Judge.SwapPolicy.BOTH),
        JudgeFactory(name=judge_names[1], swap_policy=Judge.SwapPolicy.AB_ONLY),
    ]
    audit = Audit.objects.create(
        name="Refusal audit",
        dataset=dataset,
        created_by=lead,
        target_size=len(rows),
        overlap_k=3,
    )
    audit.judges.set(judges)
    audit.annotators.set(annotators)
    now = timezone.now()
    pair_ids: list[int] = []
    prompt_of: dict[int, int] = {}
    prompt = None
    for index, (stratum, category, labels, (ab, ba), second) in enumerate(rows):
        if index % 2 == 0:
            prompt = PromptFactory(dataset=dataset, category=category)
        a_model, b_model = MODELS[index % 4], MODELS[(index + 1 + index // 4) % 4]
        if a_model == b_model:
            b_model = MODELS[(index + 2) % 4]
        pair = PairFactory(
            prompt=prompt,
            category=category,
            response_a__model_name=a_model,
            response_b__model_name=b_model,
        )
        pair_ids.append(pair.pk)
        prompt_of[pair.pk] = prompt.pk
        item = AuditItem.objects.create(
            audit=audit, pair=pair, stratum=stratum, inclusion_probability=0.5, position=index
        )
        AuditItem.objects.filter(pk=item.pk).update(
            label_count=sum(label is not None for label in labels)
        )
        for k, (user, outcome) in enumerate(zip(annotators, labels, strict=True)):
            if outcome is None:
                continue
            LabelFactory(
                assignment__item=item,
                assignment__annotator=user,
                assignment__a_on_left=(index + k) % 2 == 0,
                assignment__served_at=now,
                outcome=outcome,
                submission_key=f"00000000-0000-0000-0000-{index:06d}{k:06d}",
            )
        Verdict.objects.create(
            judge=judges[0],
            pair=pair,
            outcome=combined(ab, ba),
            outcome_ab=ab,
            outcome_ba=ba,
            consistent=None if ab is None or ba is None else ab == ba,
            status_ab=ParseStatus.OK if ab else ParseStatus.FAILED,
            status_ba=ParseStatus.OK if ba else ParseStatus.FAILED,
        )
        Verdict.objects.create(
            judge=judges[1], pair=pair, outcome=second, outcome_ab=second, status_ab="ok"
        )
        if index in ADJUDICATED:
            Adjudication.objects.create(item=item, lead=lead, outcome=ADJUDICATED[index])
    return AuditData(audit, pair_ids, prompt_of, annotators, judges, rows)


def expected_votes(data: AuditData) -> pd.DataFrame:
    """The vote table rebuilt from the fixture's plain data, majority computed by hand."""
    records = []
    for index, (_, _, labels, (ab, ba), second) in enumerate(data.rows):
        item = data.pair_ids[index]
        prompt = data.prompt_of[item]
        for rater, outcome in zip(data.human_ids, labels, strict=True):
            if outcome is not None:
                records.append((item, rater, outcome, prompt))
        if combined(ab, ba) is not None:
            records.append((item, data.judge_ids[0], combined(ab, ba), prompt))
        records.append((item, data.judge_ids[1], second, prompt))
        votes = Counter("tie" if v == "both_bad" else v for v in labels if v is not None)
        if index in ADJUDICATED:
            majority: str | None = ADJUDICATED[index]
        elif votes:
            (top, count), *rest = votes.most_common()
            majority = "tie" if rest and rest[0][1] == count else top
        else:
            majority = None
        if majority is not None:
            records.append((item, "human_majority", majority, prompt))
    return pd.DataFrame.from_records(records, columns=["item", "rater", "value", "prompt"])


def same(stored: dict[str, Any], direct: Any) -> None:
    """A stored result equals the direct one: same value (or reason) and n."""
    if direct.defined:
        assert stored["value"] == pytest.approx(direct.value, abs=1e-6)
        assert stored["ci"][0] <= stored["value"] <= stored["ci"][1]
    else:
        assert stored["value"] is None
        assert stored["reason"] == direct.reason
    assert stored["n"] == direct.n


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()  # pending flags must not leak from one test to the next


@pytest.fixture
def data(db: None) -> AuditData:
    return build_audit()


def test_it_stores_figures_equal_to_a_direct_computation(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)

    votes = expected_votes(data)
    humans, majority = data.human_ids, ["human_majority"]
    figures = snapshot.metrics["figures"]
    for policy in (S1, S2):
        coded = code_votes(votes, policy=policy, cluster="prompt")
        stored = figures[policy.name]
        for judge in data.judge_ids:
            mine = stored["judges"][judge]
            same(
                mine["vs_humans"]["percent_agreement"],
                percent_agreement(coded, judge, reference=humans),
            )
            same(mine["vs_humans"]["cohen_kappa"], cohen_kappa(coded, judge, reference=humans))
            same(
                mine["vs_majority"]["percent_agreement"],
                percent_agreement(coded, judge, reference=majority),
            )
            same(mine["vs_majority"]["cohen_kappa"], cohen_kappa(coded, judge, reference=majority))
            for human in humans:
                same(
                    mine["vs_each_human"][human], percent_agreement(coded, judge, reference=[human])
                )
        same(stored["ceiling"]["percent_agreement"], human_ceiling(coded, humans=humans))
        same(stored["ceiling"]["fleiss_kappa"], fleiss_kappa(coded, raters=humans))
        same(stored["ceiling"]["krippendorff_alpha"], krippendorff_alpha(coded, raters=humans))
        same(stored["baseline"]["vs_humans"], constant_answer_baseline(coded, reference=humans))
        everyone = [*humans, *data.judge_ids]
        same(stored["all_raters"]["fleiss_kappa"], fleiss_kappa(coded, raters=everyone))


def test_it_computes_mt_bench_agreement_as_a_plain_count(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)

    # MT-Bench by hand: the judge's vote against every human vote; S2 drops any tie.
    agree = {"S1": 0, "S2": 0}
    pairs = {"S1": 0, "S2": 0}
    for _, _, labels, _, second in data.rows:
        for label in labels:
            if label is None:
                continue
            human = "tie" if label == "both_bad" else label
            pairs["S1"] += 1
            agree["S1"] += human == second
            if "tie" not in (human, second):
                pairs["S2"] += 1
                agree["S2"] += human == second
    for policy in ("S1", "S2"):
        stored = snapshot.metrics["figures"][policy]["judges"][data.judge_ids[1]]["vs_humans"]
        assert stored["percent_agreement"]["value"] == pytest.approx(
            agree[policy] / pairs[policy], abs=1e-6
        )
        assert stored["percent_agreement"]["details"]["pairs"] == pairs[policy]


def test_it_stores_the_counts_it_was_computed_from(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=0)

    labels = sum(1 for row in data.rows for label in row[2] if label is not None)
    assert snapshot.label_count == labels == Label.objects.filter(item__audit=data.audit).count()
    assert snapshot.counts["items"] == len(data.rows)
    assert snapshot.counts["humans"] == 3
    assert snapshot.counts["judges"] == 2
    assert snapshot.counts["verdicts"] == 2 * len(data.rows) - 1  # one failed parse
    assert snapshot.counts["unparsed_verdicts"] == 1
    assert snapshot.counts["adjudications"] == len(ADJUDICATED)
    assert snapshot.counts["watermark"]["labels"] == labels
    progress = snapshot.metrics["progress"]
    assert progress["items_complete"] == sum(
        all(label is not None for label in row[2]) for row in data.rows
    )
    assert progress["labels_needed"] == 3 * len(data.rows)
    assert {s["stratum"]: s["items"] for s in progress["strata"]} == dict(
        Counter(row[0] for row in data.rows)
    )


def test_it_computes_each_stratum_like_the_whole_table_restricted_to_it(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)

    votes = expected_votes(data)
    stratum_of = {data.pair_ids[i]: row[0] for i, row in enumerate(data.rows)}
    rows = {row["value"]: row for row in snapshot.metrics["slices"]["stratum"]["rows"]}
    assert set(rows) == set(stratum_of.values())
    for stratum, row in rows.items():
        subset = votes[votes["item"].map(stratum_of) == stratum]
        subset = subset[subset["rater"] != "human_majority"]
        assert row["items"] == sum(1 for s in stratum_of.values() if s == stratum)
        for policy in (S1, S2):
            coded = code_votes(subset, policy=policy, cluster="prompt")
            same(row["ceiling"][policy.name], human_ceiling(coded, humans=data.human_ids))
            for judge in data.judge_ids:
                same(
                    row["judges"][judge][policy.name],
                    percent_agreement(coded, judge, reference=data.human_ids),
                )
        coded = code_votes(subset, policy=S1, cluster="prompt")
        for judge in data.judge_ids:
            same(
                row["judges"][judge]["kappa_S1"],
                cohen_kappa(coded, judge, reference=data.human_ids),
            )


def test_it_reports_position_bias_of_judges_and_annotators(data: AuditData) -> None:
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)

    position = snapshot.metrics["position"]
    both = [(ab, ba) for _, _, _, (ab, ba), _ in data.rows]
    direct = position_report([ab for ab, _ in both], [ba for _, ba in both])
    stored = position["judges"][data.judge_ids[0]]
    assert stored["method"] == "both_orders"
    same(stored["consistency"], direct.consistency)
    assert (stored["primacy"], stored["recency"]) == (direct.primacy, direct.recency)
    assert position["judges"][data.judge_ids[1]]["consistency"]["reason"] == (
        "verdicts ran in one order only"
    )

    sides = []
    for index, row in enumerate(data.rows):
        for k, outcome in enumerate(row[2]):
            if outcome is not None:
                left = "A" if (index + k) % 2 == 0 else "B"
                sides.append((data.human_ids[k], outcome, left))
    expected = left_preference(pd.DataFrame(sides, columns=["rater", "value", "left"]))
    stored_sides = {a["rater"]: a for a in position["annotators"]}
    for rater, row in expected.iterrows():
        assert stored_sides[rater]["left"] == row["left"]
        assert stored_sides[rater]["rate"] == pytest.approx(row["rate"], abs=1e-6)


def test_it_lets_the_adjudication_override_the_majority(data: AuditData) -> None:
    table = selectors.audit_votes(data.audit)

    majority = table.votes[table.votes["rater"] == "human_majority"].set_index("item")["value"]
    index = next(iter(ADJUDICATED))
    assert majority[data.pair_ids[index]] == ADJUDICATED[index]
    assert majority[data.pair_ids[2]] == "tie"  # tie vs A: no strict majority
    assert data.pair_ids[-1] not in majority.index  # nobody labelled it


def test_it_says_undefined_with_the_reason_and_never_stores_nan(db: None) -> None:
    everyone_says_a = [("random", "writing", ("A", "A", "A"), ("A", "A"), "A")] * 4
    data = build_audit(rows=everyone_says_a)

    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)

    kappa = snapshot.metrics["figures"]["S1"]["judges"][data.judge_ids[0]]["vs_humans"]
    assert kappa["cohen_kappa"] == {
        "value": None,
        "reason": "only one category observed",
        "n": 4,
        "details": kappa["cohen_kappa"]["details"],
    }
    assert kappa["percent_agreement"]["value"] == 1.0
    json.dumps(snapshot.metrics, allow_nan=False)  # raises on NaN or infinity
    stored = MetricSnapshot.objects.get(pk=snapshot.pk)
    assert stored.metrics["figures"]["S1"]["ceiling"]["cohen_kappa"]["value"] is None


def test_it_computes_an_empty_audit_without_crashing(db: None) -> None:
    data = build_audit(rows=[("random", "writing", (None, None, None), ("A", "A"), "A")])

    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)

    ceiling = snapshot.metrics["figures"]["S1"]["ceiling"]["percent_agreement"]
    assert ceiling["value"] is None and ceiling["reason"] == "no items"
    assert snapshot.label_count == 0
    json.dumps(snapshot.metrics, allow_nan=False)


def test_it_keeps_history_for_the_trend(data: AuditData) -> None:
    first = services.snapshot_compute(audit=data.audit, n_boot=0)
    Label.objects.filter(item__audit=data.audit).order_by("-pk").first().delete()  # type: ignore[union-attr]
    second = services.snapshot_compute(audit=data.audit, n_boot=0)

    history = selectors.snapshot_history(audit=data.audit)
    assert [p["id"] for p in history] == [first.pk, second.pk]
    assert [p["label_count"] for p in history] == [first.label_count, first.label_count - 1]
    judge = data.judge_ids[1]
    assert (
        history[0]["judges"][judge]["S1"]
        == (
            first.metrics["figures"]["S1"]["judges"][judge]["vs_humans"]["percent_agreement"][
                "value"
            ]
        )
    )


def test_it_reads_imported_votes_per_voter_for_a_dataset(db: None) -> None:
    from corpus.models import HumanVote

    pair = PairFactory()
    judge = JudgeFactory(name="imported judge")
    Verdict.objects.create(judge=judge, pair=pair, outcome="A", outcome_ab="A", status_ab="ok")
    for k, (voter, outcome) in enumerate([("expert_1", "A"), ("expert_2", "B"), ("expert_1", "A")]):
        HumanVote.objects.create(
            pair=pair, source="mtbench_expert", voter_id=voter, outcome=outcome, row_hash=f"h{k}"
        )

    snapshot = services.snapshot_compute(dataset=pair.dataset, n_boot=0)

    # FastChat pools every vote: a voter's second vote on an item is another comparison.
    stored = snapshot.metrics["figures"]["S1"]["judges"][f"j:{judge.pk}"]["vs_humans"]
    assert stored["percent_agreement"]["value"] == pytest.approx(2 / 3)
    humans = {h["id"] for h in snapshot.metrics["raters"]["humans"]}
    assert humans == {"h:expert_1", "h:expert_2", "h:expert_1#2"}
    assert snapshot.label_count == 3


# --- requests, coalescing and the task ---------------------------------------------------------


def submitted_label(item: AuditItem, user: Any, outcome: str, key: str) -> None:
    """A label of ``user`` on ``item`` as if submitted just now (response A shown left)."""
    LabelFactory(
        assignment__item=item, assignment__annotator=user, outcome=outcome, submission_key=key
    )


def _label_once_more(data: AuditData, user: User, index: int) -> None:
    item = AuditItem.objects.get(audit=data.audit, pair_id=data.pair_ids[index])
    submitted_label(item, user, "A", f"10000000-0000-0000-0000-{index:012d}")


def test_it_recomputes_once_for_a_burst_of_label_commits(
    data: AuditData,
    django_capture_on_commit_callbacks: Callable[..., Any],
    tasks_sent: list[Job],
) -> None:
    newcomers = [UserFactory(username=f"burst-{k}") for k in range(10)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for k, user in enumerate(newcomers):
            with transaction.atomic():  # one label = one transaction, as label_submit does
                _label_once_more(data, user, k)
                services.snapshot_request(audit=data.audit)
    assert len(callbacks) == 10
    assert tasks_sent == []  # nothing is sent before the commit

    for callback in callbacks:
        callback()

    assert [(job.name, job.kwargs) for job in tasks_sent] == [
        (services.SNAPSHOT_TASK, {"kind": "audit", "pk": data.audit.pk, "force": False})
    ]
    assert tasks_sent[0].countdown == services.snapshot_delay()
    snapshot_refresh_task(**tasks_sent[0].kwargs)  # the one run, after the burst committed
    snapshot = MetricSnapshot.objects.get()
    assert snapshot.label_count == Label.objects.filter(item__audit=data.audit).count()


def test_it_schedules_one_run_while_one_is_pending(
    data: AuditData,
    django_capture_on_commit_callbacks: Callable[..., Any],
    tasks_sent: list[Job],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(10):
            services.snapshot_request(audit=data.audit)
    assert len(tasks_sent) == 1
    assert services.snapshot_pending(audit=data.audit)

    services.snapshot_refresh(kind="audit", pk=data.audit.pk)  # the run clears the flag
    assert not services.snapshot_pending(audit=data.audit)
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)
    assert len(tasks_sent) == 2


@pytest.mark.usefixtures("tasks_inline")
def test_it_recomputes_on_request_when_forced_even_if_nothing_changed(
    data: AuditData, django_capture_on_commit_callbacks: Callable[..., Any], settings: Any
) -> None:
    settings.TRIBUNAL_SNAPSHOT_BOOT = 0
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit, force=True)
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 2


def test_it_never_fails_the_caller_when_the_broker_is_down(
    data: AuditData, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    with (
        mock.patch.object(
            celery_app, "send_task", side_effect=ConnectionError("no broker")
        ) as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.snapshot_request(audit=data.audit)
    assert send.call_count == 1
    assert MetricSnapshot.objects.count() == 0


def test_it_sends_every_request_to_the_broker_when_the_cache_is_not_shared(
    data: AuditData, settings: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.TRIBUNAL_SNAPSHOT_DELAY = 0.25
    with (
        mock.patch.object(celery_app, "send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.snapshot_request(audit=data.audit)
        services.snapshot_request(audit=data.audit)
    # A local-memory cache cannot be cleared by a worker, so no flags: each request is sent.
    assert send.call_count == 2
    assert send.call_args.args == ("analysis.snapshot_refresh",)  # by name: see config.tasks
    assert send.call_args.kwargs == {
        "args": (),
        "kwargs": {"kind": "audit", "pk": data.audit.pk, "force": False},
        "countdown": 0.25,
        "retry": False,  # a broker that is away must not hold the request (config.tasks)
    }


def test_it_runs_the_task_idempotently(data: AuditData, settings: Any) -> None:
    settings.TRIBUNAL_SNAPSHOT_BOOT = 0
    first = snapshot_refresh_task.apply(kwargs={"kind": "audit", "pk": data.audit.pk}).get()
    again = snapshot_refresh_task.apply(kwargs={"kind": "audit", "pk": data.audit.pk}).get()
    gone = snapshot_refresh_task.apply(kwargs={"kind": "audit", "pk": 10**9}).get()

    assert first == MetricSnapshot.objects.get().pk
    assert again is None and gone is None


def test_a_busy_subject_gets_one_snapshot_per_interval_and_its_labels_wait_on_one_run(
    data: AuditData,
    settings: Any,
    tasks_sent: list[Job],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """TRIBUNAL_SNAPSHOT_INTERVAL: a run that comes less than the interval after the subject's
    last snapshot ended computes nothing, sends itself again for when the interval is over, and
    keeps the pending flag up, so the labels of the wait still send no task of their own."""
    settings.TRIBUNAL_SNAPSHOT_BOOT = 0
    settings.TRIBUNAL_SNAPSHOT_INTERVAL = 5
    first = services.snapshot_refresh(kind="audit", pk=data.audit.pk)
    assert first is not None

    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)  # a label right after: sends a run
    assert [job.countdown for job in tasks_sent] == [services.snapshot_delay()]
    key = services.coalesce_key("audit", data.audit.pk)

    with django_capture_on_commit_callbacks(execute=True):  # a worker is in no transaction
        assert services.snapshot_refresh(kind="audit", pk=data.audit.pk) is None  # too soon
    assert MetricSnapshot.objects.filter(audit=data.audit).count() == 1
    again = tasks_sent[-1]
    assert (again.name, again.kwargs) == (
        "analysis.snapshot_refresh",
        {"kind": "audit", "pk": data.audit.pk, "force": False},
    )
    assert again.coalesce is None  # the flag is the first run's, still up
    assert again.countdown is not None and 4.0 < again.countdown <= 5.0
    assert coalesce_pending(key)
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshot_request(audit=data.audit)  # labels during the wait: no new task
    assert len(tasks_sent) == 2

    # The interval is over: the run releases the flag and computes.
    MetricSnapshot.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(seconds=6)
    )
    second = services.snapshot_refresh(**again.kwargs)  # the run sent for later
    assert second is None  # nothing changed since the first: the watermark says so
    assert not coalesce_pending(key)
    Label.objects.filter(item__audit=data.audit).first().delete()  # something changes
    assert services.snapshot_refresh(kind="audit", pk=data.audit.pk) is not None


def test_the_interval_never_holds_back_a_forced_run_or_inline_tasks(
    data: AuditData, settings: Any, tasks_sent: list[Job]
) -> None:
    settings.TRIBUNAL_SNAPSHOT_BOOT = 0
    settings.TRIBUNAL_SNAPSHOT_INTERVAL = 5
    assert services.snapshot_refresh(kind="audit", pk=data.audit.pk) is not None
    # the report's Recompute button
    assert services.snapshot_refresh(kind="audit", pk=data.audit.pk, force=True) is not None
    settings.TRIBUNAL_TASKS_INLINE = True  # a countdown is ignored inline: no waiting there
    assert services.snapshot_interval() == 0
    assert services.snapshot_refresh(kind="audit", pk=data.audit.pk, force=True) is not None
    assert tasks_sent == []
    settings.TRIBUNAL_TASKS_INLINE = False
    settings.TRIBUNAL_SNAPSHOT_INTERVAL = 3600  # never longer than the pending flag lives
    assert services.snapshot_interval() == 30


def _plain_majority(labels: tuple[str | None, ...]) -> str | None:
    """The people's majority as the report defines it: a strict majority of the votes, else a
    tie; both_bad counts as a tie; nobody labelled: none."""
    votes = ["tie" if v == "both_bad" else v for v in labels if v is not None]
    if not votes:
        return None
    top = max(set(votes), key=votes.count)
    return top if votes.count(top) * 2 > len(votes) else "tie"


def test_it_reports_agreement_in_both_orders_and_position_by_slice_as_plain_counts(
    data: AuditData,
) -> None:
    """Issue 12 item 6, beside S1/S2: a pair counts as right in both orders only when the
    verdict with A first and the one with B first each equal the people's majority (the
    adjudication where there is one); each order alone; position consistency per category."""
    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)
    orders = snapshot.metrics["position"]["judges"][data.judge_ids[0]]["orders"]

    both = ab_right = ba_right = n = 0
    by_category: dict[str, list[int]] = {}
    for index, (_, category, labels, (ab, ba), _) in enumerate(data.rows):
        truth = ADJUDICATED.get(index) or _plain_majority(labels)
        if ab is not None and ba is not None:
            kept = by_category.setdefault(category, [0, 0])
            kept[0] += ab == ba
            kept[1] += 1
            if truth is not None:
                n += 1
                both += ab == truth and ba == truth
                ab_right += ab == truth
                ba_right += ba == truth
    agreement = orders["agreement"]
    assert agreement["n"] == n
    assert agreement["both_orders"]["value"] == pytest.approx(both / n)
    assert agreement["original_order"]["value"] == pytest.approx(ab_right / n)
    assert agreement["swapped_order"]["value"] == pytest.approx(ba_right / n)
    assert agreement["both_orders"]["details"]["right"] == both
    low, high = agreement["both_orders"]["ci"]
    assert low <= both / n <= high
    per_category = orders["by_slice"]["category"]
    assert set(per_category) == set(by_category)
    for category, (kept, total) in by_category.items():
        assert per_category[category]["value"] == pytest.approx(kept / total)
        assert per_category[category]["n"] == total
    # One order only: no such figures for the second judge.
    assert "orders" not in snapshot.metrics["position"]["judges"][data.judge_ids[1]]


def test_the_report_shows_agreement_in_both_orders_beside_s1_s2(
    data: AuditData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client

    from analysis import report_summary

    monkeypatch.setattr(report_summary, "MIN_SLICE_ITEMS", 4)  # the fixture's slices are small

    snapshot = services.snapshot_compute(audit=data.audit, n_boot=N_BOOT)
    agreement = snapshot.metrics["position"]["judges"][data.judge_ids[0]]["orders"]["agreement"]
    client = Client()
    client.force_login(data.audit.created_by)
    page = client.get(f"/reports/audit/{data.audit.pk}/").content.decode()
    table = page[page.index('data-testid="order-agreement"') :]
    table = table[: table.index("</table>")]
    assert "gpt-4o judge" in table and "llama-3 judge" not in table  # one order only: no row
    assert f">{agreement['both_orders']['value']:.3f}<" in table
    assert "Position consistency of gpt-4o judge v1 by slice" in page
    by_slice = page[page.index("Position consistency of gpt-4o judge v1 by slice") :]
    # writing (5 pairs in both orders) shown; coding and math (3 each) folded: 6 pairs, 5 kept
    assert ">writing<" in by_slice and "other (n = 6 pairs in 2 slices)" in by_slice
    assert ">0.833<" in by_slice
