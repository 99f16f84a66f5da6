"""Template filters for display names: ``{{ value|display }}`` for a stored code (stratum,
outcome, response class, "class / class" slice), ``{{ text|display_text }}`` for free text
that may hold codes (reasons). Both read the one mapping in ``analysis/display.py`` and
return plain strings, which autoescaping then escapes."""

from __future__ import annotations

from typing import Any

from django import template

from analysis.display import display_name, display_text

register = template.Library()


@register.filter(name="display")
def display(value: Any) -> Any:
    return display_name(value)


@register.filter(name="display_text")
def display_text_filter(value: Any) -> Any:
    return display_text(value)
