"""Arena-Hard-Auto judgments (lmarena/arena-hard-auto), as its scripts write them.

- The judgment file (`model_judgment/<judge>/<model>.jsonl`) is the file imported: rows
  `question_id, model, judge, games`, where `games` holds the two orders, each
  `{user_prompt, judgment, score}`. Game 1 shows the baseline as Assistant A and the model as
  B; game 2 swaps them. `score` is the label the judge's `[[...]]` verdict held: `A>>B`,
  `A>B`, `A=B`, `B>A`, `B>>A`; anything else (or null: no label found) is a failed parse.
- Texts come from side files, as for MT-Bench: `--answers model_answer/<model>.jsonl`
  (`question_id, model_id, choices[0].turns[0].content`; the baseline's file too) and
  `--questions question.jsonl` (`question_id, category, cluster, turns[0].content`). Without
  them the pairs import without texts and join the texts imported later.
- The baseline is not named in v0.1 rows: it is `--baseline` (default `gpt-4-0314`, the
  published v0.1 setting) unless a row has a `baseline` field.
- Arena-Hard-Auto v2.0 files are read too: `uid` for `question_id`, rows that name their
  `baseline`, a judgment object for the text, answers as `model, messages[-1].content.answer`,
  questions as `uid, category, prompt`, and null games (a failed call) as failed parses.

Each row is one pair, the baseline (A) against the model (B), keyed
`<question_id>:<baseline>|<model>`, with one verdict by the imported judge
`<judge> · arena-hard`: game 1 is the A-first order, game 2 the swapped one mapped back. The
score's strength is kept as the margin of each order (+2 A>>B, +1 A>B, 0 A=B, -1, -2 in the
pair's labelling; the verdict's margin is their mean) and as the combined verdict's strength
(2 only when every order that named the winner said `>>`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from corpus.importers.fields import MISSING, Checker
from corpus.importers.formats.base import ParseContext, per_item, side_files_read
from corpus.importers.readers import describe
from corpus.importers.records import JudgeRef, PairContent, Row, RowError, VerdictRecord

DEFAULT_BASELINE: Final = "gpt-4-0314"
SOURCE: Final = "arena-hard"
# The label in the order shown: (winner as shown, strength, margin > 0 favouring Assistant A).
SCORES: Final[dict[str, tuple[str, int | None, float]]] = {
    "A>>B": ("A", 2, 2.0),
    "A>B": ("A", 1, 1.0),
    "A=B": ("tie", None, 0.0),
    "B>A": ("B", 1, -1.0),
    "B>>A": ("B", 2, -2.0),
}
_FLIP: Final = {"A": "B", "B": "A", "tie": "tie"}


@dataclass
class Texts:
    questions: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # prompt, cat., cluster
    answers: dict[tuple[str, str], str] = field(default_factory=dict)  # (question, model) → text


@dataclass
class Game:
    outcome: str | None  # in the pair's labelling
    status: str
    raw: str
    margin: float | None
    strength: int | None


def _question_id(c: Checker) -> str | None:
    return c.key("question_id" if "question_id" in c.data or "uid" not in c.data else "uid")


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    texts = Texts()
    side_errors = side_files_read(ctx.options.questions, lambda c: _read_question(c, texts))
    side_errors += side_files_read(ctx.options.answers, lambda c: _read_answer(c, texts))
    if side_errors:
        yield from side_errors
        return
    default_baseline = ctx.options.baseline or DEFAULT_BASELINE
    yield from per_item(
        ctx.source,
        lambda c: _row(ctx, c, texts, default_baseline),
        required=("model", "judge", "games"),
    )


def _row(
    ctx: ParseContext, c: Checker, texts: Texts, default_baseline: str
) -> Iterator[Row | RowError]:
    qid = _question_id(c)
    model = c.string("model", nonempty=True)
    judge = c.string("judge", nonempty=True)
    baseline = c.string("baseline", default_baseline, nonempty=True)
    if model is not None and model == baseline:
        c.error("model", f"the same model as the baseline ({model!r})")
    games = _games(c)
    if c.errors or qid is None or model is None or judge is None or games is None:
        yield from c.errors
        return
    yield Row(
        c.item.line,
        f"{qid}:{baseline}|{model}",
        "question_id" if "question_id" in c.data else "uid",
        _pair(ctx, texts, qid, baseline, model),
        verdicts=[_verdict(JudgeRef(f"{judge} · arena-hard", judge, SOURCE), games)],
    )


def _games(c: Checker) -> list[Game] | None:
    """Game 1 (baseline shown first) as is, game 2 (model first) mapped back to the pair."""
    value = c.raw("games")
    if value is MISSING:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        c.error("games", f"expected a list of one or two games, got {describe(value)}")
        return None
    games = []
    for i, game in enumerate(value):
        where = f"games[{i}]"
        if game is None:  # v2.0: the judge call failed
            games.append(Game(None, "failed", "", None, None))
            continue
        if not isinstance(game, dict):
            c.error(where, f"expected an object, got {describe(game)}")
            return None
        score = game.get("score")
        if score is not None and not isinstance(score, str):
            c.error(f"{where}.score", f"expected a verdict label or null, got {describe(score)}")
            return None
        raw = _judgment_text(game.get("judgment"))
        found = SCORES.get("".join(score.split()).upper()) if score is not None else None
        if found is None:
            games.append(Game(None, "failed", raw, None, None))
            continue
        outcome, strength, margin = found
        if i == 1:
            outcome, margin = _FLIP[outcome], -margin
        games.append(Game(outcome, "ok", raw, margin, strength))
    return games


def _judgment_text(judgment: Any) -> str:
    """The judge's text: v0.1 keeps a string, v2.0 the completion object (kept as JSON)."""
    if judgment is None:
        return ""
    return judgment if isinstance(judgment, str) else json.dumps(judgment, ensure_ascii=False)


def _verdict(judge: JudgeRef, games: list[Game]) -> VerdictRecord:
    first = games[0]
    verdict = VerdictRecord(
        judge=judge,
        outcome_ab=first.outcome,
        status_ab=first.status,
        raw_ab=first.raw,
        margin_ab=first.margin,
        field="games",
    )
    parsed = [first]
    if len(games) == 2:
        second = games[1]
        verdict.outcome_ba, verdict.status_ba = second.outcome, second.status
        verdict.raw_ba, verdict.margin_ba = second.raw, second.margin
        parsed.append(second)
    parsed = [g for g in parsed if g.status == "ok"]
    if parsed:
        verdict.margin = sum(g.margin or 0.0 for g in parsed) / len(parsed)
    outcome, _ = verdict.combine()
    if outcome in ("A", "B"):
        strengths = [g.strength or 1 for g in parsed if g.outcome == outcome]
        verdict.strength = min(strengths)
    return verdict


def _pair(ctx: ParseContext, texts: Texts, qid: str, baseline: str, model: str) -> PairContent:
    prompt, category, cluster = texts.questions.get(qid, (None, "", ""))
    pair = PairContent(
        prompt=prompt,
        response_a=texts.answers.get((qid, baseline)),
        response_b=texts.answers.get((qid, model)),
        model_a=baseline,
        model_b=model,
        category=category,
        meta={"question_id": qid, **({"cluster": cluster} if cluster else {})},
        text_ref=f"arena-hard:{qid}",
    )
    if pair.prompt is None or pair.response_a is None or pair.response_b is None:
        ctx.stats["rows_without_text"] += 1
    return pair


# Side files ------------------------------------------------------------------------------------


def _text_at(c: Checker, value: Any, path: list[str | int], where: str) -> str | None:
    """The string at `path` inside `value` (keys and list indexes); an error names the place."""
    if value is None:
        c.error(where, "missing")
        return None
    for step in path:
        here = where + (f".{step}" if isinstance(step, str) else f"[{step}]")
        if isinstance(step, str):
            found = isinstance(value, dict) and step in value
        else:
            found = isinstance(value, list) and 0 <= step < len(value)
        if not found:
            c.error(here, "missing")
            return None
        value, where = value[step], here
    if not isinstance(value, str):
        c.error(where, f"expected a string, got {describe(value)}")
        return None
    return value


def _read_question(c: Checker, texts: Texts) -> None:
    qid = _question_id(c)
    if "turns" in c.data or "prompt" not in c.data:
        prompt = _text_at(c, c.data.get("turns"), [0, "content"], "turns")
    else:
        prompt = c.string("prompt")
    category = c.string("category", "")
    cluster = c.string("cluster", "")
    if qid is not None and prompt is not None and not c.errors:
        texts.questions[qid] = (prompt, category or "", cluster or "")


def _read_answer(c: Checker, texts: Texts) -> None:
    """A model's answer; a later answer to the same question by the same model replaces one."""
    qid = _question_id(c)
    model = c.string("model_id" if "model_id" in c.data else "model", nonempty=True)
    if "choices" in c.data or "messages" not in c.data:
        answer = _text_at(c, c.data.get("choices"), [0, "turns", 0, "content"], "choices")
    else:
        answer = _v2_answer(c)
    if qid is not None and model is not None and answer is not None and not c.errors:
        texts.answers[(qid, model)] = answer


def _v2_answer(c: Checker) -> str | None:
    """v2.0: the last message's content, a string or `{"answer": ...}`."""
    messages = c.data["messages"]
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        c.error("messages", f"expected a list of messages, got {describe(messages)}")
        return None
    last = len(messages) - 1
    if isinstance(messages[-1].get("content"), dict):
        return _text_at(c, messages, [last, "content", "answer"], "messages")
    return _text_at(c, messages, [last, "content"], "messages")
