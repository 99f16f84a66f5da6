from __future__ import annotations

import hashlib
import json

import pytest

from judges.core.parsing import parse_verdict
from judges.core.templates import (
    FORCE_CHOICE_INSTRUCTION,
    MT_BENCH_PAIR_V2,
    PRESETS,
    SOS_BENCH_FIVE_CRITERIA,
    TemplateError,
    messages_for_order,
    preset,
    render_messages,
)
from tests.judges.test_core_config import make_config

# The "pair-v2" line of lm-sys/FastChat fastchat/llm_judge/data/judge_prompts.jsonl
# (commit 0e6e7fd), with its description/category fields left out.
FASTCHAT_PAIR_V2_JSONL = (
    '{"name": "pair-v2", "type": "pairwise", "system_prompt": "Please act as an impartial '
    "judge and evaluate the quality of the responses provided by two AI assistants to the "
    "user question displayed below. You should choose the assistant that follows the user's "
    "instructions and answers the user's question better. Your evaluation should consider "
    "factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of "
    "detail of their responses. Begin your evaluation by comparing the two responses and "
    "provide a short explanation. Avoid any positional biases and ensure that the order in "
    "which the responses were presented does not influence your decision. Do not allow the "
    "length of the responses to influence your evaluation. Do not favor certain names of the "
    "assistants. Be as objective as possible. After providing your explanation, output your "
    'final verdict by strictly following this format: \\"[[A]]\\" if assistant A is better, '
    '\\"[[B]]\\" if assistant B is better, and \\"[[C]]\\" for a tie.", "prompt_template": '
    "\"[User Question]\\n{question}\\n\\n[The Start of Assistant A's Answer]\\n{answer_a}\\n"
    "[The End of Assistant A's Answer]\\n\\n[The Start of Assistant B's Answer]\\n{answer_b}"
    '\\n[The End of Assistant B\'s Answer]", "output_format": "[[A]]"}'
)

# sha256 of the system_prompt value of penfever/arena-hard-auto config/judge_config.yaml
# (commit 0679352), loaded with yaml.safe_load from the upstream file.
SOS_SYSTEM_SHA256 = "8302f2ce46295486fea47e1fdfc0aa4d727e7d56be9de041e8701250d9a7c280"


def test_the_mt_bench_preset_is_fastchat_pair_v2_word_for_word() -> None:
    upstream = json.loads(FASTCHAT_PAIR_V2_JSONL)
    assert MT_BENCH_PAIR_V2.system == upstream["system_prompt"]
    assert MT_BENCH_PAIR_V2.user == upstream["prompt_template"]


def test_the_sos_bench_preset_is_the_published_text() -> None:
    system = SOS_BENCH_FIVE_CRITERIA.system
    assert hashlib.sha256(system.encode("utf-8")).hexdigest() == SOS_SYSTEM_SHA256
    for criterion in ("Correctness", "Completeness", "Safety", "Conciseness", "Style"):
        assert f"{criterion}:" in system
    for token in ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]"):
        assert token in system
    assert SOS_BENCH_FIVE_CRITERIA.criteria == (
        "correctness",
        "completeness",
        "safety",
        "conciseness",
        "style",
    )


@pytest.mark.parametrize("template", list(PRESETS.values()), ids=list(PRESETS))
def test_every_preset_example_verdict_parses(template: object) -> None:
    # The format each prompt asks for must be one our parser reads.
    assert template in (MT_BENCH_PAIR_V2, SOS_BENCH_FIVE_CRITERIA)
    example = '"[[A]]" if assistant A is better' if template is MT_BENCH_PAIR_V2 else "[[A>>B]]"
    assert parse_verdict(example).outcome == "A"


def test_it_finds_presets_by_name_and_lists_them_when_unknown() -> None:
    assert preset("mt_bench_pair_v2") is MT_BENCH_PAIR_V2
    with pytest.raises(TemplateError, match="mt_bench_pair_v2, sos_bench_five_criteria"):
        preset("pair-v2")


def test_it_puts_the_answers_in_the_slots_of_the_requested_order() -> None:
    config = make_config()
    ab = messages_for_order(
        config, question="Capital of France?", answer_a="Paris", answer_b="Lyon", order="ab"
    )
    ba = messages_for_order(
        config, question="Capital of France?", answer_a="Paris", answer_b="Lyon", order="ba"
    )
    assert [m["role"] for m in ab] == ["system", "user"]
    assert ab[0]["content"] == MT_BENCH_PAIR_V2.system
    assert ab[1]["content"] == (
        "[User Question]\nCapital of France?\n\n"
        "[The Start of Assistant A's Answer]\nParis\n[The End of Assistant A's Answer]\n\n"
        "[The Start of Assistant B's Answer]\nLyon\n[The End of Assistant B's Answer]"
    )
    assert ba[1]["content"].index("Lyon") < ba[1]["content"].index("Paris")
    assert ba[0] == ab[0]


@pytest.mark.parametrize(
    ("system", "user", "fields", "messages"),
    [
        pytest.param(
            "",
            "Q: {question}\nA: {answer_a}\nB: {answer_b}",
            {
                "question": "Format {x} in Python?",
                "answer_a": "Use f'{x}'. Also {answer_b} is literal.",
                "answer_b": "Use '{}'.format(x)",
            },
            [
                {
                    "role": "user",
                    "content": "Q: Format {x} in Python?\nA: Use f'{x}'. Also {answer_b} is "
                    "literal.\nB: Use '{}'.format(x)",
                }
            ],
            id="never-expands-placeholders-or-braces-inside-answers",
        ),
        pytest.param(
            "Judge by this rubric: {rubric}",
            "{question} {answer_a} {answer_b}",
            {"question": "q", "answer_a": "a", "answer_b": "b", "rubric": "safety first"},
            [
                {"role": "system", "content": "Judge by this rubric: safety first"},
                {"role": "user", "content": "q a b"},
            ],
            id="fills-a-rubric-slot-when-there-is-one",
        ),
    ],
)
def test_it_renders_the_templates_slots(
    system: str, user: str, fields: dict[str, str], messages: list[dict[str, str]]
) -> None:
    assert render_messages(system=system, user=user, **fields) == messages


def test_it_appends_the_rubric_when_the_template_has_no_slot_for_it() -> None:
    config = make_config(rubric="Correct answers beat polite ones.")
    system = messages_for_order(config, question="q", answer_a="a", answer_b="b", order="ab")[0]
    assert system["content"].startswith(MT_BENCH_PAIR_V2.system)
    assert system["content"].endswith("[Rubric]\nCorrect answers beat polite ones.")


def test_it_tells_the_judge_not_to_tie_under_force_choice() -> None:
    config = make_config(tie_policy="force_choice")
    system = messages_for_order(config, question="q", answer_a="a", answer_b="b", order="ab")[0]
    assert system["content"].endswith(FORCE_CHOICE_INSTRUCTION)
    allow = make_config()
    assert (
        FORCE_CHOICE_INSTRUCTION
        not in messages_for_order(allow, question="q", answer_a="a", answer_b="b", order="ab")[0][
            "content"
        ]
    )


def test_it_refuses_an_unknown_order() -> None:
    with pytest.raises(TemplateError, match="'ab' or 'ba'"):
        messages_for_order(make_config(), question="q", answer_a="a", answer_b="b", order="xy")  # type: ignore[arg-type]
