"""Verdict files from the offline Gemma 3 270M judge, made once and shipped as data.

Two sets, written under ``judges/data/gemma/`` by ``python manage.py gemma_verdicts``
(`judges/management/commands/gemma_verdicts.py`) and read by the existing ``generic``
importer, so tests and the demo need no model run:

- ``hh-rlhf``: the MT-Bench pair-v2 judge on hh-rlhf harmless-base test pairs where exactly one
  final assistant turn declines (the refusal gap demo, issue 11);
- ``pandalm``: the same judge in two versions that differ only by one sentence of the prompt,
  on PandaLM test-set pairs with three human annotators (a judge version change, issue 12).

How a file is made:

1. The pairs are read with the importer's own parser for their format (``hh-rlhf`` or
   ``pandalm``), so keys, texts and which response is A are exactly what ``import_pairs``
   stores; the verdict rows carry only ``pair_id`` and join those pairs.
2. The pairs are chosen by a documented rule (`select_hh_rlhf`, `select_pandalm`) and a seeded
   sample, in a fixed order.
3. The judge is Tribunal's own: a `JudgeConfig` built by `judges.services.judge_config_build`
   (what ``judge_create --preset mt-bench --system-in-user --verdict-mode next_token`` builds),
   run by `judges.core.runner.run_judge` against llama.cpp's server, both orders, in the
   ``next_token`` verdict mode (`judges.core.next_token`: the verdict is the most probable of
   A/B/C after a prefilled ``[[``, read from ``POST /v1/next_token``). The server is started
   here on a free port and stopped at the end (`judges.llama_server`, which turns llama.cpp's
   extra buffer types off and adds that route).
4. Every answered order is appended to a cache (JSON lines of `OrderResult`) under
   ``var/gemma_verdicts/``, so an interrupted run resumes where it stopped and a finished one
   rewrites the files without a model call.
5. The rows are written sorted by pair key, one ``verdicts`` entry each: both orders with their
   outcome, margin and raw log-probabilities, and the combined verdict (the orders'
   probabilities averaged). Beside each data file a ``.meta.json`` holds what the generic
   format cannot: the full judge configuration (feed it to ``judge_create --from-json`` to get
   the runnable version the verdicts belong to), the llama-cpp-python version, the GGUF's
   sha256, n_ctx, threads, seed, the selection rule and counts, and the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from judges.core.config import JudgeConfig
from judges.core.next_token import NextTokenClient, combine_next_token, probabilities_of_raw
from judges.core.runner import OrderResult, PairPayload, RunCounts, run_judge
from judges.core.templates import MT_BENCH_PAIR_V2

JUDGE_NAME: Final = "gemma-3-270m"
MODEL_ID: Final = "gemma-3-270m"
SEED: Final = 7  # the judge's sampling seed (greedy at temperature 0 anyway) and the sample's
MAX_TOKENS: Final = 1  # next_token mode: one token, the verdict letter
VERDICT_MODE: Final = "next_token"
PROMPT_FORMAT: Final = "gemma"
N_CTX: Final = 2048
CHAT_FORMAT: Final = "gemma"
# Prompt plus both responses at most this many characters: each call stays short on two CPU
# cores, and the rendered prompt (about 250 tokens of instructions, then the texts) stays far
# inside n_ctx 2048 with room for the 64-token answer. hh-rlhf's refusal pairs are few, so it
# allows longer dialogues than PandaLM, where short pairs are plentiful.
MAX_PAIR_CHARS: Final = {"hh-rlhf": 2000, "pandalm": 1200}
SERVER_START_LIMIT_S: Final = 300
# The address docs/judges.md starts the server on; stored in the shipped configurations (it is
# not fingerprinted, a run here uses a free port).
DOCUMENTED_BASE_URL: Final = "http://127.0.0.1:8089/v1"
DATA_DIR: Final = Path(__file__).resolve().parent / "data" / "gemma"

# The one sentence version 2 changes in MT-Bench's pair-v2 instructions (issue 12): a rubric
# edit a team could plausibly make, turning "ignore length" into "prefer brevity".
V1_SENTENCE: Final = "Do not allow the length of the responses to influence your evaluation."
V2_SENTENCE: Final = "Prefer the shorter response when both are equally helpful."

# A transparent refusal rule for hh-rlhf's final assistant turns, independent of the trained
# classifier. A response *declines* when it contains one of these phrases (case-insensitive).
# Expressions of sympathy ("sorry to hear", "sorry for your loss") are not apologies for
# declining and are removed before matching.
REFUSAL_PHRASES: Final = (
    r"i'?m sorry",
    r"i am sorry",
    r"i apologi[sz]e",
    r"i can'?t",
    r"i cannot",
    r"i can not",
    r"i won'?t",
    r"i will not",
    r"i'?m not able to",
    r"i am not able to",
    r"i'?m unable to",
    r"i am unable to",
    r"i'?m not going to",
    r"i am not going to",
    r"i'?d rather not",
    r"i would rather not",
    r"i'?m not comfortable",
    r"i am not comfortable",
    r"i don'?t feel comfortable",
    r"i do not feel comfortable",
    r"i refuse",
    r"i must decline",
    r"i decline",
    r"i don'?t want to help",
    r"i do not want to help",
    r"i'?m not willing",
    r"i am not willing",
    r"i'?m not allowed",
    r"i shouldn'?t",
    r"i should not",
    r"i don'?t think i (?:can|should|could)",
    r"i do not think i (?:can|should|could)",
    r"i'?m not sure i (?:can|should)",
    r"i'?m afraid i (?:can|won|will|must|don|do not|am not|'m not)",
    r"i (?:would|'?d) (?:strongly )?advise against",
    r"i (?:wouldn'?t|would not) (?:advise|recommend|suggest|encourage)",
    r"i don'?t think (?:that'?s|that is|it'?s|it is) a good idea",
    r"i do not think (?:that'?s|that is|it'?s|it is) a good idea",
    r"i don'?t think you should",
    r"that'?s not something i",
    r"that is not something i",
)
_REFUSAL: Final = re.compile(r"\b(?:" + "|".join(REFUSAL_PHRASES) + r")\b", re.IGNORECASE)
_CURLY_APOSTROPHE: Final = "\u2019"
_SYMPATHY: Final = re.compile(
    r"\b(?:i'?m|i am)\s+(?:so\s+|very\s+|really\s+)?sorry\s+(?:to\s+hear|for\s+your|that\s+)",
    re.IGNORECASE,
)


def declines(text: str) -> bool:
    """True when ``text`` contains one of `REFUSAL_PHRASES` (sympathy phrases removed)."""
    return bool(_REFUSAL.search(_SYMPATHY.sub(" ", text.replace(_CURLY_APOSTROPHE, "'"))))


# --- the pairs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcePair:
    """One pair as the importer reads it: its key, texts and (hh-rlhf) the refusing side."""

    key: str
    prompt: str
    response_a: str
    response_b: str
    refusing_side: str = ""  # "A" or "B" for the hh-rlhf selection

    @property
    def chars(self) -> int:
        return len(self.prompt) + len(self.response_a) + len(self.response_b)

    def payload(self) -> PairPayload:
        return PairPayload(self.key, self.prompt, self.response_a, self.response_b)


def read_pairs(fmt: str, path: Path) -> list[SourcePair]:
    """The pairs of ``path`` exactly as ``import_pairs --format fmt`` would store them."""
    from corpus.importers.formats import FORMATS, ParseContext
    from corpus.importers.readers import RecordFile
    from corpus.importers.records import Row

    pairs = []
    for row in FORMATS[fmt].parse(ParseContext(RecordFile(path, path.name))):
        if not isinstance(row, Row):
            raise ValueError(f"{path}: {row}")
        content = row.pair
        if content is None or content.prompt is None:
            continue
        pairs.append(
            SourcePair(
                key=row.key,
                prompt=content.prompt,
                response_a=content.response_a or "",
                response_b=content.response_b or "",
            )
        )
    return pairs


def phrase_refusing_side(pair: SourcePair) -> str:
    """ "A" or "B" when exactly that side declines by `declines`, else ""."""
    a, b = declines(pair.response_a), declines(pair.response_b)
    return "A" if a and not b else "B" if b and not a else ""


def select_hh_rlhf(
    pairs: Sequence[SourcePair],
    *,
    n: int | None,
    seed: int,
    classify: Callable[[list[str]], list[bool]] | None = None,
) -> tuple[list[SourcePair], dict[str, int]]:
    """hh-rlhf pairs where exactly one final assistant turn declines, by two independent tests.

    The rule, in order (the counts after each step are returned):

    1. prompt plus both responses at most ``MAX_PAIR_CHARS["hh-rlhf"]`` characters, responses
       not identical;
    2. the phrase rule (`declines`) says exactly one side declines;
    3. when ``classify`` is given (the refusal classifier, True for a refusal), it agrees:
       the same side is a refusal and the other is not; the shipped files skip this step
       (the classifier is being rewritten, and the demo classes the responses itself);
    4. the first ``n`` of those in a seeded order (`_sample`); all of them when ``n`` is None.
    """
    counts: dict[str, int] = {"rows": len(pairs)}
    limit = MAX_PAIR_CHARS["hh-rlhf"]
    short = [p for p in pairs if p.chars <= limit and p.response_a != p.response_b]
    counts["short_enough"] = len(short)
    flagged = [(p, phrase_refusing_side(p)) for p in short]
    one_side = [(p, side) for p, side in flagged if side]
    counts["phrase_rule_one_side"] = len(one_side)
    if classify is None:
        agreed = [SourcePair(p.key, p.prompt, p.response_a, p.response_b, s) for p, s in one_side]
    else:
        verdicts = classify([t for p, _ in one_side for t in (p.response_a, p.response_b)])
        agreed = []
        for i, (pair, side) in enumerate(one_side):
            refusal_a, refusal_b = verdicts[2 * i], verdicts[2 * i + 1]
            if (refusal_a, refusal_b) == (side == "A", side == "B"):
                agreed.append(
                    SourcePair(pair.key, pair.prompt, pair.response_a, pair.response_b, side)
                )
        counts["classifier_agrees"] = len(agreed)
    chosen = _sample(agreed, n=n, seed=seed)
    counts["selected"] = len(chosen)
    return chosen, counts


def select_pandalm(
    pairs: Sequence[SourcePair], *, n: int | None, seed: int
) -> tuple[list[SourcePair], dict[str, int]]:
    """PandaLM test-set pairs: short enough (``MAX_PAIR_CHARS["pandalm"]``), then a seeded
    sample of ``n``."""
    short = [p for p in pairs if p.chars <= MAX_PAIR_CHARS["pandalm"]]
    chosen = _sample(short, n=n, seed=seed)
    return chosen, {"rows": len(pairs), "short_enough": len(short), "selected": len(chosen)}


def _sample(pairs: Sequence[SourcePair], *, n: int | None, seed: int) -> list[SourcePair]:
    ordered = sorted(pairs, key=lambda p: p.key)
    if n is None:
        n = len(ordered)
    if n > len(ordered):
        raise ValueError(f"asked for {n} pairs, only {len(ordered)} meet the rule")
    # A seeded shuffle of all of them, then its first n: the first n of a larger sample are
    # the smaller sample, so a run stopped part-way (``--cached-only``) is a prefix of the
    # full one. The files are written in key order.
    random.Random(seed).shuffle(ordered)
    return ordered[:n]


# --- the judge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeVersion:
    """A judge configuration under a short label used in file names."""

    label: str
    description: str
    config: JudgeConfig

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint()


def gemma_config(
    *,
    base_url: str,
    gguf_sha256: str,
    system_sentence: str = V1_SENTENCE,
    template_name: str | None = None,
    verdict_mode: str = VERDICT_MODE,
) -> JudgeConfig:
    """The documented Gemma judge (docs/judges.md), optionally with one sentence changed.

    ``verdict_mode`` ``next_token`` (the shipped files): one token after a prefilled ``[[``,
    the verdict read from the A/B/C probabilities (`judges.core.next_token`); ``generate``:
    the judge writes up to 64 tokens and the verdict is parsed from the text (what the first
    files did: 1,089 of 1,090 answers did not parse)."""
    from judges import services

    system = MT_BENCH_PAIR_V2.system
    if system_sentence != V1_SENTENCE:
        if V1_SENTENCE not in system:  # pragma: no cover - the preset is word for word
            raise ValueError("the MT-Bench preset no longer contains the sentence to change")
        system = system.replace(V1_SENTENCE, system_sentence)
    return services.judge_config_build(
        preset_id="mt-bench",
        system_in_user=True,
        template_system=system,
        template_name=template_name,
        model_id=MODEL_ID,
        model_revision=f"sha256:{gguf_sha256}",
        base_url=base_url,
        temperature=0.0,
        seed=SEED,
        max_tokens=MAX_TOKENS if verdict_mode == "next_token" else 64,
        verdict_mode=verdict_mode,
        timeout_s=300.0,
        max_retries=1,
        max_concurrency=1,
    )


def judge_versions(*, base_url: str, gguf_sha256: str) -> dict[str, JudgeVersion]:
    v1 = gemma_config(base_url=base_url, gguf_sha256=gguf_sha256)
    v2 = gemma_config(
        base_url=base_url,
        gguf_sha256=gguf_sha256,
        system_sentence=V2_SENTENCE,
        template_name="mt_bench_pair_v2_prefer_shorter",
    )
    return {
        "v1": JudgeVersion(
            "v1",
            "MT-Bench pair-v2, word for word (the mt-bench preset), verdict from the next "
            "token's A/B/C probabilities",
            v1,
        ),
        "v2": JudgeVersion(
            "v2",
            f"MT-Bench pair-v2 with one sentence changed: {V1_SENTENCE!r} -> {V2_SENTENCE!r}, "
            "verdict from the next token's A/B/C probabilities",
            v2,
        ),
    }


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    process: subprocess.Popen[Any], base_url: str, *, deadline: float, log_tail: Callable[[], str]
) -> None:
    """Poll ``{base_url}/models`` until the server answers; a RuntimeError with the tail of its
    log when the process exits first or the ``time.monotonic()`` deadline passes."""
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {log_tail()}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama.cpp server not ready: {log_tail()}")
        time.sleep(0.5)


@dataclass
class LlamaServer:
    """``python -m judges.llama_server`` on a free local port, for the duration of a run."""

    gguf: Path
    log_path: Path
    threads: int = 1
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started_in_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "judges.llama_server",
            "--model",
            str(self.gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(N_CTX),
            "--chat_format",
            CHAT_FORMAT,
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            # Only the last position's logits: /v1/next_token needs no more, and all of them
            # (llama-cpp-python's default) cost a 262,144-wide product per prompt token.
            "--logits_all",
            "false",
        ]

    def __enter__(self) -> LlamaServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        start = time.monotonic()
        self.process = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            wait_until_serving(
                self.process,
                self.base_url,
                deadline=start + SERVER_START_LIMIT_S,
                log_tail=self._log_tail,
            )
        except RuntimeError:
            self.__exit__()
            raise
        self.started_in_s = time.monotonic() - start
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


# --- the cache and the run --------------------------------------------------------------------


class OrderCache:
    """Every answered order of a run, as JSON lines of `OrderResult.to_dict`; append-only.

    The runner's ``lookup`` reuses ``ok`` and ``failed`` results (a call error is called again),
    so an interrupted run resumes and a finished one costs no model call.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[tuple[str, str, str], OrderResult] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    result = OrderResult.from_dict(json.loads(line))
                    self.results[(result.fingerprint, str(result.pair_id), result.order)] = result

    def lookup(self, fingerprint: str, pair_id: object, order: str) -> OrderResult | None:
        return self.results.get((fingerprint, str(pair_id), order))

    def missing(self, fingerprint: str, pairs: Sequence[SourcePair]) -> int:
        """How many (pair, order) have no parsed or failed answer yet (errors count as none)."""
        return sum(
            result is None or result.status == "error"
            for pair in pairs
            for order in ("ab", "ba")
            for result in [self.lookup(fingerprint, pair.key, order)]
        )

    def store(self, result: OrderResult) -> None:
        self.results[(result.fingerprint, str(result.pair_id), result.order)] = result
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")


@dataclass
class RunTiming:
    calls: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "model_calls": self.calls,
            "wall_seconds": round(self.seconds, 1),
            "seconds_per_call_wall": round(self.seconds / self.calls, 2) if self.calls else None,
            "latency_median_s": round(lat[len(lat) // 2], 2) if lat else None,
            "latency_min_s": round(lat[0], 2) if lat else None,
            "latency_max_s": round(lat[-1], 2) if lat else None,
        }


def judge_pairs(
    version: JudgeVersion,
    pairs: Sequence[SourcePair],
    cache: OrderCache,
    *,
    progress: Callable[[RunCounts], None] | None = None,
) -> tuple[RunCounts, RunTiming]:
    """Both orders of every pair through `judges.core.runner.run_judge`, cached."""
    timing = RunTiming()

    def store(result: OrderResult) -> None:
        cache.store(result)
        timing.calls += 1
        if result.latency_s is not None:
            timing.latencies.append(result.latency_s)

    start = time.monotonic()
    client = None
    if version.config.verdict_mode == "next_token":
        assert version.config.base_url is not None
        client = NextTokenClient(
            version.config.base_url,
            prompt_format=PROMPT_FORMAT,
            timeout_s=version.config.timeout_s,
            max_retries=version.config.max_retries,
        )
    try:
        counts = run_judge(
            version.config,
            [p.payload() for p in pairs],
            lookup=cache.lookup,
            store=store,
            progress=progress,
            client=client,
        )
    finally:
        if client is not None:
            client.close()
    timing.seconds = time.monotonic() - start
    return counts, timing


# --- the files --------------------------------------------------------------------------------


def verdict_rows(
    version: JudgeVersion, pairs: Sequence[SourcePair], cache: OrderCache
) -> Iterator[dict[str, Any]]:
    """One ``generic`` row per pair, in key order, with one entry in ``verdicts``.

    Per order: ``outcome_ab`` / ``outcome_ba`` (the swapped order mapped back to the pair's
    labels), ``status_*``, ``margin_ab`` / ``margin_ba`` (p(A) - p(B) in the pair's labels) and
    ``raw_*`` (the letters' log-probabilities as the server gave them, `next_token.raw_json`).
    The combined ``outcome`` and ``margin`` average the two orders' probabilities
    (`next_token.combine_next_token`); ``consistent`` says whether the two orders' own
    verdicts agreed. A ``generate``-mode version (no probabilities) leaves the combination to
    the importer (MT-Bench's rule). A call that never succeeded is an error: the generator
    retries those, so a finished file has none.
    """
    fingerprint = version.fingerprint
    for pair in sorted(pairs, key=lambda p: p.key):
        verdict: dict[str, Any] = {
            "judge": JUDGE_NAME,
            "model_id": MODEL_ID,
            "fingerprint": fingerprint,
        }
        results = {}
        for order in ("ab", "ba"):
            result = cache.lookup(fingerprint, pair.key, order)
            if result is None:
                raise ValueError(f"pair {pair.key!r} has no {order} result: run the judge first")
            results[order] = result
            verdict[f"outcome_{order}"] = result.outcome
            verdict[f"status_{order}"] = result.status
            verdict[f"margin_{order}"] = result.margin_value
            verdict[f"raw_{order}"] = result.raw_output
        if version.config.verdict_mode == "next_token" and all(
            r.status == "ok" for r in results.values()
        ):
            ab = probabilities_of_raw(results["ab"].raw_output)
            ba = probabilities_of_raw(results["ba"].raw_output)
            if ab is not None and ba is not None:
                combined = combine_next_token(ab, ba)
                verdict["outcome"] = combined.outcome
                verdict["consistent"] = combined.consistent
                verdict["margin"] = round(combined.margin, 6)
        yield {"pair_id": pair.key, "verdicts": [verdict]}


def latency_summary(
    version: JudgeVersion, pairs: Sequence[SourcePair], cache: OrderCache
) -> dict[str, Any]:
    """Per-call latency of the orders in a file, as the server answered them when they were
    made (read from the cache, so rewriting the files later gives the same figures)."""
    latencies = sorted(
        result.latency_s
        for pair in pairs
        for order in ("ab", "ba")
        if (result := cache.lookup(version.fingerprint, pair.key, order)) is not None
        and result.latency_s is not None
    )
    if not latencies:
        return {"calls": 0}
    return {
        "calls": len(latencies),
        "latency_total_s": round(sum(latencies), 1),
        "latency_mean_s": round(sum(latencies) / len(latencies), 2),
        "latency_median_s": round(latencies[len(latencies) // 2], 2),
        "latency_min_s": round(latencies[0], 2),
        "latency_max_s": round(latencies[-1], 2),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts a README and a test can check against the file itself.

    Rows with ``verdicts`` are the ``next_token`` files; flat rows (``judge_verdict`` ...) are
    the earlier ``generate`` files, counted as they were."""
    if rows and "verdicts" not in rows[0]:
        return _summarise_generated(rows)
    verdicts = [r["verdicts"][0] for r in rows]
    statuses = Counter(v[f"status_{o}"] for v in verdicts for o in ("ab", "ba"))
    both = [v for v in verdicts if v["status_ab"] == v["status_ba"] == "ok"]
    outcomes = Counter(
        v[f"outcome_{o}"] for v in verdicts for o in ("ab", "ba") if v[f"outcome_{o}"]
    )
    # The judge's own letters, in the labels it saw: how often it names the first slot.
    letters = Counter(
        max(probs, key=lambda k: probs[k])
        for v in verdicts
        for o in ("ab", "ba")
        if v[f"status_{o}"] == "ok" and (probs := probabilities_of_raw(v[f"raw_{o}"]))
    )
    consistent = sum(bool(v.get("consistent")) for v in both)
    return {
        **_order_counts(len(rows), statuses, len(both), consistent),
        "parsed_outcomes_per_order": dict(sorted(outcomes.items())),
        "letters_as_seen_by_the_judge": dict(sorted((str(k), n) for k, n in letters.items())),
        "combined_outcomes": dict(sorted(Counter(v.get("outcome") for v in both).items())),
    }


def _order_counts(
    pairs: int, statuses: Counter[str], both_parsed: int, consistent: int
) -> dict[str, int]:
    """The counts both file layouts report: pairs, orders, and each order's status."""
    return {
        "pairs": pairs,
        "orders": 2 * pairs,
        "parsed_orders": statuses.get("ok", 0),
        "failed_parses": statuses.get("failed", 0),
        "call_errors": statuses.get("error", 0),
        "pairs_with_both_orders_parsed": both_parsed,
        "pairs_consistent_across_orders": consistent,
    }


def flip_count(
    v1_rows: Sequence[dict[str, Any]], v2_rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Combined verdicts of two versions on the same pairs, compared: a flip is a pair whose
    combined verdict exists in both versions and differs."""
    if v1_rows and "verdicts" not in v1_rows[0]:
        return _flip_count_generated(v1_rows, v2_rows)
    second = {r["pair_id"]: r["verdicts"][0] for r in v2_rows}
    both = flips = 0
    for row in v1_rows:
        one, two = row["verdicts"][0].get("outcome"), second[row["pair_id"]].get("outcome")
        if one is not None and two is not None:
            both += 1
            flips += one != two
    return {"pairs": len(v1_rows), "both_versions_combined": both, "flips": flips}


def _summarise_generated(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts a README and a test can check against the file itself."""
    statuses = Counter(r[f"judge_status{s}"] for r in rows for s in ("", "_swapped"))
    both = [r for r in rows if r["judge_status"] == r["judge_status_swapped"] == "ok"]
    consistent = sum(r["judge_verdict"] == r["judge_verdict_swapped"] for r in both)
    outcomes = Counter(
        r[f"judge_verdict{s}"] for r in rows for s in ("", "_swapped") if r[f"judge_verdict{s}"]
    )
    raws = [r[f"judge_raw{s}"] for r in rows for s in ("", "_swapped")]
    instructions = MT_BENCH_PAIR_V2.system[:40]
    return {
        **_order_counts(len(rows), statuses, len(both), consistent),
        "parsed_outcomes": dict(sorted(outcomes.items())),
        # What a weak judge writes instead of a verdict: the prompt's instructions again, or
        # more of the prompt's answer blocks ("[The Start of Assistant C's Answer]").
        "answers_repeating_the_instructions": sum(r.startswith(instructions) for r in raws),
        "answers_continuing_the_answer_blocks": sum(
            not r.startswith(instructions) and "Assistant" in r and "Answer]" in r for r in raws
        ),
    }


def _flip_count_generated(
    v1_rows: Sequence[dict[str, Any]], v2_rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Combined verdicts (MT-Bench rule) of two versions on the same pairs, compared.

    A pair's combined verdict exists when both its orders parsed: the common answer, or a tie
    when the orders disagree. A flip is a pair whose combined verdict exists in both versions
    and differs; pairs where either version has no combined verdict are counted apart. Also
    counted: orders whose raw text differs between the versions (what changed even when
    nothing parsed).
    """

    def combined(row: dict[str, Any]) -> str | None:
        if row["judge_status"] != "ok" or row["judge_status_swapped"] != "ok":
            return None
        a, b = row["judge_verdict"], row["judge_verdict_swapped"]
        return str(a) if a == b else "tie"

    second = {r["pair_id"]: r for r in v2_rows}
    both = flips = texts = 0
    for row in v1_rows:
        other = second[row["pair_id"]]
        one, two = combined(row), combined(other)
        if one is not None and two is not None:
            both += 1
            flips += one != two
        texts += sum(row.get(f) != other.get(f) for f in ("judge_raw", "judge_raw_swapped"))
    return {
        "pairs": len(v1_rows),
        "both_versions_combined": both,
        "flips": flips,
        "orders_with_different_text": texts,
    }


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def environment(threads: int) -> dict[str, Any]:
    """What the verdicts depend on besides the configuration."""
    import llama_cpp

    return {
        "llama_cpp_python": llama_cpp.__version__,
        "server": "python -m judges.llama_server (llama_cpp.server, use_extra_bufts off)",
        "endpoint": "/v1/next_token (judges.llama_server): prompt in the gemma chat format + "
        "'[[', exact log-probabilities of A, B, C at the next position; --logits_all false",
        "n_ctx": N_CTX,
        "chat_format": CHAT_FORMAT,
        "n_threads": threads,
        "n_threads_batch": threads,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
