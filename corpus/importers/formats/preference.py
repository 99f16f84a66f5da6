"""Preference data: `prompt`, `chosen`, `rejected`, the layout of DPO and reward-model training
sets (TRL's preference datasets), from JSON lines, a JSON array, Parquet or CSV.

Layouts, as TRL defines them:

- plain: `prompt`, `chosen` and `rejected` are strings;
- conversational: they are lists of `{role, content}` messages (the prompt up to the answer,
  and the two answers);
- implicit prompt: no `prompt` (or, as in UltraFeedback binarized, a plain prompt beside
  conversational answers): the prompt is the beginning `chosen` and `rejected` share, split
  off as TRL's `extract_prompt` does (whole messages for conversations; for plain strings the
  shared characters, without a space that ends them).

A conversation of one message is that message's text; longer ones are written out message by
message, each under a `[role]` header line, separated by blank lines. The pair's `turn` is the
number of user messages in the prompt.

The human vote (`preference-chosen`, source `generic`) says the chosen answer is better. Which
of the two is response A is decided by the row's content hash, as for hh-rlhf: random across
rows, the same on every import. Key: `pref:` + 16 hex digits of sha256 of the prompt and both
answers as text, so the plain and the conversational copies of one row are one pair.

Reward scores make judges: `score_chosen`/`score_rejected` (the scorer named by a
`score_model` column, else `scores`), and `rewards: {model: {chosen: x, rejected: y}}` for any
number of reward models. Each scorer is the imported judge `<model> · reward`: its verdict
prefers the answer it scored higher (equal scores: a tie), and the score difference is the
margin (> 0 favours A). A reward model sees one answer at a time, so the verdict has one
order. A row without a scorer's scores (null) has no verdict by it; one score without the
other is an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

from corpus.importers.fields import MISSING, Checker
from corpus.importers.formats.base import ParseContext, per_item
from corpus.importers.readers import describe
from corpus.importers.records import (
    JudgeRef,
    PairContent,
    Row,
    RowError,
    VerdictRecord,
    Vote,
    canonical_json,
    sha256_text,
)

SOURCE: Final = "preference"
VOTER: Final = "preference-chosen"
DEFAULT_SCORER: Final = "scores"

Messages = list[dict[str, str]]
Side = str | Messages


def _side(c: Checker, name: str) -> Side | None:
    """A string, or a list of `{role, content}` messages (in CSV: the list as JSON text)."""
    value = c.raw(name)
    if value is MISSING:
        return None
    if isinstance(value, str) and c.textual and value.lstrip().startswith("[{"):
        value = c.structure(name, value)
        if value is MISSING:
            return None
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        c.error(name, f"expected a string or a list of messages, got {describe(value)}")
        return None
    messages: Messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            c.error(
                f"{name}[{i}]", f"expected a {{role, content}} message, got {describe(message)}"
            )
            return None
        fields = []
        for key in ("role", "content"):
            where = f"{name}[{i}].{key}"
            if key not in message:
                c.error(where, "missing")
            fields.append(c.check_string(where, message.get(key, MISSING), nonempty=key == "role"))
        role, content = fields
        if role is None or content is None:
            return None
        messages.append({"role": role, "content": content})
    return messages


def render(side: Side) -> str:
    """One text for a prompt or an answer (see the module docstring)."""
    if isinstance(side, str):
        return side
    if len(side) == 1:
        return side[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in side)


def extract_prompt(chosen: Side, rejected: Side) -> tuple[Side, Side, Side]:
    """(prompt, chosen, rejected) with the shared beginning split off, as TRL does."""
    size = min(len(chosen), len(rejected))
    at = next((i for i in range(size) if chosen[i] != rejected[i]), size)
    if isinstance(chosen, str) and at > 0 and chosen[at - 1] == " ":
        at -= 1  # the space before the answers stays with them
    return chosen[:at], chosen[at:], rejected[at:]


def _scores(c: Checker, where: str, chosen: Any, rejected: Any) -> tuple[float, float] | None:
    """Both scores, None when neither is given; a problem is recorded on the checker."""
    values = []
    for side, value in (("chosen", chosen), ("rejected", rejected)):
        if isinstance(value, float) and math.isnan(value):
            value = None
        if value is not None and value is not MISSING:
            value = c.check_number(f"{where}{side}", value)
            if value is None:
                return None
        else:
            value = None
        values.append(value)
    if values[0] is None and values[1] is None:
        return None
    if values[0] is None or values[1] is None:
        missing = "chosen" if values[0] is None else "rejected"
        c.error(f"{where}{missing}", "missing: give both scores or neither")
        return None
    return values[0], values[1]


def _verdict(
    model: str, scores: tuple[float, float], chosen_is_a: bool, where: str
) -> VerdictRecord:
    chosen, rejected = scores
    margin = chosen - rejected if chosen_is_a else rejected - chosen
    outcome = "tie" if margin == 0 else ("A" if margin > 0 else "B")
    return VerdictRecord(
        judge=JudgeRef(f"{model} · reward", model, SOURCE),
        outcome_ab=outcome,
        status_ab="ok",
        raw_ab=canonical_json({"chosen": chosen, "rejected": rejected}),
        margin=margin,
        margin_ab=margin,
        field=where,
    )


def _reward_verdicts(c: Checker, chosen_is_a: bool) -> list[VerdictRecord]:
    verdicts = []
    if c.has("score_chosen") or c.has("score_rejected"):
        model = c.string("score_model", DEFAULT_SCORER, nonempty=True)
        found = _scores(c, "score_", c.data.get("score_chosen"), c.data.get("score_rejected"))
        if found is not None and model is not None:
            verdicts.append(_verdict(model, found, chosen_is_a, "score_chosen"))
    if c.has("rewards"):
        rewards = c.obj("rewards", c.data["rewards"])
        for model, scores in (rewards or {}).items():
            where = f"rewards.{model}"
            if scores is None:
                continue
            if not isinstance(scores, dict):
                c.error(where, f"expected {{chosen, rejected}}, got {describe(scores)}")
                continue
            if not model.strip():
                c.error("rewards", "a reward model's name must not be empty")
                continue
            found = _scores(c, f"{where}.", scores.get("chosen"), scores.get("rejected"))
            if found is not None:
                verdicts.append(_verdict(model, found, chosen_is_a, where))
    return verdicts


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    return per_item(ctx.source, lambda c: _row(ctx, c), required=("chosen", "rejected"))


def _row(ctx: ParseContext, c: Checker) -> Iterator[Row | RowError]:
    chosen = _side(c, "chosen")
    rejected = _side(c, "rejected")
    prompt = _side(c, "prompt") if c.has("prompt") else None
    if c.errors or chosen is None or rejected is None:
        yield from c.errors
        return
    if isinstance(chosen, str) != isinstance(rejected, str):
        c.error("rejected", "chosen and rejected must both be strings or both messages")
        yield from c.errors
        return
    if prompt is None or isinstance(prompt, str) != isinstance(chosen, str):
        if chosen == rejected:
            c.error("rejected", "the same as chosen: no prompt to split off")
            yield from c.errors
            return
        prompt, chosen, rejected = extract_prompt(chosen, rejected)
        ctx.stats["implicit_prompts"] += 1
    texts = render(prompt), render(chosen), render(rejected)
    digest = sha256_text("\x1f".join(texts))
    chosen_is_a = int(digest[-1], 16) % 2 == 0
    verdicts = _reward_verdicts(c, chosen_is_a)
    if c.errors:
        yield from c.errors
        return
    if texts[1] == texts[2]:
        ctx.stats["identical_responses"] += 1
    users = sum(m["role"] == "user" for m in prompt) if isinstance(prompt, list) else 1
    a, b = (texts[1], texts[2]) if chosen_is_a else (texts[2], texts[1])
    pair = PairContent(
        prompt=texts[0],
        response_a=a,
        response_b=b,
        turn=max(users, 1),
        meta={"file": ctx.source.stem, "line": c.item.line},
    )
    vote = Vote(VOTER, "generic", "A" if chosen_is_a else "B", None, "chosen")
    yield Row(c.item.line, f"pref:{digest[:16]}", "chosen", pair, [vote], verdicts)
