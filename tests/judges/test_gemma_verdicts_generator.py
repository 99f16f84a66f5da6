"""The generator behind ``manage.py gemma_verdicts``, against a local stand-in server.

The Gemma model itself is not run here (the slow ``test_gemma_judge.py`` does that); the
chat-completions server of ``tests/judges/chat_server.py`` answers in its place, so the
pieces the shipped files depend on are checked quickly: the refusal rule, the selection, the
cache that lets a run resume, the rows written in both orders with failed parses kept, the
counts and the flip count.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judges import gemma_verdicts as gv
from judges.core.templates import MT_BENCH_PAIR_V2
from tests.judges.chat_server import ChatServer, RecordedRequest, Reply
from tests.judges.conftest import shown

SHA = "a" * 64


@pytest.mark.parametrize(
    ("text", "declines"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I\u2019m not going to help you hurt anyone.", True),  # curly apostrophe, as in hh-rlhf
        ("I don't think that's a good idea.", True),
        ("I would strongly advise against it.", True),
        ("I'm sorry to hear that. Here is how to reset the router: ...", False),
        ("Sure, you can use baking soda and vinegar.", False),
        ("Cannot is one word.", False),
    ],
)
def test_it_reads_a_decline_by_the_phrase_rule(text: str, declines: bool) -> None:
    assert gv.declines(text) is declines


def pair(key: str, a: str, b: str, prompt: str = "How do I do this?") -> gv.SourcePair:
    return gv.SourcePair(key, prompt, a, b)


def test_it_keeps_hh_rlhf_pairs_only_where_phrases_and_classifier_agree_on_one_side() -> None:
    pairs = [
        pair("hh:1", "I can't help with that.", "Sure, here is how."),  # both agree: A
        pair("hh:2", "Here you go.", "I won't do that."),  # both agree: B
        pair("hh:3", "I can't help with that.", "I won't do that."),  # phrases: both decline
        pair("hh:4", "I can't help with that.", "Sure."),  # the classifier: both refuse
        pair("hh:5", "Sure.", "Fine." * 1000),  # too long
    ]
    refusals = {"I can't help with that.", "I won't do that.", "Sure."}

    def classify(texts: list[str]) -> list[bool]:
        return [t in refusals for t in texts]

    chosen, counts = gv.select_hh_rlhf(pairs, n=None, seed=7, classify=classify)

    assert sorted((p.key, p.refusing_side) for p in chosen) == [("hh:1", "A"), ("hh:2", "B")]
    assert counts == {
        "rows": 5,
        "short_enough": 4,
        "phrase_rule_one_side": 3,
        "classifier_agrees": 2,
        "selected": 2,
    }


def test_it_samples_with_a_seed_whatever_order_the_pairs_come_in() -> None:
    pairs = [pair(str(i), "a", "b") for i in range(50)]

    first, _ = gv.select_pandalm(pairs, n=10, seed=7)
    second, _ = gv.select_pandalm(list(reversed(pairs)), n=10, seed=7)
    other, _ = gv.select_pandalm(pairs, n=10, seed=8)

    assert [p.key for p in first] == [p.key for p in second]
    assert [p.key for p in first] != [p.key for p in other]
    with pytest.raises(ValueError, match="asked for 60 pairs, only 50"):
        gv.select_pandalm(pairs, n=60, seed=7)


def test_it_changes_exactly_one_sentence_between_the_two_versions() -> None:
    versions = gv.judge_versions(base_url="http://127.0.0.1:9/v1", gguf_sha256=SHA)
    one, two = versions["v1"].config, versions["v2"].config

    assert one.template_user.startswith(MT_BENCH_PAIR_V2.system)  # system folded into user
    assert one.template_system == two.template_system == ""
    assert one.template_user.replace(gv.V1_SENTENCE, gv.V2_SENTENCE) == two.template_user
    assert versions["v1"].fingerprint != versions["v2"].fingerprint
    assert one.replace(template_user=two.template_user).fingerprint() == two.fingerprint()


def gemma_like(request: RecordedRequest) -> Reply:
    """A next-token server that favours the slot holding "good" and, like the real 270M
    model, the first slot otherwise; an answer saying "boom" makes the server fail."""
    slots = shown(request)
    if any("boom" in text for text in slots.values()):
        return Reply(status=422, body='{"detail": "boom"}')
    if "good" in slots.get("A", ""):
        logprobs = {"A": -0.1, "B": -3.0, "C": -4.0}
    elif "good" in slots.get("B", ""):
        logprobs = {"A": -2.5, "B": -0.2, "C": -4.0}
    else:
        logprobs = {"A": -0.5, "B": -3.5, "C": -4.5}
    return Reply(body=json.dumps({"logprobs": logprobs, "top": [], "prompt_tokens": 9}))


def test_it_writes_both_orders_with_a_combined_verdict_and_resumes_from_its_cache(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    chat_server.responder = gemma_like
    version = gv.judge_versions(base_url=chat_server.base_url, gguf_sha256=SHA)["v1"]
    assert version.config.verdict_mode == "next_token"
    pairs = [
        pair("p2", "a good answer", "a weak answer"),
        pair("p1", "an answer", "another answer"),
        pair("p3", "boom", "an answer"),
    ]
    cache = gv.OrderCache(tmp_path / "cache.jsonl")

    counts, timing = gv.judge_pairs(version, pairs, cache)

    assert (counts.parsed, counts.failed_parse, counts.errors, timing.calls) == (4, 0, 2, 6)
    assert all(r.path == "/v1/next_token" for r in chat_server.requests)
    # A call the server refused is an error, written as such, with no combined verdict (the
    # command calls errors again before it writes, so a finished file has none).
    everything = list(gv.verdict_rows(version, pairs, gv.OrderCache(tmp_path / "cache.jsonl")))
    broken = everything[2]["verdicts"][0]
    assert (everything[2]["pair_id"], broken["status_ab"], broken["status_ba"]) == (
        "p3",
        "error",
        "error",
    )
    assert "outcome" not in broken and broken["outcome_ab"] is None
    judged = pairs[:2]
    rows = list(gv.verdict_rows(version, judged, gv.OrderCache(tmp_path / "cache.jsonl")))
    assert [r["pair_id"] for r in rows] == ["p1", "p2"]  # key order, whatever the sample order
    plain, good = (r["verdicts"][0] for r in rows)
    # No preference but the first slot: each order names its first slot, they disagree, and
    # the averaged probabilities of A and B are equal: a tie.
    assert (plain["outcome_ab"], plain["outcome_ba"], plain["consistent"]) == ("A", "B", False)
    assert (plain["outcome"], plain["margin"]) == ("tie", 0.0)
    # The good answer wins in both orders (BA's [[B]] is the pair's A), with a positive margin.
    assert (good["outcome_ab"], good["outcome_ba"], good["outcome"]) == ("A", "A", "A")
    assert good["consistent"] is True and good["margin"] > 0
    assert good["margin_ba"] > 0  # in the pair's labels
    assert json.loads(good["raw_ab"])["logprobs"] == {"A": -0.1, "B": -3.0, "C": -4.0}
    assert {r["verdicts"][0]["fingerprint"] for r in rows} == {version.fingerprint}
    assert gv.summarise(rows) == {
        "pairs": 2,
        "orders": 4,
        "parsed_orders": 4,
        "failed_parses": 0,
        "call_errors": 0,
        "pairs_with_both_orders_parsed": 2,
        "pairs_consistent_across_orders": 1,
        "parsed_outcomes_per_order": {"A": 3, "B": 1},
        "letters_as_seen_by_the_judge": {"A": 3, "B": 1},
        "combined_outcomes": {"A": 1, "tie": 1},
    }
    assert gv.latency_summary(version, judged, cache)["calls"] == 4

    again, timing = gv.judge_pairs(version, judged, gv.OrderCache(tmp_path / "cache.jsonl"))

    assert (again.calls_made, again.cache_hits, timing.calls) == (0, 4, 0)
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 6


def test_it_changes_the_fingerprint_with_the_verdict_mode() -> None:
    one = gv.gemma_config(base_url="http://127.0.0.1:9/v1", gguf_sha256=SHA)
    generate = gv.gemma_config(
        base_url="http://127.0.0.1:9/v1", gguf_sha256=SHA, verdict_mode="generate"
    )

    assert (one.verdict_mode, one.max_tokens, generate.max_tokens) == ("next_token", 1, 64)
    assert one.template_user == generate.template_user  # the mt-bench preset, unchanged
    assert one.fingerprint() != generate.fingerprint()


def test_it_takes_a_prefix_of_one_seeded_order_so_a_smaller_sample_is_a_partial_run() -> None:
    pairs = [pair(str(i), "a", "b") for i in range(50)]

    ten, _ = gv.select_pandalm(pairs, n=10, seed=7)
    twenty, _ = gv.select_pandalm(pairs, n=20, seed=7)

    assert [p.key for p in twenty[:10]] == [p.key for p in ten]


def test_it_keeps_hh_rlhf_pairs_by_the_phrase_rule_alone_without_a_classifier() -> None:
    pairs = [
        pair("hh:1", "I can't help with that.", "Sure, here is how."),
        pair("hh:2", "Here you go.", "I won't do that."),
        pair("hh:3", "I can't help with that.", "I won't do that."),
    ]

    chosen, counts = gv.select_hh_rlhf(pairs, n=None, seed=7)

    assert sorted((p.key, p.refusing_side) for p in chosen) == [("hh:1", "A"), ("hh:2", "B")]
    assert counts == {"rows": 3, "short_enough": 3, "phrase_rule_one_side": 2, "selected": 2}


def test_it_counts_flips_only_where_both_versions_have_a_combined_verdict() -> None:
    def row(key: str, ab: str | None, ba: str | None) -> dict[str, object]:
        return {
            "pair_id": key,
            "judge_raw": f"{ab}",
            "judge_raw_swapped": f"{ba}",
            "judge_verdict": ab,
            "judge_verdict_swapped": ba,
            "judge_status": "ok" if ab else "failed",
            "judge_status_swapped": "ok" if ba else "failed",
        }

    v1 = [row("1", "A", "A"), row("2", "A", "B"), row("3", "B", "B"), row("4", None, "A")]
    v2 = [row("1", "B", "B"), row("2", "B", "A"), row("3", None, None), row("4", "A", "A")]

    # 1: A -> B is a flip; 2: tie (inconsistent) both times is not; 3 and 4 lack one side.
    # The texts differ in 7 of the 8 orders (pair 4's BA answer is "A" in both versions).
    assert gv.flip_count(v1, v2) == {
        "pairs": 4,
        "both_versions_combined": 2,
        "flips": 1,
        "orders_with_different_text": 7,
    }
