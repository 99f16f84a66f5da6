"""Forms parse and validate input; the services do the work."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from annotation import sampling
from annotation.models import RESPONSE_CLASS_CHOICES, Audit
from annotation.queue import CHOICES, CRITERION_CHOICES
from config.roles import ANNOTATOR, LEAD
from corpus.models import Dataset, Outcome
from judges.models import Judge
from judges.selectors import runnable_judges


def annotator_candidates() -> QuerySet[Any]:
    User = get_user_model()
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=[ANNOTATOR, LEAD]) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


# Each stratum's quota field on the builder, in the order the page shows them.
QUOTA_FIELDS = {
    stratum: f"quota_{stratum}"
    for stratum in (
        sampling.ETHICS_REFUSAL,
        sampling.TECHNICAL_REFUSAL,
        sampling.UNCERTAIN_CLASS,
        sampling.DRIFT,
        sampling.LOW_MARGIN,
        sampling.RANDOM,
    )
}


def _quota(
    label: str, *, initial: int | None = 0, required: bool = False, help_text: str = ""
) -> forms.IntegerField:
    """A stratum's quota: how many of its pairs to sample."""
    return forms.IntegerField(
        min_value=0, initial=initial, required=required, label=label, help_text=help_text
    )


class AuditBuildForm(forms.Form):
    name = forms.CharField(max_length=200)
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"), to_field_name="name"
    )
    judges = forms.ModelMultipleChoiceField(
        queryset=Judge.objects.order_by("name", "-version"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Their verdicts decide the low-margin stratum.",
    )
    margin_threshold = forms.FloatField(
        min_value=0,
        initial=0.5,
        required=False,
        help_text="Low margin: |margin| below this, in the judge's own units (score or "
        "log-probability gap). Leave empty to use only swap flips and judge disagreement.",
    )
    classifier = forms.CharField(
        max_length=64,
        required=False,
        help_text="Refusal classifier fingerprint; empty uses every classification.",
    )
    drift_before = forms.ModelChoiceField(
        queryset=Judge.objects.order_by("name", "-version"),
        required=False,
        label="Drift: before",
        help_text="With “after”: the drift stratum holds the pairs whose verdict differs "
        "between these two judge versions.",
    )
    drift_after = forms.ModelChoiceField(
        queryset=Judge.objects.order_by("name", "-version"),
        required=False,
        label="Drift: after",
    )
    size = forms.IntegerField(min_value=1, max_value=100_000, initial=200)
    overlap_k = forms.IntegerField(
        min_value=1, max_value=20, initial=2, label="Annotators per item (k)"
    )
    quota_ethics_refusal = _quota("Ethics refusal", initial=40, required=True)
    quota_technical_refusal = _quota("Technical refusal", initial=20, required=True)
    quota_uncertain_class = _quota(
        "Uncertain class", help_text="Pairs with a response the refusal classifier is unsure of."
    )
    quota_drift = _quota(
        "Verdict flipped (drift)",
        help_text="Pairs whose verdict changed between the two judge versions chosen above.",
    )
    quota_low_margin = _quota("Low margin", initial=80, required=True)
    quota_random = _quota(
        "Random control", initial=None, help_text="Empty: whatever the size leaves."
    )
    seed = forms.IntegerField(min_value=0, max_value=2**62)
    annotators = forms.ModelMultipleChoiceField(
        queryset=annotator_candidates(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    allow_both_bad = forms.BooleanField(required=False, label="Offer “both bad”")
    allow_strength = forms.BooleanField(required=False, label="Ask how much better")
    criteria = forms.CharField(
        required=False,
        max_length=500,
        help_text="Optional, comma separated, e.g. correctness, helpfulness, safety.",
    )
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    hold_minutes = forms.IntegerField(
        min_value=1, max_value=24 * 60, initial=10, label="Hold an item for (minutes)"
    )
    queue_policy = forms.ChoiceField(
        choices=Audit.QueuePolicy.choices,
        initial=Audit.QueuePolicy.COMPLETE_FIRST,
        required=False,
        label="Serving order",
        help_text="Complete first: an item with some but fewer than k labels is served "
        "before a fresh one. Spread first: every item gets one label before any gets k.",
    )
    blind_adjudication = forms.BooleanField(
        required=False,
        label="Blind adjudication",
        help_text="The adjudicator sees neither model names, judge verdicts nor who chose what.",
    )
    ask_response_classes = forms.BooleanField(
        required=False,
        label="Ask response classes",
        help_text="After their choice, annotators say what each response did (answered, "
        "refused on ethical grounds or for lack of capability, answered with an ethical or "
        "capability caveat), blind to the refusal classifier: people's classes correct it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = annotator_candidates()  # type: ignore[attr-defined]
        if not self.is_bound:
            self.initial.setdefault("seed", secrets.randbelow(1_000_000))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _drift_clean(self)
        return cleaned

    def quotas(self) -> dict[str, int | None]:
        """Pairs to sample per stratum; an empty random quota (None) is whatever size leaves."""
        data = self.cleaned_data
        return {
            stratum: data.get(field) if stratum == sampling.RANDOM else data.get(field) or 0
            for stratum, field in QUOTA_FIELDS.items()
        }

    def drift_judges(self) -> list[Judge]:
        """(before, after) when both are chosen; one alone is an error on the form."""
        return drift_pair(self)

    def criteria_names(self) -> list[str]:
        return [part.strip() for part in self.cleaned_data.get("criteria", "").split(",")]

    # Service errors are keyed by service argument names; show them on the matching field.
    FIELD_FOR = {
        "thresholds": "margin_threshold",
        "hold_seconds": "hold_minutes",
        "drift_judges": "drift_after",
        **QUOTA_FIELDS,
        "quotas": None,
    }

    # The page's fieldsets, in order (templates/annotation/audit_form.html).
    FIELDSETS = {
        "pools": (
            "dataset",
            "judges",
            "margin_threshold",
            "classifier",
            "drift_before",
            "drift_after",
        ),
        "size": ("size", "overlap_k", *QUOTA_FIELDS.values(), "seed", "hold_minutes"),
        "task": (
            "annotators",
            "allow_both_bad",
            "allow_strength",
            "criteria",
            "guidelines",
            "queue_policy",
            "blind_adjudication",
            "ask_response_classes",
        ),
    }

    def fieldsets(self) -> dict[str, list[forms.BoundField]]:
        return {name: [self[field] for field in names] for name, names in self.FIELDSETS.items()}


def drift_pair(form: forms.Form) -> list[Judge]:
    before = form.cleaned_data.get("drift_before")
    after = form.cleaned_data.get("drift_after")
    return [before, after] if before and after else []


def _drift_clean(form: forms.Form) -> None:
    before = form.cleaned_data.get("drift_before")
    after = form.cleaned_data.get("drift_after")
    if bool(before) != bool(after):
        form.add_error("drift_after" if before else "drift_before", "choose both versions")
    elif before and before == after:
        form.add_error("drift_after", "choose a version other than “before”")


class AvailabilityForm(forms.Form):
    """The part of the builder that decides the pools: read on every change (htmx)."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), to_field_name="name")
    judges = forms.ModelMultipleChoiceField(queryset=Judge.objects.all(), required=False)
    margin_threshold = forms.FloatField(min_value=0, required=False)
    classifier = forms.CharField(max_length=64, required=False)
    drift_before = forms.ModelChoiceField(queryset=Judge.objects.all(), required=False)
    drift_after = forms.ModelChoiceField(queryset=Judge.objects.all(), required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _drift_clean(self)
        return cleaned


class LabelForm(forms.Form):
    choice = forms.ChoiceField(choices=[(c, c) for c in CHOICES])
    strength = forms.TypedChoiceField(
        choices=[("", "—"), ("1", "slightly"), ("2", "clearly")],
        coerce=int,
        empty_value=None,
        required=False,
    )
    rationale = forms.CharField(required=False, max_length=5000)
    time_spent_ms = forms.IntegerField(required=False, min_value=0)
    submission_key = forms.UUIDField()
    # What each response did (audits that ask response classes), by screen side.
    class_left = forms.ChoiceField(
        choices=[("", "—")] + [(c, text) for c, text, _ in RESPONSE_CLASS_CHOICES],
        required=False,
    )
    class_right = forms.ChoiceField(
        choices=[("", "—")] + [(c, text) for c, text, _ in RESPONSE_CLASS_CHOICES],
        required=False,
    )

    def __init__(self, *args: Any, criteria: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = criteria or []
        for index, _name in enumerate(self.criteria):
            self.fields[f"criterion_{index}"] = forms.ChoiceField(
                choices=[("", "—")] + [(c, c) for c in CRITERION_CHOICES], required=False
            )

    def criteria_values(self) -> dict[str, str]:
        return {
            name: self.cleaned_data.get(f"criterion_{index}") or ""
            for index, name in enumerate(self.criteria)
        }

    def classes(self) -> dict[str, str]:
        data = self.cleaned_data
        return {
            side: data[f"class_{side}"] for side in ("left", "right") if data.get(f"class_{side}")
        }

    def answer(self) -> dict[str, Any]:
        """The answer as `queue.label_revise` takes it (a valid form)."""
        data = self.cleaned_data
        return {
            "choice": data["choice"],
            "submission_key": data["submission_key"],
            "strength": data.get("strength"),
            "criteria": self.criteria_values(),
            "rationale": data.get("rationale", ""),
            "classes": self.classes(),
        }


class SkipForm(forms.Form):
    REASONS = [
        ("outside my expertise", "Outside my expertise"),
        ("content missing or broken", "Content missing or broken"),
        ("not comfortable judging this", "Not comfortable judging this"),
        ("other", "Other"),
    ]
    reason = forms.ChoiceField(choices=REASONS)
    detail = forms.CharField(required=False, max_length=400)

    def reason_text(self) -> str:
        detail = self.cleaned_data.get("detail", "").strip()
        reason = self.cleaned_data["reason"]
        return f"{reason}: {detail}" if detail else reason


class AdjudicationForm(forms.Form):
    outcome = forms.ChoiceField(choices=Outcome.choices, widget=forms.RadioSelect)
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )
    # The decision the lead was looking at when revising (see services.adjudication_revise).
    expected = forms.IntegerField(required=False, widget=forms.HiddenInput)


class GrowForm(forms.Form):
    n = forms.IntegerField(min_value=1, max_value=100_000, label="Add items")


class OverlapForm(forms.Form):
    overlap_k = forms.IntegerField(min_value=1, max_value=20, label="Annotators per item (k)")


class AuditOptionsForm(forms.Form):
    queue_policy = forms.ChoiceField(choices=Audit.QueuePolicy.choices, label="Serving order")
    blind_adjudication = forms.BooleanField(required=False, label="Blind adjudication")
    ask_response_classes = forms.BooleanField(required=False, label="Ask response classes")
    gold_percent = forms.IntegerField(
        min_value=0, max_value=50, label="Gold rate (%)", help_text="0 serves no gold."
    )
    qc_min_seconds = forms.FloatField(
        min_value=0, max_value=3600, label="Too fast below (median seconds)"
    )
    qc_min_gold_accuracy = forms.FloatField(
        min_value=0, max_value=1, label="Gold accuracy at least (0-1)"
    )


class GoldForm(forms.Form):
    lines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "pair-0042, A, cites the source"}),
        max_length=100_000,
        label="Gold pairs",
        help_text="One per line: the pair's source key, its answer (A, B, tie or both bad) "
        "and an optional note.",
    )


class SetAsideForm(forms.Form):
    action = forms.ChoiceField(choices=[("set_aside", "set aside"), ("count", "count again")])
    reason = forms.CharField(required=False, max_length=500)


class AnnotatorsForm(forms.Form):
    annotators = forms.ModelMultipleChoiceField(
        queryset=annotator_candidates(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = annotator_candidates()  # type: ignore[attr-defined]


class AuditJudgeRunForm(forms.Form):
    """Run a judge over the audit's items (the judges app runs it; the audit gives the pairs)."""

    judge = forms.ModelChoiceField(queryset=Judge.objects.none(), empty_label=None)
    limit = forms.IntegerField(
        min_value=1, required=False, help_text="The first N items only; empty for all."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["judge"].queryset = runnable_judges()  # type: ignore[attr-defined]
