"""Display names: the one mapping from the stored codes (strata, outcomes, response classes)
to the words a page shows. Pure (no Django); the report's models, its charts and the
``display`` template filters (``analysis/templatetags/display.py``) all read it.

Codes stay codes in the JSON API, the ``report`` command and the gate rules people type
(``interval(refusal_gap.ethical_refusal) ...``); only what a person reads is translated.
"""

from __future__ import annotations

import re
from typing import Any, Final

STRATA: Final = {
    "low_margin": "low margin",
    "ethics_refusal": "ethics refusal",
    "technical_refusal": "technical refusal",
    "uncertain_class": "uncertain class",
    "random": "random control",
    "gold": "gold (known answer)",
}
OUTCOMES: Final = {"A": "A", "B": "B", "tie": "tie", "both_bad": "both bad"}
CLASSES: Final = {
    "normal": "normal",
    "ethical_refusal": "ethical refusal",
    "technical_refusal": "technical refusal",
    "ethical_disclaimer": "ethical disclaimer",
    "technical_disclaimer": "technical disclaimer",
}
NAMES: Final = {**STRATA, **OUTCOMES, **CLASSES}

# Codes with an underscore are never words: they are replaced inside free text too (reasons
# such as "no ethical_refusal responses among the rated pairs", gate slices "stratum=low_margin").
_IN_TEXT: Final = re.compile(
    r"(?<![\w.])("
    + "|".join(sorted((c for c in NAMES if "_" in c), key=len, reverse=True))
    + r")\b"
)
_PAIR_SEPARATOR: Final = (
    " / "  # a response-class slice names both sides: "normal / ethical_refusal"
)


def display_name(value: Any) -> Any:
    """The words for one stored code (or for "code / code"); anything else unchanged."""
    if not isinstance(value, str):
        return value
    if value in NAMES:
        return NAMES[value]
    if _PAIR_SEPARATOR in value:
        parts = value.split(_PAIR_SEPARATOR)
        if all(part in NAMES for part in parts):
            return _PAIR_SEPARATOR.join(NAMES[part] for part in parts)
    return value


def display_text(text: Any) -> Any:
    """Free text (a reason, a gate's explanation) with every underscored code in words.

    A code written as part of a dotted name (``refusal_gap.ethical_refusal``, gate-rule
    syntax) is left alone: that is something a person types, shown as code.
    """
    if not isinstance(text, str):
        return text
    return _IN_TEXT.sub(lambda m: NAMES[m.group(1)], text)
