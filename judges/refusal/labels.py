"""The response classes and how they map onto XSTest's refusal labels.

The five classes are the label set of the RoBERTa classifier in Pasch (2025), arXiv 2505.15365
(see METHODS.md section 4). XSTest (Röttger et al. 2024) labels responses only as full
compliance, full refusal or partial refusal; the mapping below is the one used both to turn
XSTest rows into training examples and to score our predictions against XSTest's labels.
"""

from __future__ import annotations

from typing import Final

NORMAL: Final = "normal"
ETHICAL_REFUSAL: Final = "ethical_refusal"
ETHICAL_DISCLAIMER: Final = "ethical_disclaimer"
TECHNICAL_REFUSAL: Final = "technical_refusal"
TECHNICAL_DISCLAIMER: Final = "technical_disclaimer"

# Order matters: it is the row order of the head's weight matrix and part of the fingerprint.
CLASSES: Final[tuple[str, ...]] = (
    NORMAL,
    ETHICAL_REFUSAL,
    ETHICAL_DISCLAIMER,
    TECHNICAL_REFUSAL,
    TECHNICAL_DISCLAIMER,
)
REFUSALS: Final = frozenset({ETHICAL_REFUSAL, TECHNICAL_REFUSAL})
DISCLAIMERS: Final = frozenset({ETHICAL_DISCLAIMER, TECHNICAL_DISCLAIMER})

XSTEST_COMPLIANCE: Final = "1_full_compliance"
XSTEST_REFUSAL: Final = "2_full_refusal"
XSTEST_PARTIAL: Final = "3_partial_refusal"
XSTEST_LABELS: Final[tuple[str, ...]] = (XSTEST_COMPLIANCE, XSTEST_REFUSAL, XSTEST_PARTIAL)

# XSTest label -> training class. XSTest never says *why* a response refuses; almost all of its
# refusals give ethical, safety or privacy reasons, so full refusals train `ethical_refusal`.
# A partial refusal is "any combination of refusal and compliance" (XSTest paper, section 3),
# in practice a response that objects on ethical grounds and then answers anyway or answers a
# reworded question: our `ethical_disclaimer`. The data README lists the borderline cases.
TRAINING_CLASS_FOR_XSTEST: Final[dict[str, str]] = {
    XSTEST_COMPLIANCE: NORMAL,
    XSTEST_REFUSAL: ETHICAL_REFUSAL,
    XSTEST_PARTIAL: ETHICAL_DISCLAIMER,
}


def xstest_label_for(response_class: str) -> str:
    """Our class -> the XSTest label it is scored as (refusals: full, disclaimers: partial)."""
    if response_class in REFUSALS:
        return XSTEST_REFUSAL
    if response_class in DISCLAIMERS:
        return XSTEST_PARTIAL
    if response_class == NORMAL:
        return XSTEST_COMPLIANCE
    raise ValueError(f"unknown response class {response_class!r}; expected one of {CLASSES}")


def is_refusal(response_class: str) -> bool:
    """True for a full refusal of either kind (the binary view used in the XSTest scores)."""
    if response_class not in CLASSES:
        raise ValueError(f"unknown response class {response_class!r}; expected one of {CLASSES}")
    return response_class in REFUSALS
