"""Forms of the judges pages: start a run, create a judge version. Validation only; the
services do the work."""

from __future__ import annotations

from typing import Any

from django import forms

from corpus.models import Dataset
from judges import selectors
from judges.core.config import JudgeOptions
from judges.fields import form_field
from judges.models import Judge

PRESET_CHOICES = [
    ("mt-bench", "MT-Bench pair-v2 ([[A]] / [[B]] / [[C]])"),
    ("sos-bench", "SOS-Bench five criteria ([[A>B]] and per-criterion verdicts)"),
]


class JudgeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} · {obj.model_id} · {obj.fingerprint[:10]}"


class JudgeRunForm(forms.Form):
    """A run over a dataset. A run over an audit's items is started from the audit's page."""

    judge = JudgeChoiceField(queryset=Judge.objects.none())
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.order_by("name"),
        to_field_name="name",
        error_messages={"required": "Choose a dataset."},
    )
    limit = forms.IntegerField(
        min_value=1, required=False, help_text="The first N pairs only; empty for all."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        judge_field = self.fields["judge"]
        assert isinstance(judge_field, forms.ModelChoiceField)
        judge_field.queryset = selectors.runnable_judges()


class JudgeCardsQuery(forms.Form):
    """The query of the judge cards fragment: which judges, and which runs (their scope)."""

    judge = forms.ModelMultipleChoiceField(queryset=Judge.objects.all(), required=False)
    scope = forms.CharField(max_length=200, required=False)


class JudgeCreateForm(forms.Form):
    """A judge version from a preset, for an OpenAI-compatible endpoint or a local model.

    The configuration's fields are built from its schema (`judges.fields`): their bounds,
    defaults and help are `JudgeConfig`'s; here only what the page says differently."""

    name = forms.CharField(max_length=200)
    provider = form_field(
        "provider",
        choices=[c for c in Judge.Provider.choices if c[0] != Judge.Provider.IMPORTED],
    )
    preset = forms.ChoiceField(choices=PRESET_CHOICES, initial="mt-bench")
    model_id = form_field("model_id")
    model_revision = form_field("model_revision")
    # The schema checks the scheme: service names without a dot ("http://vllm:8000/v1") pass.
    base_url = form_field(
        "base_url",
        help_text="e.g. http://127.0.0.1:8000/v1; empty for the installation's default.",
    )
    api_key_env = form_field("api_key_env")
    temperature = form_field("temperature")
    seed = form_field("seed")
    max_tokens = form_field("max_tokens")
    top_logprobs = form_field("top_logprobs")
    tie_policy = form_field("tie_policy", choices=Judge.TiePolicy.choices)
    swap_policy = form_field("swap_policy", choices=Judge.SwapPolicy.choices)
    rubric = form_field("rubric")
    system_in_user = form_field(
        "system_in_user",
        JudgeOptions,
        label="Put the system prompt in the user turn (models without one)",
        help_text="",
    )
    tie_epsilon = form_field("tie_epsilon", JudgeOptions)
    reference_field = form_field("reference_field", label="Reference answer field")

    def config_fields(self) -> dict[str, Any]:
        """Cleaned values as `judges.services.judge_config_build` arguments."""
        data = dict(self.cleaned_data)
        data.pop("name")
        provider = data["provider"]
        local = provider != "openai_compatible"
        return {
            "preset_id": None if provider == "transformers_reward" else data.pop("preset"),
            "provider": provider,
            "model_id": data["model_id"].strip(),
            "model_revision": data["model_revision"].strip() or None,
            "base_url": None if local else (data["base_url"].strip() or None),
            "api_key_env": None if local else (data["api_key_env"].strip() or None),
            "temperature": data["temperature"],
            "seed": data["seed"],
            "max_tokens": data["max_tokens"],
            "top_logprobs": data["top_logprobs"],
            "tie_policy": data["tie_policy"],
            "swap_policy": data["swap_policy"],
            "rubric": data["rubric"] or None,
            "system_in_user": data["system_in_user"],
            "tie_epsilon": data["tie_epsilon"] if provider == "transformers_reward" else None,
            "reference_field": data["reference_field"].strip() or None,
        }
