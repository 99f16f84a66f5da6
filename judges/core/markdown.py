"""Markdown style counts of a response: one set of rules for the stored features and the
analysis (METHODS.md section 5).

Following the counting of LMSYS's style control (FastChat `count_markdown_elements`), made
exact by working per line and skipping code: fenced code blocks (``` or ~~~, closed by a fence
of the same kind at least as long, or left open to the end) and inline code spans are removed
first; then

- `headers`: ATX headings, a line of up to 3 spaces, 1-6 `#`, a space and some text;
- `list_items`: lines starting (after any indentation) with `-`, `*` or `+`, or a number
  followed by `.` or `)`, then a space and some text; thematic breaks (`* * *`) are not items;
- `bold`: `**text**` or `__text__` spans on one line, text not starting or ending with a space.

Setext headings (text underlined with === or ---) are not counted, as in FastChat. Pure: no
Django, no model; `judges.features` stores these counts per response and
`analysis.metrics.style` counts texts it is given with the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MARKDOWN_RULES_VERSION: Final = 1

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_HEADER = re.compile(r"^ {0,3}#{1,6}[ \t]+\S")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BOLD = re.compile(r"\*\*[^\s*](?:[^*\n]*[^\s*])?\*\*|__[^\s_](?:[^_\n]*[^\s_])?__")


@dataclass(frozen=True)
class MarkdownCounts:
    headers: int
    list_items: int
    bold: int


def _prose_lines(text: str) -> list[str]:
    """The lines of `text` outside fenced code blocks, with inline code spans blanked."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        marker = _FENCE.match(line)
        if fence is None and marker:
            fence = marker.group(1)
            continue
        if fence is not None:
            closing = marker.group(1) if marker else None
            if closing and closing[0] == fence[0] and len(closing) >= len(fence):
                fence = None
            continue
        lines.append(_INLINE_CODE.sub(" ", line))
    return lines


def markdown_count(text: str) -> MarkdownCounts:
    headers = list_items = bold = 0
    for line in _prose_lines(text):
        if _HEADER.match(line):
            headers += 1
        elif _LIST_ITEM.match(line) and not _THEMATIC_BREAK.match(line):
            list_items += 1
        bold += len(_BOLD.findall(line))
    return MarkdownCounts(headers=headers, list_items=list_items, bold=bold)
