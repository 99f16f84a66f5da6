"""A small OpenAI-compatible chat-completions client for judge calls.

Works with OpenAI, vLLM, Ollama (``/v1``), llama.cpp server and anything else that speaks
``POST {base_url}/chat/completions``. What it adds over a bare ``httpx.post``:

- retries with exponential backoff and jitter on 429, 408, 5xx, timeouts and connection
  errors; a ``Retry-After`` header (seconds or an HTTP date) is honoured instead of the
  computed backoff, capped at ``retry_after_max_s`` so one server cannot park a worker;
- a token-bucket rate limiter (requests per minute; every attempt, retries included, takes a
  token, because every attempt is a request the provider counts);
- a concurrency cap: at most ``max_concurrency`` requests in flight across all threads using
  the client (a semaphore held only while a request is on the wire, not while backing off);
- log-probabilities only when asked for, with a small ``top_logprobs``.

Thread-safe: one client can serve a thread pool.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from judges.core.parsing import TokenLogprob
from judges.core.templates import ChatMessage

RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
_BODY_SNIPPET: Final = 300


class ChatCallError(Exception):
    """A call that failed for good: a non-retryable answer, or retries exhausted."""

    def __init__(
        self, reason: str, *, attempts: int, status_code: int | None = None, retryable: bool
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.status_code = status_code
        self.retryable = retryable


@dataclass(frozen=True)
class ChatResult:
    content: str
    logprobs: tuple[TokenLogprob, ...] | None
    usage: Mapping[str, int] = field(default_factory=dict)
    latency_s: float = 0.0  # the successful attempt only
    attempts: int = 1
    model: str = ""
    finish_reason: str | None = None


@dataclass(frozen=True)
class Sampling:
    """What a judge call asks for besides its messages: the judge config's fields of these
    names."""

    model_id: str
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    top_p: float | None = None
    top_logprobs: int = 0


class ChatCompleter(ABC):
    """What the runner calls for a judge's answer: `ChatClient`, `NextTokenClient` or a
    local-model adapter. Each implements `answer`; `complete` is the keyword form."""

    @abstractmethod
    def answer(self, messages: Sequence[ChatMessage], sampling: Sampling) -> ChatResult: ...

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        seed: int | None = None,
        top_p: float | None = None,
        top_logprobs: int = 0,
    ) -> ChatResult:
        """`answer`, with the sampling as keywords."""
        return self.answer(
            messages, Sampling(model, temperature, max_tokens, seed, top_p, top_logprobs)
        )


class TokenBucket:
    """Requests-per-minute limiter: ``burst`` calls at once, then one every 60/rate seconds.

    Each caller reserves the next free slot under a lock and sleeps outside it, so waiting
    callers are served in arrival order and the long-run rate never exceeds the limit.
    ``clock`` and ``sleep`` are injectable so tests can check the schedule without waiting.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = requests_per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(
                float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s
            )
            self._updated = now
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s
        if wait > 0:
            self._sleep(wait)
        return wait


class ChatClient(ChatCompleter):
    """``complete()`` sends one chat-completions request, retrying as described above."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        retry_after_max_s: float = 120.0,
        requests_per_minute: float | None = None,
        max_concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        rate_limiter: TokenBucket | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.max_concurrency = max_concurrency
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        if rate_limiter is None and requests_per_minute is not None:
            rate_limiter = TokenBucket(requests_per_minute, sleep=sleep)
        self._bucket = rate_limiter
        self._slots = threading.BoundedSemaphore(max_concurrency)
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            request_headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(
            headers=request_headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient({self.url!r}, max_concurrency={self.max_concurrency})"

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def answer(self, messages: Sequence[ChatMessage], sampling: Sampling) -> ChatResult:
        body: dict[str, Any] = {
            "model": sampling.model_id,
            "messages": list(messages),
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.top_p is not None:
            body["top_p"] = sampling.top_p
        if sampling.top_logprobs > 0:
            body["logprobs"] = True
            body["top_logprobs"] = sampling.top_logprobs

        attempt = 0
        while True:
            attempt += 1
            if self._bucket is not None:
                self._bucket.acquire()
            retry_after: float | None = None
            status_code: int | None = None
            with self._slots:
                started = time.perf_counter()
                try:
                    response = self._http.post(self.url, json=body)
                except httpx.TimeoutException:
                    reason = f"timed out after {self.timeout_s:g} s"
                except httpx.TransportError as exc:
                    reason = f"connection error: {type(exc).__name__}: {exc}"
                else:
                    latency = time.perf_counter() - started
                    status_code = response.status_code
                    if status_code == 200:
                        return _read_completion(response, latency=latency, attempts=attempt)
                    reason = f"HTTP {status_code}: {_snippet(response.text)}"
                    if not _retryable(status_code):
                        raise ChatCallError(
                            reason, attempts=attempt, status_code=status_code, retryable=False
                        )
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt > self.max_retries:
                raise ChatCallError(
                    f"{reason} (gave up after {attempt} attempts)",
                    attempts=attempt,
                    status_code=status_code,
                    retryable=True,
                )
            if retry_after is not None:
                delay = min(retry_after, self.retry_after_max_s)
            else:
                delay = self.backoff_delay(attempt)
            self._sleep(delay)

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        with self._rng_lock:
            return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _retryable(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUS or status_code >= 500


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "..."


def _read_completion(response: httpx.Response, *, latency: float, attempts: int) -> ChatResult:
    def bad(why: str) -> ChatCallError:
        return ChatCallError(
            f"response is not a chat completion: {why}; body: {_snippet(response.text)}",
            attempts=attempts,
            status_code=response.status_code,
            retryable=False,
        )

    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad("invalid JSON") from None
    if not isinstance(data, dict):
        raise bad("top level is not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad("choices[0].message missing")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise bad("choices[0].message.content is not a string")
    usage_raw = data.get("usage")
    usage = (
        {k: v for k, v in usage_raw.items() if isinstance(v, int) and not isinstance(v, bool)}
        if isinstance(usage_raw, dict)
        else {}
    )
    return ChatResult(
        content=content or "",
        logprobs=_read_logprobs(choice.get("logprobs")),
        usage=usage,
        latency_s=latency,
        attempts=attempts,
        model=str(data.get("model", "")),
        finish_reason=choice.get("finish_reason"),
    )


def _read_logprobs(raw: object) -> tuple[TokenLogprob, ...] | None:
    """OpenAI's ``choices[0].logprobs.content`` list; None when absent or malformed."""
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    if not isinstance(content, list):
        return None
    tokens: list[TokenLogprob] = []
    for item in content:
        if not isinstance(item, dict):
            return None
        token, logprob = item.get("token"), item.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            return None
        top: list[tuple[str, float]] = []
        for alt in item.get("top_logprobs") or ():
            if (
                isinstance(alt, dict)
                and isinstance(alt.get("token"), str)
                and isinstance(alt.get("logprob"), int | float)
            ):
                top.append((alt["token"], float(alt["logprob"])))
        tokens.append(TokenLogprob(token=token, logprob=float(logprob), top=tuple(top)))
    return tuple(tokens)
