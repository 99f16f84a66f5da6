from __future__ import annotations

import json
import random
from typing import Any

import pytest

from judges.core.client import ChatClient
from judges.core.config import JudgeConfig, JudgeConfigError
from judges.core.runner import (
    OrderResult,
    PairPayload,
    PairResult,
    RunCounts,
    run_judge,
)
from judges.core.templates import FORCE_CHOICE_INSTRUCTION, ORDERS, Order
from tests.judges.chat_server import (
    ChatServer,
    RecordedRequest,
    Reply,
    chat_server,
    verdict_logprobs,
)
from tests.judges.conftest import picky_judge, shown
from tests.judges.test_core_config import make_config

__all__ = ["chat_server"]  # the fixture, re-exported for pytest

PAIRS = [
    PairPayload(1, "2+2?", "4, which is correct", "5"),  # A wins in both orders
    PairPayload(2, "Capital of Peru?", "Quito", "Lima is correct"),  # B wins in both orders
    PairPayload(3, "Say hi", "hi", "hello"),  # judge takes the first slot: inconsistent
    PairPayload(4, "Explain", "ramble on", "fine"),  # no verdict: failed parse both orders
]


class Cache:
    """The lead's storage, reduced to a dict of JSON rows keyed like the database."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, Any, Order], str] = {}
        self.stored: list[OrderResult] = []

    def lookup(self, fingerprint: str, pair_id: Any, order: Order) -> OrderResult | None:
        row = self.rows.get((fingerprint, pair_id, order))
        return None if row is None else OrderResult.from_dict(json.loads(row))

    def store(self, result: OrderResult) -> None:
        self.stored.append(result)
        key = (result.fingerprint, result.pair_id, result.order)
        self.rows[key] = json.dumps(result.to_dict())


def quick_client(server: ChatServer, config: JudgeConfig) -> ChatClient:
    """The runner's client with sleeps recorded instead of slept."""
    return ChatClient(
        server.base_url,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        max_concurrency=config.max_concurrency,
        sleep=lambda seconds: None,
        rng=random.Random(0),
    )


def run(
    server: ChatServer, config: JudgeConfig, cache: Cache, pairs: list[PairPayload] = PAIRS
) -> tuple[RunCounts, dict[Any, PairResult], list[RunCounts]]:
    verdicts: dict[Any, PairResult] = {}
    snapshots: list[RunCounts] = []
    with quick_client(server, config) as client:
        counts = run_judge(
            config,
            pairs,
            lookup=cache.lookup,
            store=cache.store,
            progress=snapshots.append,
            on_pair=lambda result: verdicts.__setitem__(result.pair_id, result),
            client=client,
        )
    return counts, verdicts, snapshots


def test_it_judges_both_orders_and_combines_them(chat_server: ChatServer) -> None:
    chat_server.responder = picky_judge
    config = make_config(base_url=chat_server.base_url)
    cache = Cache()
    counts, verdicts, snapshots = run(chat_server, config, cache)

    assert len(chat_server.requests) == 8
    assert counts.as_dict() == {
        "total": 8,
        "done": 8,
        "calls_made": 8,
        "http_requests": 8,
        "cache_hits": 0,
        "parsed": 6,
        "failed_parse": 2,
        "errors": 0,
        "stopped": False,
    }
    assert {(r.pair_id, r.order) for r in cache.stored} == {
        (p.pair_id, o) for p in PAIRS for o in ORDERS
    }
    combined = {pid: v.combined for pid, v in verdicts.items()}
    assert (combined[1].outcome, combined[1].consistent) == ("A", True)
    assert (combined[2].outcome, combined[2].consistent) == ("B", True)
    assert (combined[3].outcome, combined[3].consistent) == ("tie", False)
    assert (combined[3].outcome_ab, combined[3].outcome_ba) == ("A", "B")
    assert combined[4].status == "failed" and combined[4].outcome is None
    # the BA call really showed the pair's B first
    ba_request = next(r for r in chat_server.requests if shown(r).get("A") == "Lima is correct")
    assert shown(ba_request)["B"] == "Quito"
    assert snapshots[-1].done == snapshots[-1].total == 8
    assert [s.done for s in snapshots] == list(range(1, 9))


def test_it_stores_failed_parses_with_the_raw_output_and_reason(chat_server: ChatServer) -> None:
    chat_server.responder = picky_judge
    cache = Cache()
    run(chat_server, make_config(base_url=chat_server.base_url), cache)
    failed = [r for r in cache.stored if r.status == "failed"]
    assert {(r.pair_id, r.order) for r in failed} == {(4, "ab"), (4, "ba")}
    for result in failed:
        assert result.raw_output == "Both answers have merit, and it is hard to say."
        assert result.verdict is not None and "no verdict token" in result.verdict.reason
        assert result.outcome is None


def test_a_rerun_with_the_cache_makes_no_http_calls(chat_server: ChatServer) -> None:
    chat_server.responder = picky_judge
    config = make_config(base_url=chat_server.base_url)
    cache = Cache()
    first, first_verdicts, _ = run(chat_server, config, cache)
    requests_after_first_run = len(chat_server.requests)

    second, second_verdicts, _ = run(chat_server, config, cache)
    assert len(chat_server.requests) == requests_after_first_run
    assert second.calls_made == 0 and second.http_requests == 0
    assert second.cache_hits == 8
    assert (second.parsed, second.failed_parse) == (first.parsed, first.failed_parse)
    assert len(cache.stored) == 8  # nothing stored twice
    assert {k: v.combined for k, v in second_verdicts.items()} == {
        k: v.combined for k, v in first_verdicts.items()
    }


def test_a_changed_config_does_not_reuse_the_old_cache(chat_server: ChatServer) -> None:
    chat_server.responder = picky_judge
    cache = Cache()
    run(chat_server, make_config(base_url=chat_server.base_url), cache)
    counts, _, _ = run(chat_server, make_config(base_url=chat_server.base_url, seed=1), cache)
    assert counts.cache_hits == 0
    assert len(chat_server.requests) == 16


def test_it_records_http_failures_as_errors_and_retries_them_next_run(
    chat_server: ChatServer,
) -> None:
    chat_server.responder = picky_judge
    config = make_config(base_url=chat_server.base_url, max_retries=2)
    pairs = [*PAIRS[:2], PairPayload("x", "q", "boom", "fine")]
    cache = Cache()
    counts, verdicts, _ = run(chat_server, config, cache, pairs)

    assert (counts.errors, counts.parsed, counts.calls_made) == (2, 4, 6)
    assert counts.http_requests == 4 + 2 * 3  # each failing order tried 1 + 2 times
    errors = [r for r in cache.stored if r.status == "error"]
    assert {(r.pair_id, r.order) for r in errors} == {("x", "ab"), ("x", "ba")}
    assert all("HTTP 500" in r.error and "crashed" in r.error for r in errors)
    assert all(r.attempts == 3 for r in errors)
    assert verdicts["x"].combined.status == "failed"

    before = len(chat_server.requests)
    again, _, _ = run(chat_server, config, cache, pairs)
    assert again.cache_hits == 4  # good results reused ...
    assert again.calls_made == 2  # ... errors called again
    assert len(chat_server.requests) - before == 2 * 3


def test_it_records_a_timeout_as_an_error_after_retries(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]", delay_s=5.0)
    config = make_config(
        base_url=chat_server.base_url, timeout_s=0.2, max_retries=1, swap_policy="ab_only"
    )
    cache = Cache()
    counts, _, _ = run(chat_server, config, cache, PAIRS[:1])
    assert counts.errors == 1 and counts.http_requests == 2
    (result,) = cache.stored
    assert result.status == "error"
    assert "timed out after 0.2 s (gave up after 2 attempts)" in result.error
    assert len(chat_server.requests) == 2


def test_it_runs_only_the_original_order_under_ab_only(chat_server: ChatServer) -> None:
    chat_server.responder = picky_judge
    config = make_config(base_url=chat_server.base_url, swap_policy="ab_only")
    counts, verdicts, _ = run(chat_server, config, Cache())
    assert counts.calls_made == len(PAIRS) == len(chat_server.requests)
    assert {shown(r)["A"] for r in chat_server.requests} == {p.answer_a for p in PAIRS}
    assert verdicts[3].combined.outcome == "A"  # no swap, so the first-slot bias goes unseen
    assert verdicts[3].combined.consistent is None
    assert verdicts[3].ba is None


def test_it_counts_a_tie_under_force_choice_as_a_failed_parse(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="Equally good. [[C]]")
    config = make_config(base_url=chat_server.base_url, tie_policy="force_choice")
    counts, _, _ = run(chat_server, config, Cache(), PAIRS[:2])
    assert (counts.failed_parse, counts.parsed) == (4, 0)
    system = chat_server.requests[0].body["messages"][0]["content"]
    assert system.endswith(FORCE_CHOICE_INSTRUCTION)


def test_it_reads_logprob_margins_in_both_orders(chat_server: ChatServer) -> None:
    ab_alts = {"A": -0.1, "B": -2.5, "C": -3.0}  # AB: confident in the first slot (pair's A)
    ba_alts = {"B": -0.2, "A": -1.8, "C": -3.0}  # BA: "B" is the pair's A again

    def judge(request: RecordedRequest) -> Reply:
        ab = shown(request)["A"] == PAIRS[0].answer_a
        content = "[[A]]" if ab else "[[B]]"
        return Reply(
            content=content, logprobs=verdict_logprobs(content, ab_alts if ab else ba_alts)
        )

    chat_server.responder = judge
    config = make_config(base_url=chat_server.base_url, top_logprobs=3)
    cache = Cache()
    _, verdicts, _ = run(chat_server, config, cache, PAIRS[:1])

    assert all(r.body["top_logprobs"] == 3 and r.body["logprobs"] for r in chat_server.requests)
    margin_ab = ab_alts["A"] - ab_alts["B"]
    margin_ba_as_seen = ba_alts["A"] - ba_alts["B"]
    combined = verdicts[1].combined
    assert combined.outcome == "A" and combined.consistent
    assert combined.margin_ab == pytest.approx(margin_ab)
    assert combined.margin_ba == pytest.approx(-margin_ba_as_seen)
    assert combined.margin == pytest.approx((margin_ab - margin_ba_as_seen) / 2)
    stored = {r.order: r for r in cache.stored}
    assert stored["ba"].margin_value == pytest.approx(-margin_ba_as_seen)


def test_it_says_so_when_logprobs_were_asked_for_but_not_returned(
    chat_server: ChatServer,
) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]")
    config = make_config(base_url=chat_server.base_url, top_logprobs=2, swap_policy="ab_only")
    cache = Cache()
    run(chat_server, config, cache, PAIRS[:1])
    (result,) = cache.stored
    assert result.status == "ok"
    assert result.margin is not None and result.margin.value is None
    assert "no log-probabilities" in result.margin.reason


def test_it_never_exceeds_the_concurrency_cap(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]")
    chat_server.hold_until(3, timeout_s=1.0)
    config = make_config(base_url=chat_server.base_url, max_concurrency=3)
    pairs = [PairPayload(i, "q", f"a{i}", f"b{i}") for i in range(12)]
    counts, _, _ = run(chat_server, config, Cache(), pairs)
    assert counts.calls_made == 24 == len(chat_server.requests)
    assert chat_server.max_in_flight == 3


def test_it_reads_pairs_lazily_and_stops_when_asked(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]")
    config = make_config(base_url=chat_server.base_url, max_concurrency=1)
    cache = Cache()
    consumed: list[int] = []

    def pairs() -> Any:
        for i in range(1000):
            consumed.append(i)
            yield PairPayload(i, "q", "a", "b")

    with quick_client(chat_server, config) as client:
        counts = run_judge(
            config,
            pairs(),
            lookup=cache.lookup,
            store=cache.store,
            should_stop=lambda: len(cache.stored) >= 6,
            client=client,
        )
    assert counts.stopped
    assert counts.total is None  # a generator is not measured
    assert 6 <= counts.calls_made < 20
    assert counts.calls_made == len(cache.stored) == len(chat_server.requests)
    assert len(consumed) < 20  # the other 980 pairs were never read


def test_it_builds_its_own_client_with_the_key_from_the_environment(
    chat_server: ChatServer,
) -> None:
    chat_server.responder = lambda request: Reply(content="[[B]]")
    config = make_config(base_url=chat_server.base_url, swap_policy="ab_only")
    cache = Cache()
    counts = run_judge(
        config,
        PAIRS[:2],
        lookup=cache.lookup,
        store=cache.store,
        environ={"JUDGE_API_KEY": "sk-from-env"},
    )
    assert counts.parsed == 2
    assert {r.headers["Authorization"] for r in chat_server.requests} == {"Bearer sk-from-env"}
    assert all(r.body["model"] == config.model_id for r in chat_server.requests)
    assert all(r.fingerprint == config.fingerprint() for r in cache.stored)


def test_it_refuses_to_start_without_the_key_variable(chat_server: ChatServer) -> None:
    config = make_config(base_url=chat_server.base_url)
    cache = Cache()
    with pytest.raises(JudgeConfigError, match="JUDGE_API_KEY is not set"):
        run_judge(config, PAIRS, lookup=cache.lookup, store=cache.store, environ={})
    assert chat_server.requests == []


def test_it_needs_an_adapter_for_local_models() -> None:
    config = make_config(provider="transformers_causal")
    cache = Cache()
    with pytest.raises(JudgeConfigError, match="pass a client adapter"):
        run_judge(config, PAIRS, lookup=cache.lookup, store=cache.store)


def test_it_turns_an_adapter_crash_into_an_error_result() -> None:
    class BrokenAdapter:
        def answer(self, messages: Any, sampling: Any) -> Any:
            raise RuntimeError("CUDA out of memory")

    config = make_config(provider="transformers_causal", swap_policy="ab_only")
    cache = Cache()
    counts = run_judge(
        config, PAIRS[:1], lookup=cache.lookup, store=cache.store, client=BrokenAdapter()
    )
    assert counts.errors == 1
    assert cache.stored[0].error == "RuntimeError: CUDA out of memory"


def test_order_results_survive_a_json_round_trip(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(
        content="Safety: ((A=B))\nStyle: ((B>A))\n[[B>>A]]",
        logprobs=verdict_logprobs("Safety: ((A=B))\nStyle: ((B>A))\n[[B>>A]]", {"B": -0.1}),
    )
    config = make_config(base_url=chat_server.base_url, top_logprobs=1, swap_policy="ab_only")
    cache = Cache()
    run(chat_server, config, cache, PAIRS[:1])
    (result,) = cache.stored
    again = OrderResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.verdict is not None
    assert again.verdict.criteria_json()["style"]["outcome"] == "B"
    assert again.margin is not None and not again.margin.exact  # A absent from the top-1
