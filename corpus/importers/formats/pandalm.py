"""PandaLM: the human-annotated test set and the judge files scored on the same items.

`testset-v1.json` gives the pairs (key = `idx`) and three annotators' votes (0 tie, 1
response1, 2 response2). A judge file (`<model>-testset-v1.json`, fields `idx` and
`<prefix>_result`, `_reason`, `_reference`) gives one verdict per `idx`; a result other than
0/1/2/tie is the judge's unparseable output and is kept as a failed parse, raw output and all.
Which kind a file is comes from its fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpus.importers.fields import Checker
from corpus.importers.formats.base import ParseContext, per_item
from corpus.importers.readers import Item, RecordFile
from corpus.importers.records import (
    JudgeRef,
    PairContent,
    Row,
    RowError,
    VerdictRecord,
    Vote,
    canonical_json,
)

ANNOTATORS = ("annotator1", "annotator2", "annotator3")
_VOTE = {0: "tie", 1: "A", 2: "B"}
_RESULT = {"0": "tie", "1": "A", "2": "B", "tie": "tie"}
_JUDGE_STEM = re.compile(r"^(?P<model>.+?)-testset(?:-v\d+)?$")


def _result_field(data: dict[str, Any]) -> str | None:
    return next((k for k in data if k.endswith("_result")), None)


def creates_pairs(path: Path, name: str) -> bool:
    """True for the test set, False for a judge file (its verdicts need the test set's pairs)."""
    for entry in RecordFile(path, name).items():
        if isinstance(entry, Item) and isinstance(entry.data, dict):
            return _result_field(entry.data) is None
        return True
    return True


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    entries = list(ctx.source.items())
    first = next((e for e in entries if isinstance(e, Item)), None)
    if first is not None and _result_field(first.data) is not None:
        yield from _judge_rows(ctx, entries, _result_field(first.data) or "")
    else:
        yield from _testset_rows(ctx, entries)


def judge_model_id(stem: str, result_field: str) -> str:
    """`gpt-3.5-turbo-testset-v1` → `gpt-3.5-turbo`; otherwise the field prefix (`gpt`)."""
    match = _JUDGE_STEM.match(stem)
    return match.group("model") if match else result_field.removesuffix("_result")


def parse_result(value: Any) -> str | None:
    """A judge result as an outcome: 0/"0"/"Tie" tie, 1 A, 2 B; anything else is unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _VOTE.get(value)
    if isinstance(value, str):
        return _RESULT.get(value.strip().lower())
    return None


def _judge_rows(
    ctx: ParseContext, entries: list[Item | RowError], result_field: str
) -> Iterator[Row | RowError]:
    model_id = judge_model_id(ctx.source.stem, result_field)
    judge = JudgeRef(name=f"{model_id} · pandalm", model_id=model_id, source="pandalm")
    return per_item(ctx.source, lambda c: _judge_row(c, judge, result_field), entries=entries)


def _judge_row(c: Checker, judge: JudgeRef, result_field: str) -> Iterator[Row | RowError]:
    key = c.key("idx")
    value = c.raw(result_field)
    if c.errors or key is None:
        yield from c.errors
        return
    outcome = parse_result(value)
    verdict = VerdictRecord(
        judge=judge,
        outcome_ab=outcome,
        status_ab="ok" if outcome is not None else "failed",
        raw_ab=canonical_json(c.item.data),
        field=result_field,
    )
    yield Row(c.item.line, key, "idx", None, verdicts=[verdict])


def split_cmp_key(cmp_key: str, known: set[str]) -> tuple[str, str] | None:
    """`bloom-7b_llama-7b` → (`bloom-7b`, `llama-7b`). With several underscores, the split
    whose halves are model names seen elsewhere in the file; None if that does not decide."""
    parts = cmp_key.split("_")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    candidates = [
        ("_".join(parts[:i]), "_".join(parts[i:]))
        for i in range(1, len(parts))
        if "_".join(parts[:i]) in known and "_".join(parts[i:]) in known
    ]
    return candidates[0] if len(candidates) == 1 else None


def _response_text(ctx: ParseContext, c: Checker, name: str) -> str | None:
    """A response; a JSON true/false/number stands for the model's literal output.

    The published test set has six responses stored as JSON `true` (the models answered
    "true"); they are imported as the text `true` and counted, not refused.
    """
    value = c.raw(name)
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        ctx.stats["non_text_responses_as_text"] += 1
        return json.dumps(value)
    return c.check_string(name, value)


def _testset_rows(ctx: ParseContext, entries: list[Item | RowError]) -> Iterator[Row | RowError]:
    known: set[str] = set()
    for entry in entries:
        if isinstance(entry, Item) and isinstance(entry.data, dict):
            parts = str(entry.data.get("cmp_key", "")).split("_")
            if len(parts) == 2:
                known.update(parts)
    yield from per_item(ctx.source, lambda c: _testset_row(ctx, c, known), entries=entries)


def _testset_row(ctx: ParseContext, c: Checker, known: set[str]) -> Iterator[Row | RowError]:
    key = c.key("idx")
    cmp_key = c.string("cmp_key", nonempty=True)
    instruction = c.string("instruction")
    extra = c.string("input", "")
    response1 = _response_text(ctx, c, "response1")
    response2 = _response_text(ctx, c, "response2")
    app = c.string("motivation_app", "")
    votes = [c.integer(name, choices=(0, 1, 2)) for name in ANNOTATORS]
    models = split_cmp_key(cmp_key, known) if cmp_key else None
    if cmp_key and models is None:
        c.error("cmp_key", f"cannot tell the two model names apart in {cmp_key!r}")
    if c.errors or key is None or models is None:
        yield from c.errors
        return
    assert instruction is not None and response1 is not None and response2 is not None
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    pair = PairContent(
        prompt=prompt,
        response_a=response1,
        response_b=response2,
        model_a=models[0],
        model_b=models[1],
        category=app or "",
    )
    row = Row(c.item.line, key, "idx", pair)
    for name, vote in zip(ANNOTATORS, votes, strict=True):
        assert vote is not None
        row.votes.append(Vote(f"pandalm-{name}", "pandalm_annotator", _VOTE[vote], None, name))
    yield row
