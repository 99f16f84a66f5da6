"""MT-Bench pairwise judgments: human experts and GPT-4 pair judges, as FastChat writes them.

Two row shapes, both JSON lines:

- agreement files (`human_judgments`, `gpt4_pair_judgments`, the Hugging Face
  `lmsys/mt_bench_human_judgments` rows): `question_id, model_a, model_b, winner, judge,
  turn`, winner one of `model_a, model_b, tie, tie (inconsistent)`, optional
  `conversation_a/_b` with the texts;
- FastChat `model_judgment/*_pair.jsonl`: `question_id, model_1, model_2, g1_winner,
  g2_winner, g1_judgment, g2_judgment, judge, turn`, where game 1 shows model_1 first and game
  2 model_2 first, winners already mapped back to `model_1`/`model_2` (or `tie`, `error`).

A judge given as `expert_*`, `author_*` or `human*` is a person (a human vote); anything else
(`["gpt-4", "pair-v2"]`, `gpt4_pair`) is an LLM judge (a verdict). As in FastChat's
`compute_agreement.py`, the two model names are sorted and the winner reverted when swapped:
the key is `q<question_id>:<model 1>|<model 2>:t<turn>`, response A is the first name.

Texts come from the answers files (`model_answer/*.jsonl`), the questions file
(`question.jsonl`), or the rows' conversations; without them the pair imports with no text.
Turn 2 shows both turns of each side (see `join_turns`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from corpus.importers.fields import MISSING, Checker
from corpus.importers.formats.base import ParseContext, per_item, side_files_read
from corpus.importers.readers import RecordFile, describe
from corpus.importers.records import (
    JudgeRef,
    PairContent,
    Row,
    RowError,
    VerdictRecord,
    Vote,
    join_turns,
)

HUMAN_PREFIXES = ("expert", "author", "human")
WINNERS = ("model_a", "model_b", "tie", "tie (inconsistent)", "error")
GAME_WINNERS = ("model_1", "model_2", "tie", "error")


@dataclass
class Texts:
    questions: dict[int, tuple[list[str], str]]  # question id → (user turns, category)
    answers: dict[tuple[int, str], list[str]]  # (question id, model) → assistant turns


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    texts = Texts({}, {})
    side_errors = [*_load_questions(ctx.options.questions, texts)]
    side_errors += _load_answers(ctx.options.answers, texts)
    if side_errors:
        yield from side_errors
        return
    yield from per_item(
        ctx.source, lambda c: _row(ctx, c, texts), required=("question_id", "judge", "turn")
    )


def _row(ctx: ParseContext, c: Checker, texts: Texts) -> Iterator[Row | RowError]:
    qid = c.integer("question_id")
    turn = c.integer("turn", minimum=1)
    pairwise_game = "model_1" in c.data or "g1_winner" in c.data
    first, second = ("model_1", "model_2") if pairwise_game else ("model_a", "model_b")
    model_1 = c.string(first, nonempty=True)
    model_2 = c.string(second, nonempty=True)
    if model_1 is not None and model_1 == model_2:
        c.error(second, f"the same model as {first} ({model_1!r})")
    judge = _judge(c)
    if "score" in c.data and "winner" not in c.data and "g1_winner" not in c.data:
        c.error("score", "single-answer grading, not a pairwise judgment")
    if c.errors or qid is None or turn is None or model_1 is None or model_2 is None:
        yield from c.errors
        return
    assert judge is not None
    swapped = model_1 > model_2
    m_a, m_b = (model_2, model_1) if swapped else (model_1, model_2)
    key = f"q{qid}:{m_a}|{m_b}:t{turn}"
    side = {m_a: "A", m_b: "B"}
    row = Row(c.item.line, key, "question_id", _pair(ctx, c, texts, qid, turn, m_a, m_b, swapped))
    if isinstance(judge, str):
        winner = c.choice("winner", ("model_a", "model_b", "tie"))
        if winner is not None:
            chosen = model_1 if winner == "model_a" else model_2
            outcome = "tie" if winner == "tie" else side[chosen]
            row.votes.append(Vote(judge, "mtbench_expert", outcome, None, "winner"))
    elif pairwise_game:
        row.verdicts.append(_game_verdict(c, judge, side, model_1, model_2, swapped))
    else:
        winner = c.choice("winner", WINNERS)
        if winner is not None:
            row.verdicts.append(_agreement_verdict(judge, winner, side, model_1, model_2))
    if c.errors:
        yield from c.errors
        return
    yield row


def _judge(c: Checker) -> str | JudgeRef | None:
    """A person's id (str) or an LLM judge."""
    value = c.raw("judge")
    if isinstance(value, str) and value.strip():
        if value.lower().startswith(HUMAN_PREFIXES):
            return value
        return JudgeRef(f"{value} · mt-bench", value, "mt-bench")
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        model, template = value[0], "/".join(value[1:])
        name = f"{model} · mt-bench {template}".rstrip()
        return JudgeRef(name, model, "mt-bench", template)
    if value is not MISSING:
        c.error("judge", f"expected a name or a list of names, got {describe(value)}")
    return None


def _agreement_verdict(
    judge: JudgeRef, winner: str, side: dict[str, str], model_1: str, model_2: str
) -> VerdictRecord:
    """A winner after both orders ran (FastChat's pair protocol): an agreed winner or tie, a
    disagreement reported as `tie (inconsistent)`, or `error` (the output did not parse)."""
    verdict = VerdictRecord(judge=judge, raw_ab=winner, field="winner")
    if winner == "error":
        verdict.status_ab = "failed"
        return verdict
    verdict.status_ab = verdict.status_ba = "ok"
    if winner == "tie (inconsistent)":
        verdict.outcome, verdict.consistent = "tie", False
        return verdict
    outcome = "tie" if winner == "tie" else side[model_1 if winner == "model_a" else model_2]
    verdict.outcome_ab = verdict.outcome_ba = outcome
    return verdict


def _game_verdict(
    c: Checker, judge: JudgeRef, side: dict[str, str], model_1: str, model_2: str, swapped: bool
) -> VerdictRecord:
    """Game 1 showed model_1 first, game 2 model_2 first: game 1 is the A-first order unless
    the canonical order swapped the models."""
    names = {"model_1": model_1, "model_2": model_2}
    games = []
    for game in ("g1", "g2"):
        winner = c.choice(f"{game}_winner", GAME_WINNERS)
        judgment = c.string(f"{game}_judgment", "")
        outcome = None
        if winner in names:
            outcome = side[names[winner]]
        elif winner == "tie":
            outcome = "tie"
        status = "ok" if outcome is not None else "failed"
        games.append((outcome, status, judgment or "", f"{game}_winner"))
    ab, ba = (games[1], games[0]) if swapped else (games[0], games[1])
    return VerdictRecord(
        judge=judge,
        outcome_ab=ab[0],
        status_ab=ab[1],
        raw_ab=ab[2],
        outcome_ba=ba[0],
        status_ba=ba[1],
        raw_ba=ba[2],
        field=ab[3],
    )


def _pair(
    ctx: ParseContext,
    c: Checker,
    texts: Texts,
    qid: int,
    turn: int,
    m_a: str,
    m_b: str,
    swapped: bool,
) -> PairContent:
    question = texts.questions.get(qid)
    user_turns = question[0] if question else None
    answers_a = texts.answers.get((qid, m_a))
    answers_b = texts.answers.get((qid, m_b))
    conversations = _conversations(c, swapped)
    if conversations is not None:
        user_turns = user_turns or conversations[0]
        answers_a = answers_a or conversations[1]
        answers_b = answers_b or conversations[2]

    def upto(turns: list[str] | None) -> str | None:
        return join_turns(turns[:turn]) if turns is not None and len(turns) >= turn else None

    pair = PairContent(
        prompt=upto(user_turns),
        response_a=upto(answers_a),
        response_b=upto(answers_b),
        model_a=m_a,
        model_b=m_b,
        category=question[1] if question else "",
        turn=turn,
        meta={"question_id": qid},
        text_ref=f"mt-bench:q{qid}:t{turn}",
    )
    if pair.prompt is None or pair.response_a is None or pair.response_b is None:
        ctx.stats["rows_without_text"] += 1
    return pair


def _conversations(c: Checker, swapped: bool) -> tuple[list[str], list[str], list[str]] | None:
    """(user turns, A's turns, B's turns) from `conversation_a/_b`, if the row has them."""
    if "conversation_a" not in c.data or "conversation_b" not in c.data:
        return None
    sides = []
    for name in ("conversation_a", "conversation_b"):
        messages = c.data[name]
        if not isinstance(messages, list):
            c.error(name, f"expected a list of messages, got {describe(messages)}")
            return None
        user: list[str] = []
        assistant: list[str] = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                c.error(f"{name}[{i}]", f"expected an object, got {describe(message)}")
                return None
            role = c.check_choice(f"{name}[{i}].role", message.get("role"), ("user", "assistant"))
            content = c.check_string(f"{name}[{i}].content", message.get("content", MISSING))
            if role is None or content is None:
                return None
            (user if role == "user" else assistant).append(content)
        sides.append((user, assistant))
    (user_a, answers_a), (_, answers_b) = sides
    if swapped:
        answers_a, answers_b = answers_b, answers_a
    return user_a, answers_a, answers_b


def _load_questions(files: list[RecordFile], texts: Texts) -> list[RowError]:
    def read(c: Checker) -> None:
        qid = c.integer("question_id")
        turns = c.turns("turns", null_as_empty=False)
        category = c.string("category", "")
        if qid is not None and turns is not None and not c.errors:
            texts.questions[qid] = (turns, category or "")

    return side_files_read(files, read, required=("question_id", "turns"))


def _load_answers(files: list[RecordFile], texts: Texts) -> list[RowError]:
    """Model answers; as in FastChat, a later answer to the same question replaces an earlier."""

    def read(c: Checker) -> None:
        qid = c.integer("question_id")
        model = c.string("model_id", nonempty=True)
        turns = _answer_turns(c, c.data.get("choices"))
        if qid is not None and model is not None and turns is not None and not c.errors:
            texts.answers[(qid, model)] = turns

    return side_files_read(files, read, required=("question_id", "model_id", "choices"))


def _answer_turns(c: Checker, choices: Any) -> list[str] | None:
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        c.error("choices", f"expected a list of objects with turns, got {describe(choices)}")
        return None
    turns = choices[0].get("turns", MISSING)
    if not isinstance(turns, list):
        c.error("choices[0].turns", f"expected a list of strings, got {describe(turns)}")
        return None
    for i, turn in enumerate(turns):
        if not isinstance(turn, str):
            c.error(f"choices[0].turns[{i}]", f"expected a string, got {describe(turn)}")
            return None
    return turns
