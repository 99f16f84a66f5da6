"""A real, scriptable OpenAI-compatible chat-completions server for tests.

It listens on 127.0.0.1 on an ephemeral port (stdlib ``http.server``, one thread per request)
and answers ``POST /v1/chat/completions``. Tests script it:

- ``server.queue(Reply(...), ...)``: replies served first, in order;
- ``server.fail_next(n, status=429, retry_after="2")``: n failures queued before the rest;
- ``server.responder = fn``: ``fn(request) -> Reply`` for everything the queue does not cover;
- ``Reply(delay_s=...)`` sleeps before answering (to trigger client timeouts);
- ``Reply(logprobs=...)`` returns OpenAI-style log-probabilities (see `verdict_logprobs`);
- ``server.hold_until(k)`` makes requests wait until k of them are in flight together (or a
  timeout), so a concurrency cap can be checked by counting, not by timing: with a cap of k,
  the peak is exactly k; a client that ignored its cap would push the peak above k.

It records every request (``server.requests``) and the peak number of simultaneous requests
(``server.max_in_flight``). With nothing scripted it answers 500 "no reply scripted", so a
test never passes on a default it did not ask for.

Use the ``chat_server`` fixture: ``from tests.judges.chat_server import chat_server``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Reply:
    content: str = ""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    logprobs: Sequence[Mapping[str, Any]] | None = None  # OpenAI logprobs.content items
    body: str | None = None  # sent as-is instead of a completion (errors, garbage)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]

    @property
    def user_message(self) -> str:
        if isinstance(self.body.get("prompt"), str):  # /v1/next_token: the rendered prompt
            return str(self.body["prompt"])
        messages = self.body.get("messages", [])
        return next((m["content"] for m in messages if m.get("role") == "user"), "")


class ChatServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._in_flight = 0
        self._in_flight_changed = threading.Condition(self._lock)
        self.max_in_flight = 0
        self.responder: Callable[[RecordedRequest], Reply] | None = None
        self._hold_until = 0
        self._generation = 0
        self._hold_timeout_s = 0.0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._in_flight_changed.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def fail_next(
        self, times: int, *, status: int = 500, retry_after: str | None = None, delay_s: float = 0
    ) -> None:
        """Queue ``times`` failures ahead of anything already queued."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        failure = Reply(
            status=status,
            headers=headers,
            delay_s=delay_s,
            body=json.dumps({"error": {"message": f"scripted {status}", "code": status}}),
        )
        with self._lock:
            self._queue.extendleft([failure] * times)

    def hold_until(self, in_flight: int, *, timeout_s: float = 3.0) -> None:
        """Requests wait in groups until ``in_flight`` are open at once (or the timeout)."""
        with self._lock:
            self._hold_until = in_flight
            self._hold_timeout_s = timeout_s

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        return Reply(status=500, body=json.dumps({"error": {"message": "no reply scripted"}}))

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._in_flight_changed.notify_all()
            if self._hold_until:
                # A barrier: the request that brings the count to the target releases every
                # request waiting with it; the next ones form a new group.
                generation = self._generation
                if self._in_flight >= self._hold_until:
                    self._generation += 1
                    self._in_flight_changed.notify_all()
                else:
                    self._in_flight_changed.wait_for(
                        lambda: self._generation != generation or self._stopping.is_set(),
                        timeout=self._hold_timeout_s,
                    )

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._in_flight_changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, json.dumps({"error": {"message": "invalid JSON"}}), {})
                    return
                request = RecordedRequest(
                    path=self.path, headers=dict(self.headers.items()), body=body
                )
                with server._lock:
                    server._requests.append(request)
                if not self.path.rstrip("/").endswith(("/chat/completions", "/next_token")):
                    self._send(404, json.dumps({"error": {"message": "not found"}}), {})
                    return
                # A request counts as in flight until its answer is ready, and stops counting
                # before the answer is written: the client cannot send its next request before
                # reading this answer, so the server never sees more than the client allows.
                server._enter()
                try:
                    reply = server._next_reply(request)
                    if reply.delay_s:
                        server._stopping.wait(reply.delay_s)
                    text = reply.body if reply.body is not None else _completion(body, reply)
                finally:
                    server._leave()
                self._send(reply.status, text, reply.headers)

            def _send(self, status: int, text: str, headers: Mapping[str, str]) -> None:
                data = text.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); that is the point of some tests

        return Handler


def _completion(request: Mapping[str, Any], reply: Reply) -> str:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.content},
        "finish_reason": "stop",
        "logprobs": None,
    }
    if reply.logprobs is not None:
        choice["logprobs"] = {"content": list(reply.logprobs)}
    completion_tokens = len(reply.content.split())
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": request.get("model", ""),
            "choices": [choice],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": completion_tokens,
                "total_tokens": 10 + completion_tokens,
            },
        }
    )


_TOKENS = re.compile(r"\[\[|\]\]|\(\(|\)\)|>>|\s*\w+|\s+|[^\w\s]")


def verdict_logprobs(
    content: str, alternatives: Mapping[str, float], *, other_logprob: float = -0.01
) -> list[dict[str, Any]]:
    """OpenAI-style ``logprobs.content`` for ``content``, split into word-ish tokens.

    The token right after the *last* ``[[`` gets ``alternatives`` as its top log-probabilities
    (and its own log-probability from there); every other token is near-certain.
    """
    tokens = _TOKENS.findall(content)
    assert "".join(tokens) == content, "tokenizer must cover the text"
    verdict_index = max((i + 1 for i, t in enumerate(tokens) if t == "[["), default=None)
    items = []
    for i, token in enumerate(tokens):
        if i == verdict_index:
            top = sorted(alternatives.items(), key=lambda kv: kv[1], reverse=True)
            logprob = alternatives.get(token, min(alternatives.values()))
        else:
            top = [(token, other_logprob)]
            logprob = other_logprob
        items.append(
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
                ],
            }
        )
    return items


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer().start()
    try:
        yield server
    finally:
        server.stop()
