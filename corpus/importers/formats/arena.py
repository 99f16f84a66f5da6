"""Chatbot Arena human preferences (the Kaggle lmsys-arena-human-preference-55k shape).

Columns `id, model_a, model_b, prompt, response_a, response_b, winner_model_a,
winner_model_b, winner_tie`. `prompt` and the responses are JSON lists of turns (in CSV, JSON
text in the cell); a `null` turn (the model gave no answer) is an empty turn. A multi-turn
conversation keeps each side's turns together under `[Turn n]` headers and records the number
of turns as the pair's `turn`. Exactly one winner column is 1; it becomes the vote of the
Arena user `arena:<id>`. A file without any winner column (Kaggle's test.csv) imports the
pairs without votes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from corpus.importers.fields import MISSING, Checker, to_int
from corpus.importers.formats.base import ParseContext
from corpus.importers.readers import Item, describe, loads_strict
from corpus.importers.records import PairContent, Row, RowError, Vote, join_turns

REQUIRED = ("id", "model_a", "model_b", "prompt", "response_a", "response_b")
WINNERS = ("winner_model_a", "winner_model_b", "winner_tie")
_OUTCOME = {"winner_model_a": "A", "winner_model_b": "B", "winner_tie": "tie"}


def _flag(c: Checker, name: str) -> int | None:
    value = c.raw(name)
    if value is MISSING:
        return None
    number = int(value) if isinstance(value, bool) else to_int(value, textual=c.textual)
    if number not in (0, 1):
        c.error(name, f"expected 0 or 1, got {describe(value)}")
        return None
    return number


_FLAGS: dict[Any, int] = {"0": 0, "1": 1, 0: 0, 1: 1, "0.0": 0, "1.0": 1}
_loads = loads_strict  # a cell nested too deeply is a ValueError, then explained


def _fast_turns(value: Any) -> list[str] | None:
    """Turns of a well-formed cell, or None to let the checked path explain what is wrong."""
    if type(value) is str:
        if not value.startswith("["):
            return None
        try:
            value = _loads(value)
        except ValueError:
            return None
    if type(value) is not list or not value:
        return None
    for turn in value:
        if type(turn) is not str:
            return None
    return value


def _fast_row(item: Item) -> Row | None:
    """The common case without a Checker: Arena files run to hundreds of thousands of rows.
    Returns None for anything unusual; the checked path then reports it."""
    data = item.data
    key, model_a, model_b = data["id"], data["model_a"], data["model_b"]
    if type(key) is int:
        key = str(key)
    if not (type(key) is str and type(model_a) is str and type(model_b) is str):
        return None
    key, model_a, model_b = key.strip(), model_a.strip(), model_b.strip()
    if not (key and model_a and model_b and len(key) <= 255):
        return None
    prompt = _fast_turns(data["prompt"])
    side_a = _fast_turns(data["response_a"])
    side_b = _fast_turns(data["response_b"])
    if prompt is None or side_a is None or side_b is None:
        return None
    if not len(prompt) == len(side_a) == len(side_b):
        return None
    votes = []
    if "winner_model_a" in data or "winner_model_b" in data or "winner_tie" in data:
        flags = [_FLAGS.get(data.get(name)) for name in WINNERS]
        if flags.count(1) != 1 or flags.count(0) != 2:
            return None
        winner = WINNERS[flags.index(1)]
        votes.append(Vote(f"arena:{key}", "arena_user", _OUTCOME[winner], None, winner))
    pair = PairContent(
        prompt=join_turns(prompt),
        response_a=join_turns(side_a),
        response_b=join_turns(side_b),
        model_a=model_a,
        model_b=model_b,
        turn=len(prompt),
    )
    return Row(item.line, key, "id", pair, votes=votes)


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    source = ctx.source
    header_checked = False
    for entry in source.items(required=REQUIRED):
        if isinstance(entry, RowError):
            yield entry
            continue
        if not header_checked and source.columns is not None:  # CSV and Parquet: once
            header_checked = True
            given = [name for name in WINNERS if name in source.columns]
            if given and len(given) < len(WINNERS):
                for name in WINNERS:
                    if name not in given:
                        yield source.error(1, name, "missing column")
                return
        fast = _fast_row(entry)
        if fast is not None:
            yield fast
            continue
        c = Checker(ctx.source.name, entry)
        key = c.key("id")
        model_a = c.string("model_a", nonempty=True)
        model_b = c.string("model_b", nonempty=True)
        prompt = c.turns("prompt")
        response_a = c.turns("response_a")
        response_b = c.turns("response_b")
        for name, turns in (("response_a", response_a), ("response_b", response_b)):
            if prompt is not None and turns is not None and len(turns) != len(prompt):
                c.error(name, f"has {len(turns)} turns, the prompt has {len(prompt)}")
        votes = _vote(c, key)
        if c.errors or key is None:
            yield from c.errors
            continue
        assert prompt is not None and response_a is not None and response_b is not None
        pair = PairContent(
            prompt=join_turns(prompt),
            response_a=join_turns(response_a),
            response_b=join_turns(response_b),
            model_a=model_a or "",
            model_b=model_b or "",
            turn=len(prompt),
        )
        yield Row(entry.line, key, "id", pair, votes=votes)


def _vote(c: Checker, key: str | None) -> list[Vote]:
    data: dict[str, Any] = c.data
    if not any(name in data for name in WINNERS):
        return []
    flags = {name: _flag(c, name) for name in WINNERS}
    if any(flag is None for flag in flags.values()):
        return []
    winners = [name for name, flag in flags.items() if flag == 1]
    if len(winners) != 1:
        shown = ", ".join(str(flags[name]) for name in WINNERS)
        c.error("winner_model_a", f"exactly one winner column must be 1, got {shown}")
        return []
    return [Vote(f"arena:{key}", "arena_user", _OUTCOME[winners[0]], None, winners[0])]
