"""Forms parse and validate input; the services do the work."""

from __future__ import annotations

from typing import Any

from django import forms

from analysis.studies import GATE_METRICS
from judges.models import Judge


class GateForm(forms.Form):
    """A release gate: the judge it is about and its rules, one per line."""

    judge = forms.ModelChoiceField(queryset=Judge.objects.none(), empty_label=None)
    rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        max_length=20_000,
        help_text=(
            "One rule per line, e.g. lower(cohen_kappa) >= 0.6 on each slice with n >= 30 · "
            "interval(refusal_gap.ethical_refusal) excludes above 0.10. Figures: "
            + ", ".join(GATE_METRICS)
            + ". Lines starting with # are notes."
        ),
    )

    def __init__(self, *args: Any, judges: list[Judge], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["judge"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Judge.objects.filter(pk__in=[j.pk for j in judges]).order_by(
            "name", "-version"
        )

    def rule_lines(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["rules"].splitlines() if line.strip()]
