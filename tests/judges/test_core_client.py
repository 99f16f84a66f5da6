from __future__ import annotations

import random
import socket
import threading
from datetime import UTC, datetime

import pytest

from judges.core.client import ChatCallError, ChatClient, TokenBucket, parse_retry_after
from judges.core.templates import ChatMessage
from tests.judges.chat_server import ChatServer, Reply, chat_server, verdict_logprobs

__all__ = ["chat_server"]  # the fixture, re-exported for pytest

MESSAGES: list[ChatMessage] = [{"role": "user", "content": "Which is better? [[A]] or [[B]]"}]


class Sleeps:
    """Records requested sleeps instead of sleeping; tests stay fast and exact."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(server: ChatServer, sleeps: Sleeps | None = None, **kwargs: object) -> ChatClient:
    return ChatClient(
        server.base_url,
        sleep=sleeps or Sleeps(),
        rng=random.Random(0),
        **kwargs,  # type: ignore[arg-type]
    )


def test_it_returns_content_usage_and_latency(chat_server: ChatServer) -> None:
    chat_server.queue(Reply(content="Short explanation. [[B]]"))
    with make_client(chat_server, api_key="sk-test") as client:
        result = client.complete(MESSAGES, model="judge-1", temperature=0.0, max_tokens=64, seed=3)
    assert result.content == "Short explanation. [[B]]"
    assert result.usage["total_tokens"] == result.usage["prompt_tokens"] + 3
    assert result.latency_s > 0
    assert result.attempts == 1
    assert result.logprobs is None
    (request,) = chat_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.body["model"] == "judge-1"
    assert request.body["seed"] == 3
    assert request.body["messages"] == MESSAGES
    assert "logprobs" not in request.body and "top_logprobs" not in request.body


def test_it_asks_for_logprobs_only_when_configured_and_reads_them(
    chat_server: ChatServer,
) -> None:
    content = "A is right. [[A]]"
    chat_server.queue(Reply(content=content, logprobs=verdict_logprobs(content, {"A": -0.1})))
    with make_client(chat_server) as client:
        result = client.complete(MESSAGES, model="m", top_logprobs=3)
    assert chat_server.requests[0].body["logprobs"] is True
    assert chat_server.requests[0].body["top_logprobs"] == 3
    assert result.logprobs is not None
    assert "".join(t.token for t in result.logprobs) == content


def test_it_retries_a_429_honouring_retry_after(chat_server: ChatServer) -> None:
    chat_server.fail_next(2, status=429, retry_after="7")
    chat_server.queue(Reply(content="[[A]]"))
    sleeps = Sleeps()
    with make_client(chat_server, sleeps) as client:
        result = client.complete(MESSAGES, model="m")
    assert result.content == "[[A]]"
    assert result.attempts == 3
    assert len(chat_server.requests) == 3
    assert sleeps.calls == [7.0, 7.0]


def test_it_caps_an_excessive_retry_after(chat_server: ChatServer) -> None:
    chat_server.fail_next(1, status=429, retry_after="86400")
    chat_server.queue(Reply(content="[[A]]"))
    sleeps = Sleeps()
    with make_client(chat_server, sleeps, retry_after_max_s=30.0) as client:
        client.complete(MESSAGES, model="m")
    assert sleeps.calls == [30.0]


def test_it_retries_server_errors_with_growing_jittered_backoff(chat_server: ChatServer) -> None:
    chat_server.fail_next(3, status=500)
    chat_server.queue(Reply(content="[[B]]"))
    sleeps = Sleeps()
    with make_client(chat_server, sleeps, backoff_base_s=1.0, backoff_max_s=60.0) as client:
        result = client.complete(MESSAGES, model="m")
    assert result.content == "[[B]]"
    assert len(chat_server.requests) == 4
    # attempt n waits between half and all of base * 2**(n-1)
    for n, delay in enumerate(sleeps.calls, start=1):
        assert 2 ** (n - 1) / 2 <= delay <= 2 ** (n - 1)


def test_it_gives_up_after_the_retry_budget_with_the_last_reason(chat_server: ChatServer) -> None:
    chat_server.fail_next(10, status=503)
    with make_client(chat_server, max_retries=2) as client, pytest.raises(ChatCallError) as error:
        client.complete(MESSAGES, model="m")
    assert error.value.attempts == 3
    assert error.value.status_code == 503
    assert "HTTP 503" in error.value.reason
    assert "gave up after 3 attempts" in error.value.reason
    assert len(chat_server.requests) == 3


def test_it_does_not_retry_a_client_error(chat_server: ChatServer) -> None:
    chat_server.queue(Reply(status=401, body='{"error": {"message": "invalid api key"}}'))
    with make_client(chat_server) as client, pytest.raises(ChatCallError) as error:
        client.complete(MESSAGES, model="m")
    assert error.value.attempts == 1
    assert not error.value.retryable
    assert "invalid api key" in error.value.reason
    assert len(chat_server.requests) == 1


def test_it_retries_a_timeout_then_reports_it(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]", delay_s=5.0)
    with (
        make_client(chat_server, timeout_s=0.2, max_retries=2) as client,
        pytest.raises(ChatCallError) as error,
    ):
        client.complete(MESSAGES, model="m")
    assert error.value.attempts == 3
    assert "timed out after 0.2 s" in error.value.reason
    assert len(chat_server.requests) == 3


def test_it_recovers_when_a_timeout_is_followed_by_an_answer(chat_server: ChatServer) -> None:
    chat_server.queue(Reply(content="[[A]]", delay_s=5.0), Reply(content="[[B]]"))
    with make_client(chat_server, timeout_s=0.2) as client:
        result = client.complete(MESSAGES, model="m")
    assert (result.content, result.attempts) == ("[[B]]", 2)


def test_it_retries_a_refused_connection() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    client = ChatClient(f"http://127.0.0.1:{port}/v1", max_retries=1, sleep=sleeps, timeout_s=2)
    with client, pytest.raises(ChatCallError) as error:
        client.complete(MESSAGES, model="m")
    assert error.value.attempts == 2
    assert len(sleeps.calls) == 1
    assert "connection error: ConnectError" in error.value.reason


def test_it_reports_a_response_that_is_not_a_completion(chat_server: ChatServer) -> None:
    chat_server.queue(Reply(body="<html>gateway</html>"))
    with make_client(chat_server) as client, pytest.raises(ChatCallError) as error:
        client.complete(MESSAGES, model="m")
    assert "not a chat completion: invalid JSON" in error.value.reason
    assert "<html>gateway</html>" in error.value.reason


def test_it_keeps_concurrent_requests_under_the_cap(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]")
    chat_server.hold_until(3, timeout_s=1.0)  # each request waits for two companions
    results: list[str] = []
    with make_client(chat_server, max_concurrency=3) as client:

        def call() -> None:
            results.append(client.complete(MESSAGES, model="m").content)

        threads = [threading.Thread(target=call) for _ in range(9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == ["[[A]]"] * 9
    assert len(chat_server.requests) == 9
    assert chat_server.max_in_flight == 3


def test_the_in_flight_counter_would_catch_a_client_without_a_cap(
    chat_server: ChatServer,
) -> None:
    # The same harness with a cap of 9: all nine requests are seen at once, so the
    # assertion in the test above is not vacuous.
    chat_server.responder = lambda request: Reply(content="[[A]]")
    chat_server.hold_until(9, timeout_s=2.0)
    with make_client(chat_server, max_concurrency=9) as client:
        threads = [
            threading.Thread(target=client.complete, args=(MESSAGES,), kwargs={"model": "m"})
            for _ in range(9)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert chat_server.max_in_flight == 9


def test_it_spaces_requests_to_the_rate_limit(chat_server: ChatServer) -> None:
    chat_server.responder = lambda request: Reply(content="[[A]]")
    clock = FakeClock()
    bucket = TokenBucket(120, clock=clock.time, sleep=clock.sleep)  # 2 per second, burst 1
    with make_client(chat_server, rate_limiter=bucket) as client:
        for _ in range(5):
            client.complete(MESSAGES, model="m")
    assert len(chat_server.requests) == 5
    # the first goes at once, each later one waits for the next half-second slot
    assert clock.sleeps == pytest.approx([0.5] * 4)
    assert clock.now == pytest.approx((5 - 1) / 2)


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=3, clock=clock.time, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0, 1, 1])
    clock.now += 10  # idle time refills up to the burst, not beyond
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 1])


def test_the_token_bucket_serves_waiting_threads_one_slot_each() -> None:
    lock = threading.Lock()
    waits: list[float] = []
    # a clock that does not move: every caller reserves a later slot than the previous one
    bucket = TokenBucket(60, clock=lambda: 0.0, sleep=lambda s: None)

    def take() -> None:
        wait = bucket.acquire()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0)],
)
def test_it_reads_retry_after_as_seconds_or_a_date(header: str, seconds: float) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon"])
def test_it_ignores_an_unreadable_retry_after(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_it_never_shows_the_key_in_its_repr() -> None:
    client = ChatClient("http://127.0.0.1:9/v1", api_key="sk-very-secret")
    with client:
        assert "sk-very-secret" not in repr(client)
