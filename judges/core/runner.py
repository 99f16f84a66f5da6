"""Run one judge over many pairs, in one or both orders, with a cache. No Django here.

The caller supplies callbacks; this module supplies the loop:

- ``lookup(fingerprint, pair_id, order)`` -> a cached `OrderResult` or None. A cached result
  with status ``error`` is treated as a miss and called again: an HTTP failure says nothing
  about the pair. Cached ``ok`` and ``failed`` (unparseable answer) results are reused, so a
  rerun of a finished run makes zero calls.
- ``store(result)`` is called once per fresh `OrderResult` -- parsed, failed parse or error.
- ``on_pair(pair_result)`` (optional) is called once per pair when all its orders are in,
  with the combined verdict; this is what a per-pair ``Verdict`` row needs.
- ``progress(snapshot)`` (optional) after every order, cached or fresh.
- ``should_stop()`` (optional) is polled before each new call; a stop finishes the calls
  already in flight, stores them, and returns with ``stopped=True``.

Every callback runs in the caller's thread (only HTTP calls run in worker threads), so a
Django caller may use its database connection in them. Pairs are read lazily and at most a
few calls per worker are queued, so a large iterable (a queryset iterator) is never loaded
whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Final, Literal

from judges.core.client import ChatCallError, ChatClient, ChatCompleter, Sampling
from judges.core.config import JudgeConfig, JudgeConfigError
from judges.core.next_token import next_token_verdict
from judges.core.parsing import (
    CombinedVerdict,
    CriterionVerdict,
    LogprobMargin,
    ParsedVerdict,
    combine_orders,
    map_back,
    parse_verdict,
    verdict_margin,
)
from judges.core.templates import ORDERS, Order, messages_for_order

PairId = str | int
RunStatus = Literal["ok", "failed", "error"]
RUN_STATUSES: Final = ("ok", "failed", "error")
QUEUED_PER_WORKER: Final = 4


@dataclass(frozen=True)
class PairPayload:
    pair_id: PairId
    question: str
    answer_a: str
    answer_b: str
    # The reference answer for a judge with ``reference_field``; None when the pair has none.
    reference: str | None = None


@dataclass(frozen=True)
class OrderResult:
    """One judge call (or its cached copy) for one pair in one order.

    ``verdict`` and ``margin`` are in the labels the judge saw; `outcome` and `margin_value`
    are mapped back to the pair's own labels.
    """

    fingerprint: str
    pair_id: PairId
    order: Order
    status: RunStatus
    raw_output: str = ""
    verdict: ParsedVerdict | None = None
    margin: LogprobMargin | None = None
    error: str = ""
    usage: Mapping[str, int] = field(default_factory=dict)
    latency_s: float | None = None
    attempts: int = 0
    from_cache: bool = False

    @property
    def outcome(self) -> str | None:
        """The outcome in the pair's labels (BA verdicts mapped back)."""
        if self.verdict is None or not self.verdict.ok:
            return None
        return self.verdict.outcome if self.order == "ab" else map_back(self.verdict.outcome)

    @property
    def margin_value(self) -> float | None:
        """The margin in the pair's labels (>0 favours the pair's A)."""
        if self.margin is None or self.margin.value is None:
            return None
        return self.margin.value if self.order == "ab" else -self.margin.value

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for storage, every field but ``from_cache`` in the order declared;
        `from_dict` reads it back."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "from_cache"}
        verdict = self.verdict
        if verdict is not None:
            data["verdict"] = {f.name: getattr(verdict, f.name) for f in fields(verdict)} | {
                "criteria": verdict.criteria_json(),
                "warnings": list(verdict.warnings),
            }
        if self.margin is not None:
            data["margin"] = asdict(self.margin)
        data["usage"] = dict(self.usage)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderResult:
        v = data.get("verdict")
        verdict = None
        if v is not None:
            verdict = ParsedVerdict(
                status=v["status"],
                outcome=v["outcome"],
                strength=v["strength"],
                token=v["token"],
                criteria={
                    name: CriterionVerdict(c["outcome"], c["strength"], c["token"])
                    for name, c in v["criteria"].items()
                },
                reason=v["reason"],
                letter_offset=v["letter_offset"],
                conflicting=v["conflicting"],
                warnings=tuple(v["warnings"]),
            )
        m = data.get("margin")
        margin = None if m is None else LogprobMargin(**m)
        return cls(
            fingerprint=data["fingerprint"],
            pair_id=data["pair_id"],
            order=data["order"],
            status=data["status"],
            raw_output=data["raw_output"],
            verdict=verdict,
            margin=margin,
            error=data["error"],
            usage=dict(data["usage"]),
            latency_s=data["latency_s"],
            attempts=data["attempts"],
        )


@dataclass(frozen=True)
class PairResult:
    pair_id: PairId
    ab: OrderResult
    ba: OrderResult | None
    combined: CombinedVerdict


@dataclass
class RunCounts:
    """What a run did. ``calls_made`` counts judge calls (one per pair and order not served
    from the cache); ``http_requests`` counts requests on the wire, retries included.
    ``parsed``/``failed_parse``/``errors`` count every order of the run, cached or fresh."""

    total: int | None = None
    done: int = 0
    calls_made: int = 0
    http_requests: int = 0
    cache_hits: int = 0
    parsed: int = 0
    failed_parse: int = 0
    errors: int = 0
    stopped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Lookup = Callable[[str, PairId, Order], OrderResult | None]
Store = Callable[[OrderResult], None]


def orders_for(config: JudgeConfig) -> tuple[Order, ...]:
    return ORDERS if config.swap_policy == "both" else ("ab",)


def judge_one(
    config: JudgeConfig,
    client: ChatCompleter,
    pair: PairPayload,
    order: Order,
    *,
    fingerprint: str | None = None,
) -> OrderResult:
    """Make one call and read it. Never raises: failures come back as ``error`` results."""
    fingerprint = fingerprint or config.fingerprint()
    base = OrderResult(fingerprint=fingerprint, pair_id=pair.pair_id, order=order, status="error")
    if config.reference_field and pair.reference is None:
        # Judged without its reference the verdict would be another judge's: no call, an
        # error (retried by the next run, once the pair has one).
        why = f"the pair has no reference answer in its meta field {config.reference_field!r}"
        return replace(base, error=why, attempts=0)
    try:
        messages = messages_for_order(
            config,
            question=pair.question,
            answer_a=pair.answer_a,
            answer_b=pair.answer_b,
            order=order,
            reference=pair.reference,
        )
        sampling = Sampling(**{f.name: getattr(config, f.name) for f in fields(Sampling)})
        result = client.answer(messages, sampling)
    except ChatCallError as exc:
        return replace(base, error=exc.reason, attempts=exc.attempts)
    except Exception as exc:  # a bug or an adapter failure must not kill the whole run
        return replace(base, error=f"{type(exc).__name__}: {exc}", attempts=1)

    margin: LogprobMargin | None
    if config.verdict_mode == "next_token":
        # The verdict is read from the next token's probabilities, not from written text.
        verdict, margin = next_token_verdict(result.logprobs)
    else:
        verdict = parse_verdict(
            result.content,
            mode=config.parse_mode,
            allow_tie=config.tie_policy == "allow_tie",
        )
        margin = None
        if config.top_logprobs > 0:
            if result.logprobs:
                margin = verdict_margin(result.logprobs, mode=config.parse_mode)
            else:
                margin = LogprobMargin(None, False, "the server returned no log-probabilities")
    return replace(
        base,
        status="ok" if verdict.ok else "failed",
        raw_output=result.content,
        verdict=verdict,
        margin=margin,
        usage=dict(result.usage),
        latency_s=result.latency_s,
        attempts=result.attempts,
    )


def combine_order_results(
    ab: OrderResult, ba: OrderResult | None, *, swapped: bool = True
) -> CombinedVerdict:
    """The pair's combined verdict from its order results (see `combine_orders`)."""
    return combine_orders(
        ab.verdict if ab.status != "error" else None,
        None if ba is None or ba.status == "error" else ba.verdict,
        margin_ab=None if ab.margin is None else ab.margin.value,
        margin_ba=None if ba is None or ba.margin is None else ba.margin.value,
        swapped=swapped,
    )


def run_judge(
    config: JudgeConfig,
    pairs: Iterable[PairPayload],
    *,
    lookup: Lookup,
    store: Store,
    progress: Callable[[RunCounts], None] | None = None,
    on_pair: Callable[[PairResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    client: ChatCompleter | None = None,
    environ: Mapping[str, str] | None = None,
    n_pairs: int | None = None,
) -> RunCounts:
    """Judge every pair in every order of the swap policy; see the module docstring.

    Without ``client``, an `openai_compatible` config gets a `ChatClient` built from its
    base URL, key variable, timeout, retries, rate limit and concurrency cap. Other
    providers need an adapter passed as ``client``. ``n_pairs`` sets the progress total when
    ``pairs`` is lazy (a list or tuple is counted directly).
    """
    fingerprint = config.fingerprint()
    orders = orders_for(config)
    counts = RunCounts(total=_total(pairs, n_pairs, len(orders)))
    owned_client: ChatClient | None = None
    if client is None:
        if config.verdict_mode == "next_token":
            raise JudgeConfigError(
                "verdict_mode",
                "a next_token judge needs its completion client "
                "(judges.core.next_token.NextTokenClient) passed as client",
            )
        if config.provider != "openai_compatible":
            raise JudgeConfigError(
                "provider",
                f"{config.provider} judges are not run over HTTP; pass a client adapter",
            )
        assert config.base_url is not None  # enforced by JudgeConfig
        owned_client = ChatClient(
            config.base_url,
            api_key=config.api_key(environ),
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            requests_per_minute=config.requests_per_minute,
            max_concurrency=config.max_concurrency,
        )
        client = owned_client

    pending: dict[PairId, dict[Order, OrderResult]] = {}
    in_flight: dict[Future[OrderResult], tuple[PairPayload, Order]] = {}

    def record(result: OrderResult) -> None:
        counts.done += 1
        if result.status == "ok":
            counts.parsed += 1
        elif result.status == "failed":
            counts.failed_parse += 1
        else:
            counts.errors += 1
        if not result.from_cache:
            counts.calls_made += 1
            counts.http_requests += result.attempts
            store(result)
        got = pending.setdefault(result.pair_id, {})
        got[result.order] = result
        if len(got) == len(orders):
            del pending[result.pair_id]
            if on_pair is not None:
                ab, ba = got["ab"], got.get("ba")
                on_pair(
                    PairResult(
                        pair_id=result.pair_id,
                        ab=ab,
                        ba=ba,
                        combined=combine_order_results(ab, ba, swapped=len(orders) == 2),
                    )
                )
        if progress is not None:
            progress(replace(counts))

    def drain(block_until_below: int) -> None:
        while len(in_flight) >= block_until_below and in_flight:
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in finished:
                in_flight.pop(future)
                record(future.result())  # judge_one never raises

    window = config.max_concurrency * QUEUED_PER_WORKER
    try:
        with ThreadPoolExecutor(
            max_workers=config.max_concurrency, thread_name_prefix="judge"
        ) as pool:
            for pair, order in _jobs(pairs, orders):
                cached = lookup(fingerprint, pair.pair_id, order)
                if cached is not None and cached.status in ("ok", "failed"):
                    counts.cache_hits += 1
                    record(replace(cached, from_cache=True, pair_id=pair.pair_id, order=order))
                    continue
                if should_stop is not None and should_stop():
                    counts.stopped = True
                    break
                drain(block_until_below=window)
                future = pool.submit(
                    judge_one, config, client, pair, order, fingerprint=fingerprint
                )
                in_flight[future] = (pair, order)
            drain(block_until_below=1)
    finally:
        if owned_client is not None:
            owned_client.close()
    return counts


def _jobs(
    pairs: Iterable[PairPayload], orders: tuple[Order, ...]
) -> Iterator[tuple[PairPayload, Order]]:
    for pair in pairs:
        for order in orders:
            yield pair, order


def _total(pairs: Iterable[PairPayload], n_pairs: int | None, n_orders: int) -> int | None:
    # Only plain sequences are measured: len() on a lazy collection (a Django QuerySet) would
    # load all of it, which is what reading pairs lazily avoids. Such callers pass n_pairs.
    if n_pairs is not None:
        return n_pairs * n_orders
    if isinstance(pairs, list | tuple):
        return len(pairs) * n_orders
    return None


__all__ = [
    "ChatCompleter",
    "OrderResult",
    "PairId",
    "PairPayload",
    "PairResult",
    "RunCounts",
    "combine_order_results",
    "judge_one",
    "orders_for",
    "run_judge",
]
