"""LLMBar: `input, output_1, output_2, label` (1 or 2 is the objectively better output).

The label becomes a vote by `llmbar-gold`. Pairs are keyed `<file stem>:<index>` (0-based
position in the file, e.g. `Natural:17`) and take the file stem as their category, so the
Natural and Adversarial sets can share one dataset and still be told apart. No model names.
"""

from __future__ import annotations

from collections.abc import Iterator

from corpus.importers.fields import Checker
from corpus.importers.formats.base import ParseContext
from corpus.importers.records import PairContent, Row, RowError, Vote

FIELDS = ("input", "output_1", "output_2", "label")


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    stem = ctx.source.stem
    index = -1
    for entry in ctx.source.items(required=FIELDS):
        index += 1
        if isinstance(entry, RowError):
            yield entry
            continue
        c = Checker(ctx.source.name, entry)
        prompt = c.string("input")
        output_1 = c.string("output_1")
        output_2 = c.string("output_2")
        label = c.integer("label", choices=(1, 2))
        if c.errors:
            yield from c.errors
            continue
        pair = PairContent(prompt=prompt, response_a=output_1, response_b=output_2, category=stem)
        vote = Vote("llmbar-gold", "llmbar", "A" if label == 1 else "B", None, "label")
        yield Row(entry.line, f"{stem}:{index}", "label", pair, votes=[vote])
