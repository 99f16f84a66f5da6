"""The ``next_token`` verdict mode: a verdict that always exists, read from probabilities.

A small judge (Gemma 3 270M) rarely writes an answer in the verdict format. In this mode the
judge is not asked to write: the prompt (the judge's template, unchanged) is followed by the
start of the judge's answer, ``[[``, and the server reports the log-probabilities of the next
token. Of the three verdict tokens the MT-Bench pair-v2 prompt defines, ``[[A]]``, ``[[B]]``
and ``[[C]]`` (a tie), we read ``A``, ``B`` and ``C``:

- **probabilities**: the three log-probabilities renormalized over the three letters,
  ``p(L) = exp(lp(L)) / (exp(lp(A)) + exp(lp(B)) + exp(lp(C)))``: what the judge would answer
  if it had to answer in the format;
- **verdict**: the letter of highest probability (``C`` is a tie), in the labels the judge saw;
- **margin**: ``p(A) - p(B)`` on that renormalized scale, between -1 and 1, > 0 favours the
  response shown first (the runner maps the swapped order back).

The server is llama.cpp's, through llama-cpp-python's server with Tribunal's one extra route
(`judges.llama_server`, ``POST /v1/next_token``): it evaluates the prompt and returns the
exact log-probabilities of the three letters from the full softmax at the last position
(``/v1/completions`` with ``logprobs`` would list only the top 20 alternatives and compute
the vocabulary's logits at every prompt position, several times slower). What is recorded as
the judge's raw output is that answer as JSON (`raw_json`): the three log-probabilities, the
five most probable next tokens of the whole vocabulary (how much of the mass the letters have)
and the prompt's length in tokens.

The pair's combined verdict over both orders (`combine_next_token`) averages the two orders'
probabilities in the pair's own labels and takes the most probable outcome: position-balanced
calibration (Wang et al. 2023, "Large Language Models are not Fair Evaluators"), which cancels
a judge's constant preference for the first slot instead of turning every pair it affects
into a tie, as MT-Bench's agree-or-tie rule would. No Django here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from judges.core.client import ChatCallError, ChatCompleter, ChatResult, Sampling
from judges.core.parsing import LogprobMargin, Outcome, ParsedVerdict, TokenLogprob
from judges.core.templates import ChatMessage

PREFILL: Final = "[["
OUTCOMES: Final[tuple[Outcome, ...]] = ("A", "B", "tie")
LETTERS: Final = ("A", "B", "C")
LETTER_OUTCOME: Final[Mapping[str, Outcome]] = {"A": "A", "B": "B", "C": "tie"}
# Chat formats a prompt can be rendered in (the server's ``--chat_format``). The model's
# turn is opened and left open, so the prefill is the first text of the judge's answer.
PROMPT_FORMATS: Final = {
    "gemma": ("<start_of_turn>user\n", "<end_of_turn>\n", "<start_of_turn>model\n"),
}


def render_prompt(messages: Sequence[ChatMessage], *, prompt_format: str) -> str:
    """The completion prompt for ``messages`` in ``prompt_format``, ending with `PREFILL`.

    Gemma has no system role; the judge's configuration puts the system text into the user
    turn (``system_in_user``), so a system message here is refused rather than dropped.
    """
    user_open, turn_close, model_open = PROMPT_FORMATS[prompt_format]
    parts = []
    for message in messages:
        if message["role"] != "user":
            raise ValueError(f"{prompt_format}: a {message['role']} message has no place")
        parts.append(user_open + message["content"] + turn_close)
    return "".join(parts) + model_open + PREFILL


def probabilities(logprobs: Mapping[str, float]) -> dict[str, float]:
    """The letters' probabilities renormalized over the three letters."""
    top = max(logprobs[k] for k in LETTERS)
    weights = {k: math.exp(logprobs[k] - top) for k in LETTERS}
    total = sum(weights.values())
    return {k: weights[k] / total for k in LETTERS}


def raw_json(answer: Mapping[str, Any]) -> str:
    """The raw output recorded for a call: the prefill and the server's answer."""
    return json.dumps(
        {
            "prefill": PREFILL,
            "logprobs": {k: answer["logprobs"][k] for k in LETTERS},
            "top": answer.get("top", []),
            "prompt_tokens": answer.get("prompt_tokens"),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def next_token_verdict(
    logprobs: Sequence[TokenLogprob] | None,
) -> tuple[ParsedVerdict, LogprobMargin | None]:
    """The verdict and margin of one call (see the module docstring for the rule).

    ``logprobs`` is what `NextTokenClient` returns: one `TokenLogprob` whose ``top`` holds the
    three letters' log-probabilities."""
    if not logprobs:
        return ParsedVerdict(
            status="failed", reason="the server returned no log-probabilities"
        ), None
    found = dict(logprobs[0].top)
    missing = [k for k in LETTERS if k not in found]
    if missing:
        reason = f"no log-probability for {', '.join(missing)}"
        return ParsedVerdict(status="failed", reason=reason), None
    probs = probabilities(found)
    letter = max(LETTERS, key=lambda k: (probs[k], -LETTERS.index(k)))
    verdict = ParsedVerdict(
        status="ok", outcome=LETTER_OUTCOME[letter], token=f"[[{letter}]]", letter_offset=0
    )
    return verdict, LogprobMargin(probs["A"] - probs["B"], True, "", 0)


def probabilities_of_raw(raw: str) -> dict[str, float]:
    """The renormalized A/B/C probabilities of a recorded raw output (`raw_json`)."""
    return probabilities(json.loads(raw)["logprobs"])


@dataclass(frozen=True)
class Combined:
    outcome: Outcome
    probabilities: Mapping[Outcome, float]  # averaged, in the pair's labels
    margin: float  # p(A) - p(B) averaged, in the pair's labels
    consistent: bool  # the two orders' own verdicts agree (after mapping back)


def combine_next_token(ab: Mapping[str, float], ba: Mapping[str, float]) -> Combined:
    """Average the two orders' letter probabilities in the pair's labels; the outcome is the
    most probable (ties between outcomes go to ``tie``)."""
    pair_ab = {"A": ab["A"], "B": ab["B"], "tie": ab["C"]}
    pair_ba = {"A": ba["B"], "B": ba["A"], "tie": ba["C"]}  # BA's "A" is the pair's B
    mean: dict[Outcome, float] = {k: (pair_ab[k] + pair_ba[k]) / 2 for k in OUTCOMES}
    best = max(mean.values())
    winners: list[Outcome] = [k for k in OUTCOMES if mean[k] == best]
    outcome: Outcome = winners[0] if len(winners) == 1 else "tie"

    def own(probs: Mapping[str, float]) -> Outcome:
        return max(OUTCOMES, key=lambda k: probs[k])

    return Combined(
        outcome=outcome,
        probabilities=mean,
        margin=mean["A"] - mean["B"],
        consistent=own(pair_ab) == own(pair_ba),
    )


class NextTokenClient(ChatCompleter):
    """Posts the prefilled prompt to ``{base_url}/next_token`` (`judges.llama_server`) and
    returns the letters' log-probabilities; the runner's `ChatCompleter`."""

    def __init__(
        self,
        base_url: str,
        *,
        prompt_format: str,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(
                f"prompt_format {prompt_format!r} is not one of {list(PROMPT_FORMATS)}"
            )
        self.url = base_url.rstrip("/") + "/next_token"
        self.prompt_format = prompt_format
        self.max_retries = max_retries
        self._sleep = sleep
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), transport=transport)

    def close(self) -> None:
        self._http.close()

    def answer(self, messages: Sequence[ChatMessage], sampling: Sampling) -> ChatResult:
        """The letters' log-probabilities; ``sampling`` plays no part (no text is sampled)."""
        body = {
            "prompt": render_prompt(messages, prompt_format=self.prompt_format),
            "candidates": list(LETTERS),
        }
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            status: int | None = None
            try:
                response = self._http.post(self.url, json=body)
            except httpx.TransportError as exc:
                reason = f"connection error: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 200:
                    latency = time.perf_counter() - started
                    return read_answer(response.json(), latency=latency, attempts=attempt)
                reason = f"HTTP {status}: {response.text[:300]}"
                if status < 500:
                    raise ChatCallError(
                        reason, attempts=attempt, status_code=status, retryable=False
                    )
            if attempt > self.max_retries:
                raise ChatCallError(reason, attempts=attempt, status_code=status, retryable=True)
            self._sleep(min(30.0, 2.0**attempt))


def read_answer(data: object, *, latency: float = 0.0, attempts: int = 1) -> ChatResult:
    """The server's ``/v1/next_token`` answer as a `ChatResult`: content `raw_json`, one
    `TokenLogprob` (the most probable letter) whose ``top`` holds the three letters."""
    if not isinstance(data, dict) or not isinstance(data.get("logprobs"), dict):
        raise ChatCallError(
            "not a next-token answer: no logprobs", attempts=attempts, retryable=False
        )
    values = data["logprobs"]
    bad = [
        k
        for k in LETTERS
        if not isinstance(values.get(k), int | float)
        or isinstance(values.get(k), bool)
        or not math.isfinite(values[k])
    ]
    if bad:
        raise ChatCallError(
            f"not a next-token answer: no finite log-probability for {', '.join(bad)}",
            attempts=attempts,
            retryable=False,
        )
    letters = tuple((k, float(values[k])) for k in LETTERS)
    best = max(letters, key=lambda kv: kv[1])
    tokens = data.get("prompt_tokens")
    return ChatResult(
        content=raw_json(data),
        logprobs=(TokenLogprob(token=best[0], logprob=best[1], top=letters),),
        usage={"prompt_tokens": tokens} if isinstance(tokens, int) else {},
        latency_s=latency,
        attempts=attempts,
    )
