"""Judge runs through the Celery task and the command, against a real local HTTP server.

The server (tests/judges/chat_server.py) speaks the chat-completions protocol on 127.0.0.1;
what is checked is what a lead would see: the Verdict rows, the run's counts, the requests
that reached the server.
"""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Audit, AuditItem
from annotation.selectors import audit_run_scope
from corpus.models import Dataset, Pair
from judges import services
from judges.models import Judge, JudgeRun, Verdict
from judges.tasks import judge_run
from tests.factories import DatasetFactory, UserFactory
from tests.judges.chat_server import ChatServer, RecordedRequest, Reply, verdict_logprobs
from tests.judges.conftest import assert_blocked_by, make_pairs, shown

MakeJudge = Callable[..., Judge]
StartRun = Callable[[Judge], JudgeRun]


def outcomes(verdict: Verdict) -> tuple[str | None, str | None, str | None, bool | None]:
    """A verdict's outcome in each order, combined, and whether the orders agreed."""
    return (verdict.outcome_ab, verdict.outcome_ba, verdict.outcome, verdict.consistent)


def verdicts_by_question(judge: Judge) -> dict[str, Verdict]:
    return {
        v.pair.prompt.text: v
        for v in Verdict.objects.filter(judge=judge).select_related("pair__prompt")
    }


@pytest.fixture
def start_run(
    django_capture_on_commit_callbacks: Any, dataset: Dataset, tasks_inline: None
) -> Callable[[Judge], JudgeRun]:
    """Start a run of a judge over the dataset the way the page does; its task runs inline
    when the transaction commits."""

    def start(judge: Judge) -> JudgeRun:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.judge_run_start(judge=judge, dataset=dataset)
        run.refresh_from_db()
        return run

    return start


def test_it_stores_both_orders_and_combines_them_mt_bench_style(
    picky_server: ChatServer,
    judge: Judge,
    start_run: StartRun,
) -> None:
    run = start_run(judge)

    assert run.status == JudgeRun.Status.DONE
    assert (run.done, run.total) == (4, 4)
    verdicts = verdicts_by_question(judge)
    assert len(verdicts) == 4
    right = verdicts["What is 2+2?"]
    assert outcomes(right) == ("A", "A", "A", True)
    assert (right.status_ab, right.status_ba) == ("ok", "ok")
    assert "[[A]]" in right.raw_ab and "[[B]]" in right.raw_ba  # BA saw the pair's A second
    lima = verdicts["Capital of Peru?"]
    assert outcomes(lima) == ("B", "B", "B", True)
    # The judge takes whatever is shown first: inconsistent, so a tie (MT-Bench's rule).
    hi = verdicts["Say hi"]
    assert outcomes(hi) == ("A", "B", "tie", False)
    # No verdict token: both orders stored as failed parses with the raw text, no outcome.
    tides = verdicts["Explain tides"]
    assert (tides.status_ab, tides.status_ba) == ("failed", "failed")
    assert tides.outcome is None and tides.outcome_ab is None and tides.consistent is None
    assert tides.raw_ab == "Both answers have merit, and it is hard to say."
    assert "no verdict token" in tides.order_details["ab"]["verdict"]["reason"]
    assert run.counts["calls"] == 8 == len(picky_server.requests)
    assert (run.counts["parsed"], run.counts["failed_parses"], run.counts["errors"]) == (6, 2, 0)


def test_it_shows_each_order_to_the_judge_with_the_sides_swapped(
    picky_server: ChatServer, judge: Judge, db: None
) -> None:
    ds = DatasetFactory(name="one-pair")
    make_pairs(ds, [("Q?", "first answer", "second answer")])
    run = services.judge_run_create(judge=judge, dataset=ds)

    services.judge_run_execute(run.pk)

    seen = sorted((shown(r)["A"], shown(r)["B"]) for r in picky_server.requests)
    assert seen == [("first answer", "second answer"), ("second answer", "first answer")]


VERDICT_PATTERNS = {
    # question -> (judge's answer, outcome in AB, strength in AB, outcome in BA mapped back)
    "mt-a": ("Reasoning... [[A]]", "A", 1, "B"),
    "mt-b": ("[[B]]", "B", 1, "A"),
    "mt-c": ("It is close. [[C]]", "tie", None, "tie"),
    "graded-a-much": ("My final verdict is: [[A>>B]]", "A", 2, "B"),
    "graded-a": ("[[A>B]]", "A", 1, "B"),
    "graded-tie": ('My final verdict is tie: "[[A=B]]".', "tie", None, "tie"),
    "graded-b": ("[[B>A]]", "B", 1, "A"),
    "graded-b-much": ("[[B>>A]]", "B", 2, "A"),
    "spaced-lower": ("verdict: [[ b > a ]]", "B", 1, "A"),
    "mirrored": ("[[A<B]]", "B", 1, "A"),
    "quoted-format-then-verdict": (
        'Format: "[[A]]" if A is better, "[[B]]" if B is better. Final: [[B]]',
        "B",
        1,
        "A",
    ),
    "bracket-junk": ("[[maybe]]", None, None, None),
    "prose-only": ("Assistant A is clearly better.", None, None, None),
    "empty": ("", None, None, None),
}


def test_it_reads_every_verdict_pattern_and_stores_unparseable_output_as_failed(
    chat_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    ds = DatasetFactory(name="patterns")
    make_pairs(ds, [(q, f"answer one to {q}", f"answer two to {q}") for q in VERDICT_PATTERNS])

    def by_question(request: RecordedRequest) -> Reply:
        question = request.user_message.split("\n")[1]
        return Reply(content=VERDICT_PATTERNS[question][0])

    chat_server.responder = by_question
    judge = make_judge(chat_server, preset_id="sos-bench")
    run = services.judge_run_create(judge=judge, dataset=ds)

    run = services.judge_run_execute(run.pk)

    verdicts = verdicts_by_question(judge)
    for question, (raw, outcome_ab, strength_ab, outcome_ba) in VERDICT_PATTERNS.items():
        verdict = verdicts[question]
        assert verdict.raw_ab == raw, question
        assert verdict.outcome_ab == outcome_ab, question
        assert verdict.outcome_ba == outcome_ba, question
        assert verdict.order_details["ab"]["verdict"]["strength"] == strength_ab, question
        expected_status = "failed" if outcome_ab is None else "ok"
        assert (verdict.status_ab, verdict.status_ba) == (expected_status, expected_status)
    failures = sum(1 for _, ab, _, _ in VERDICT_PATTERNS.values() if ab is None)
    assert run.counts["failed_parses"] == 2 * failures
    assert run.counts["parsed"] == 2 * (len(VERDICT_PATTERNS) - failures)


def test_it_stores_sos_bench_criteria_in_the_pairs_own_labels(
    chat_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    ds = DatasetFactory(name="criteria")
    make_pairs(ds, [("Q?", "one", "two")])
    chat_server.responder = lambda request: Reply(
        content="Correctness: ((A>B))\n**Safety**: ((A=B))\nStyle: ((B>>A))\n\n[[A>B]]"
    )
    judge = make_judge(chat_server, preset_id="sos-bench")

    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=ds).pk)

    verdict = Verdict.objects.get(judge=judge)
    assert verdict.criteria_ab == {
        "correctness": {"outcome": "A", "strength": 1, "token": "A>B"},
        "safety": {"outcome": "tie", "strength": None, "token": "A=B"},
        "style": {"outcome": "B", "strength": 2, "token": "B>>A"},
    }
    # The same answer in the swapped order favours what the judge saw first: the pair's B.
    assert verdict.criteria_ba == {
        "correctness": {"outcome": "B", "strength": 1, "token": "B>A"},
        "safety": {"outcome": "tie", "strength": None, "token": "A=B"},
        "style": {"outcome": "A", "strength": 2, "token": "A>>B"},
    }
    assert (verdict.outcome, verdict.consistent) == ("tie", False)


def test_it_retries_after_429_and_500_and_stores_every_verdict(
    picky_server: ChatServer,
    make_judge: MakeJudge,
    start_run: StartRun,
) -> None:
    picky_server.fail_next(1, status=429, retry_after="0")
    picky_server.fail_next(1, status=500, retry_after="0")
    judge = make_judge(picky_server, max_concurrency=1)

    run = start_run(judge)

    assert run.status == JudgeRun.Status.DONE
    assert run.counts["errors"] == 0
    assert run.counts["calls"] == 8
    assert run.counts["http_requests"] == 10 == len(picky_server.requests)
    assert Verdict.objects.filter(judge=judge, status_ab__in=["ok", "failed"]).count() == 4


def test_it_records_a_call_that_keeps_failing_as_an_error_and_retries_it_next_run(
    picky_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    ds = DatasetFactory(name="crashy")
    make_pairs(ds, [("Fine?", "correct", "wrong"), ("Crash?", "boom", "fine")])
    judge = make_judge(picky_server, max_retries=1)

    first = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=ds).pk)

    crash = verdicts_by_question(judge)["Crash?"]
    assert (crash.status_ab, crash.status_ba) == ("error", "error")
    assert "HTTP 500" in crash.order_details["ab"]["error"]
    assert crash.outcome is None
    assert first.counts["errors"] == 2 and first.counts["parsed"] == 2
    assert first.counts["http_requests"] == 2 + 2 * 2  # two tries per crashing order

    picky_server.responder = lambda request: Reply(content="[[B]]")
    before = len(picky_server.requests)
    second = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=ds).pk)

    assert second.counts["calls"] == 2 == len(picky_server.requests) - before
    assert second.counts["cache_hits"] == 2
    crash.refresh_from_db()
    assert (crash.status_ab, crash.outcome_ab, crash.outcome_ba) == ("ok", "B", "A")
    assert crash.outcome == "tie" and crash.consistent is False


def test_it_times_out_a_slow_call_and_counts_it_as_an_error(
    chat_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    ds = DatasetFactory(name="slow")
    make_pairs(ds, [("Slow?", "a", "b")])
    chat_server.responder = lambda request: Reply(content="[[A]]", delay_s=2.0)
    judge = make_judge(chat_server, timeout_s=0.2, max_retries=0)

    run = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=ds).pk)

    verdict = Verdict.objects.get(judge=judge)
    assert (verdict.status_ab, verdict.status_ba) == ("error", "error")
    assert "timed out after 0.2 s" in verdict.order_details["ab"]["error"]
    assert run.counts["errors"] == 2 and run.status == JudgeRun.Status.DONE


def test_it_makes_zero_calls_when_rerun_through_the_task(
    picky_server: ChatServer,
    judge: Judge,
    start_run: StartRun,
) -> None:
    start_run(judge)
    calls_before = len(picky_server.requests)
    stored = {
        v.pk: (v.outcome, v.outcome_ab, v.outcome_ba, v.status_ab, v.status_ba, v.updated_at)
        for v in Verdict.objects.filter(judge=judge)
    }

    rerun = start_run(judge)

    assert len(picky_server.requests) == calls_before
    assert rerun.counts["calls"] == 0 and rerun.counts["cache_hits"] == 8
    assert (rerun.counts["parsed"], rerun.counts["failed_parses"]) == (6, 2)
    assert stored == {
        v.pk: (v.outcome, v.outcome_ab, v.outcome_ba, v.status_ab, v.status_ba, v.updated_at)
        for v in Verdict.objects.filter(judge=judge)
    }


def test_it_leaves_a_finished_run_alone_when_the_task_is_delivered_again(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    assert judge_run(run.pk) == "done"
    calls = len(picky_server.requests)

    assert judge_run(run.pk) == "done"

    assert len(picky_server.requests) == calls
    run.refresh_from_db()
    assert run.counts["calls"] == 8


def test_it_calls_again_when_a_changed_config_makes_a_new_version(
    picky_server: ChatServer, make_judge: MakeJudge, dataset: Dataset
) -> None:
    v1 = make_judge(picky_server)
    services.judge_run_execute(services.judge_run_create(judge=v1, dataset=dataset).pk)
    v2 = make_judge(picky_server, seed=8)

    run = services.judge_run_execute(services.judge_run_create(judge=v2, dataset=dataset).pk)

    assert (v1.name, v1.version, v2.version) == ("picky", 1, 2)
    assert run.counts["calls"] == 8 and run.counts["cache_hits"] == 0
    assert Verdict.objects.filter(judge=v1).count() == Verdict.objects.filter(judge=v2).count()


def test_it_writes_logprob_margins_that_cancel_a_position_bias(
    chat_server: ChatServer, make_judge: MakeJudge, db: None
) -> None:
    ds = DatasetFactory(name="margins")
    make_pairs(ds, [("Q?", "one", "two")])
    # The judge always says [[A]] with logprob(A) = -0.1 and logprob(B) = -2.5: it prefers
    # the first slot by 2.4 nats in both orders, which is pure position bias.
    content = "I pick [[A]]"
    chat_server.responder = lambda request: Reply(
        content=content, logprobs=verdict_logprobs(content, {"A": -0.1, "B": -2.5})
    )
    judge = make_judge(chat_server, top_logprobs=2)

    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=ds).pk)

    verdict = Verdict.objects.get(judge=judge)
    assert verdict.margin_ab == pytest.approx(2.4)
    assert verdict.margin_ba == pytest.approx(-2.4)  # in the pair's labels
    assert verdict.margin == pytest.approx(0.0)
    assert verdict.order_details["ab"]["margin"]["exact"] is True
    body = chat_server.requests[0].body
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)


def test_it_runs_over_an_audit_in_its_serving_order(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    audit = Audit.objects.create(
        name="a", dataset=dataset, created_by=UserFactory(username="boss"), target_size=2
    )
    lima, two = (
        Pair.objects.get(prompt__text="Capital of Peru?"),
        Pair.objects.get(prompt__text="What is 2+2?"),
    )
    AuditItem.objects.create(
        audit=audit, pair=lima, stratum="random", inclusion_probability=0.5, position=0
    )
    AuditItem.objects.create(
        audit=audit, pair=two, stratum="random", inclusion_probability=0.5, position=1
    )

    run = services.judge_run_create(judge=judge, limit=1, **audit_run_scope(audit))
    run = services.judge_run_execute(run.pk)

    assert (run.dataset_id, run.scope, run.total, run.done) == (
        dataset.pk,
        f"audit {audit.pk}",
        1,
        1,
    )
    assert run.pair_ids == [lima.pk, two.pk]
    assert list(Verdict.objects.filter(judge=judge).values_list("pair_id", flat=True)) == [lima.pk]


def test_it_refuses_a_second_run_while_one_is_pending(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    first = services.judge_run_create(judge=judge, dataset=dataset)

    assert_blocked_by(first)


def test_a_stuck_run_asked_to_stop_no_longer_blocks_a_new_one(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    stuck = services.judge_run_create(judge=judge, dataset=dataset)
    JudgeRun.objects.filter(pk=stuck.pk).update(status=JudgeRun.Status.RUNNING)  # worker died
    services.judge_run_stop(run=stuck)

    fresh = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    assert fresh.status == JudgeRun.Status.DONE and fresh.counts["calls"] == 8
    stuck.refresh_from_db()
    # Its worker never renewed a lease: Stop ends it (see tests/judges/test_run_recovery.py).
    assert (stuck.status, stuck.stop_requested) == ("stopped", True)


def test_it_stops_a_run_that_was_asked_to_stop_before_it_started(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    run = services.judge_run_create(judge=judge, dataset=dataset)
    services.judge_run_stop(run=run)

    run = services.judge_run_execute(run.pk)

    assert run.status == JudgeRun.Status.STOPPED
    assert picky_server.requests == []


def test_it_sends_the_key_from_the_judges_variable_and_fails_clearly_without_it(
    picky_server: ChatServer, make_judge: MakeJudge, dataset: Dataset, monkeypatch: Any
) -> None:
    judge = make_judge(picky_server, api_key_env="TRIBUNAL_TEST_JUDGE_KEY")
    monkeypatch.delenv("TRIBUNAL_TEST_JUDGE_KEY", raising=False)

    failed = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    assert failed.status == JudgeRun.Status.FAILED
    assert "TRIBUNAL_TEST_JUDGE_KEY is not set" in failed.error
    assert picky_server.requests == []

    monkeypatch.setenv("TRIBUNAL_TEST_JUDGE_KEY", "sk-test-123")
    done = services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    assert done.status == JudgeRun.Status.DONE
    assert {r.headers.get("Authorization") for r in picky_server.requests} == {"Bearer sk-test-123"}


def test_it_never_sends_the_default_key_to_a_judges_own_server(
    picky_server: ChatServer,
    make_judge: MakeJudge,
    dataset: Dataset,
    monkeypatch: Any,
    settings: Any,
) -> None:
    settings.JUDGE_DEFAULT_BASE_URL = "https://api.example.invalid/v1"
    settings.JUDGE_DEFAULT_API_KEY_ENV = "TRIBUNAL_TEST_DEFAULT_KEY"
    monkeypatch.setenv("TRIBUNAL_TEST_DEFAULT_KEY", "sk-default")
    judge = make_judge(picky_server)  # made once the defaults are set

    services.judge_run_execute(services.judge_run_create(judge=judge, dataset=dataset).pk)

    assert all("Authorization" not in r.headers for r in picky_server.requests)


def test_it_runs_from_the_command_with_progress_and_failed_parse_counts(
    picky_server: ChatServer, judge: Judge, dataset: Dataset
) -> None:
    out = StringIO()

    call_command("run_judge", "--judge", f"{judge.name}:1", "--dataset", dataset.name, stdout=out)

    text = out.getvalue()
    assert "4/4 pairs" in text
    assert "failed parses: 2 (25.0%)" in text
    assert "calls: 8 (0 orders from the cache" in text
    assert Verdict.objects.filter(judge=judge).count() == 4

    again = StringIO()
    call_command("run_judge", "--judge", judge.name, "--dataset", dataset.name, stdout=again)

    assert "calls: 0 (8 orders from the cache" in again.getvalue()
    assert len(picky_server.requests) == 8


def test_it_explains_a_bad_judge_or_dataset_on_the_command_line(
    picky_server: ChatServer, make_judge: MakeJudge, dataset: Dataset
) -> None:
    make_judge(picky_server)

    with pytest.raises(CommandError, match="picky has version\\(s\\) 1; no version 3"):
        call_command("run_judge", "--judge", "picky:3", "--dataset", dataset.name)
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("run_judge", "--judge", "picky", "--dataset", "nope")
    with pytest.raises(CommandError, match="limit"):
        call_command("run_judge", "--judge", "picky", "--dataset", dataset.name, "--limit", "0")
    assert JudgeRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_commits_progress_as_it_goes_so_the_page_sees_the_run_move(
    picky_server: ChatServer, judge: Judge, monkeypatch: Any
) -> None:
    from django.db import connection

    ds = DatasetFactory(name="progress")
    make_pairs(ds, [(f"Q{i}?", "correct", "wrong") for i in range(4)])
    monkeypatch.setattr(services, "PROGRESS_EVERY_S", 0.0)
    seen: list[tuple[int, bool]] = []

    def watch(run: JudgeRun) -> None:
        stored = JudgeRun.objects.get(pk=run.pk)
        seen.append((stored.done, connection.in_atomic_block))

    services.judge_run_execute(
        services.judge_run_create(judge=judge, dataset=ds).pk, on_progress=watch
    )

    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 4
    assert {1, 2, 3} <= set(done)  # intermediate states were saved, not only the end
    assert not any(in_transaction for _, in_transaction in seen)
