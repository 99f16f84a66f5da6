"""LLMBar: `input, output_1, output_2, label` (1 or 2 is the objectively better output).

The label becomes a vote by `llmbar-gold`. Pairs are keyed `<subset>:<index>` (0-based
position in the file, e.g. `Natural:17`) and take the subset as their category, so the
Natural and Adversarial sets can share one dataset and still be told apart. No model names.

The subset is the file's stem (`Natural.json`, `Adversarial-Neighbor.json`). Upstream names
every subset `dataset.json` in its own folder (`Dataset/LLMBar/Natural/dataset.json`,
`Dataset/LLMBar/Adversarial/Neighbor/dataset.json`, `Dataset/CaseStudy/Base_9/dataset.json`);
such a file is named by its folder, after the group folder `Adversarial` or `CaseStudy` when it
sits in one (`Adversarial-Neighbor`), so both copies of a subset have the same keys. A
`dataset.json` whose folder is not known (an upload) is refused: rename it after its subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Final

from corpus.importers.fields import Checker
from corpus.importers.formats.base import ParseContext
from corpus.importers.records import PairContent, Row, RowError, Vote

FIELDS: Final = ("input", "output_1", "output_2", "label")
UPSTREAM_NAME: Final = "dataset"
GROUP_FOLDERS: Final = ("Adversarial", "CaseStudy")


def display_name(path: Path) -> str:
    """The name a file is imported under: its own, or for upstream's `dataset.json` the
    subset folders before it (`Adversarial/Neighbor/dataset.json`)."""
    if _stem(path.name) != UPSTREAM_NAME:
        return path.name
    folder = path.resolve().parent
    if not folder.name:
        return path.name
    parts = [folder.name, path.name]
    if folder.parent.name in GROUP_FOLDERS:
        parts.insert(0, folder.parent.name)
    return "/".join(parts)


def _stem(name: str) -> str:
    base = name[:-3] if name.lower().endswith(".gz") else name
    return PurePosixPath(base).stem


def subset(name: str) -> str | None:
    """The subset a file holds, from the name it is imported under; None if it does not say."""
    stem = _stem(PurePosixPath(name).name)
    if stem != UPSTREAM_NAME:
        return stem
    folders = PurePosixPath(name).parts[:-1]
    return "-".join(folders) if folders else None


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    name = subset(ctx.source.name)
    if name is None:
        yield ctx.source.error(
            0,
            "file",
            "LLMBar names every subset dataset.json: rename the file after its subset "
            "(e.g. Adversarial-Neighbor.json), or import it with its folders from the "
            "command line",
        )
        return
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
        pair = PairContent(prompt=prompt, response_a=output_1, response_b=output_2, category=name)
        vote = Vote("llmbar-gold", "llmbar", "A" if label == 1 else "B", None, "label")
        yield Row(entry.line, f"{name}:{index}", "label", pair, votes=[vote])
