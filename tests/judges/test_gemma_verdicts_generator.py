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
    """Parses for answers containing "good", rambles (a failed parse) otherwise."""
    slots = shown(request)
    if "good" in slots.get("A", ""):
        return Reply(content="A is good. [[A]]")
    if "good" in slots.get("B", ""):
        return Reply(content="B is good. [[B]]")
    return Reply(content="[The Start of Assistant C's Answer]\nmore text")


def test_it_writes_both_orders_keeps_failed_parses_and_resumes_from_its_cache(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    chat_server.responder = gemma_like
    version = gv.judge_versions(base_url=chat_server.base_url, gguf_sha256=SHA)["v1"]
    pairs = [
        pair("p2", "a good answer", "a weak answer"),
        pair("p1", "an answer", "another answer"),
    ]
    cache = gv.OrderCache(tmp_path / "cache.jsonl")

    counts, timing = gv.judge_pairs(version, pairs, cache)

    assert (counts.parsed, counts.failed_parse, counts.errors, timing.calls) == (2, 2, 0, 4)
    rows = list(gv.verdict_rows(version, pairs, gv.OrderCache(tmp_path / "cache.jsonl")))
    assert [r["pair_id"] for r in rows] == ["p1", "p2"]  # key order, whatever the sample order
    failed, good = rows
    assert (failed["judge_verdict"], failed["judge_status"]) == (None, "failed")
    assert (failed["judge_verdict_swapped"], failed["judge_status_swapped"]) == (None, "failed")
    assert failed["judge_raw"].startswith("[The Start of Assistant C")
    # The swapped order showed the good answer second, the judge said [[B]]: the pair's A.
    assert (good["judge_verdict"], good["judge_verdict_swapped"]) == ("A", "A")
    assert {r["judge_fingerprint"] for r in rows} == {version.fingerprint}
    assert gv.summarise(rows) == {
        "pairs": 2,
        "orders": 4,
        "parsed_orders": 2,
        "failed_parses": 2,
        "call_errors": 0,
        "pairs_with_both_orders_parsed": 1,
        "pairs_consistent_across_orders": 1,
        "parsed_outcomes": {"A": 2},
        "answers_repeating_the_instructions": 0,
        "answers_continuing_the_answer_blocks": 2,
    }
    assert gv.latency_summary(version, pairs, cache)["calls"] == 4

    again, timing = gv.judge_pairs(version, pairs, gv.OrderCache(tmp_path / "cache.jsonl"))

    assert (again.calls_made, again.cache_hits, timing.calls) == (0, 4, 0)
    assert len(chat_server.requests) == 4
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["status"] in ("ok", "failed") for line in lines)


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
