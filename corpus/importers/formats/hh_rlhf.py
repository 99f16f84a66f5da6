"""Anthropic hh-rlhf: `chosen` and `rejected` dialogues that differ in the last assistant turn.

The shared dialogue before that turn becomes the prompt, the two final assistant turns the
responses, and `chosen` a human vote. Which of the two is response A is decided by the row's
content hash, so it is random across rows (otherwise A would always win) and the same on every
import. The key is `hh:` + 16 hex digits of that hash: stable, and the same row imported from
another copy of the file lands on the same pair.

A few rows of the published files do not split cleanly at the last assistant turn (one side
goes on for another turn); those split at the last assistant turn the two dialogues share,
and are counted as `split_at_shared_turn`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from corpus.importers.fields import Checker
from corpus.importers.formats.base import ParseContext, per_item
from corpus.importers.records import PairContent, Row, RowError, Vote, sha256_text

ASSISTANT = "\n\nAssistant:"


def split_dialogues(chosen: str, rejected: str) -> tuple[str, str, str, bool] | None:
    """(prompt, chosen turn, rejected turn, split at the last turn?) or None if no shared turn."""
    at_c, at_r = chosen.rfind(ASSISTANT), rejected.rfind(ASSISTANT)
    if at_c >= 0 and at_r >= 0 and chosen[:at_c] == rejected[:at_r]:
        cut_c, cut_r, last = at_c, at_r, True
    else:
        # Character by character is the point: where the two dialogues start to differ.
        shared = len(os.path.commonprefix([chosen, rejected]))  # noqa: RUF071
        cut_c = cut_r = chosen.rfind(ASSISTANT, 0, shared)
        last = False
        if cut_c < 0:
            return None
    size = len(ASSISTANT)
    return (
        chosen[:cut_c].strip(),
        chosen[cut_c + size :].strip(),
        rejected[cut_r + size :].strip(),
        last,
    )


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    return per_item(ctx.source, lambda c: _row(ctx, c), required=("chosen", "rejected"))


def _row(ctx: ParseContext, c: Checker) -> Iterator[Row | RowError]:
    chosen = c.string("chosen")
    rejected = c.string("rejected")
    if c.errors or chosen is None or rejected is None:
        yield from c.errors
        return
    split = split_dialogues(chosen, rejected)
    if split is None:
        c.error("chosen", "chosen and rejected share no dialogue up to an assistant turn")
        yield from c.errors
        return
    prompt, chosen_turn, rejected_turn, last = split
    digest = sha256_text(chosen + "\x1f" + rejected)
    chosen_is_a = int(digest[-1], 16) % 2 == 0
    meta: dict[str, object] = {"file": ctx.source.stem, "line": c.item.line}
    if not last:
        meta["split"] = "shared_turn"
        ctx.stats["split_at_shared_turn"] += 1
    if chosen_turn == rejected_turn:
        ctx.stats["identical_responses"] += 1
    a, b = (chosen_turn, rejected_turn) if chosen_is_a else (rejected_turn, chosen_turn)
    pair = PairContent(prompt=prompt, response_a=a, response_b=b, meta=meta)
    vote = Vote("hh-rlhf-crowdworker", "hh_rlhf", "A" if chosen_is_a else "B", None, "chosen")
    yield Row(c.item.line, f"hh:{digest[:16]}", "chosen", pair, votes=[vote])
