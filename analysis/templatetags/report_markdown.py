"""Template filters of the Markdown report (``templates/analysis/report.md``).

``{{ text|md }}`` makes any value safe inside a Markdown table cell (a pipe is escaped, a line
break becomes a space); ``|thousands`` writes a count with thousands separators;
``|study_cell`` writes a cell of :mod:`analysis.report_studies` (value, interval, p-value, or
"undefined: <reason>"); ``|labels_more`` writes "about N more labels"; ``|utc_minute`` a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django import template

register = template.Library()


@register.filter(name="md")
def md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@register.filter(name="thousands")
def thousands(value: Any) -> str:
    return f"{value:,}"


@register.filter(name="labels_more")
def labels_more(value: Any) -> str:
    return "" if value is None else f"{value:,.0f}"


@register.filter(name="utc_minute")
def utc_minute(value: datetime) -> str:
    """The time as stored (UTC), to the minute, whatever the page's time zone."""
    return f"{value:%Y-%m-%d %H:%M}"


@register.filter(name="study_cell")
def study_cell(cell: Mapping[str, Any] | None) -> str:
    """A report_studies cell as text: value, interval and p-value where there are some."""
    if not cell:
        return ""
    if cell.get("undefined"):
        return f"undefined: {cell['reason']}" if cell.get("reason") else "—"
    parts = (cell["value"], cell.get("ci", ""), cell.get("p", ""))
    return " ".join(part for part in parts if part)
