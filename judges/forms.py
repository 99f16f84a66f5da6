"""Forms of the judges pages: start a run, create a judge version. Validation only; the
services do the work."""

from __future__ import annotations

from typing import Any

from django import forms

from corpus.models import Dataset
from judges import selectors
from judges.core.config import MAX_TOP_LOGPROBS
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
    """A judge version from a preset, for an OpenAI-compatible endpoint or a local model."""

    name = forms.CharField(max_length=200)
    provider = forms.ChoiceField(
        choices=[c for c in Judge.Provider.choices if c[0] != Judge.Provider.IMPORTED]
    )
    preset = forms.ChoiceField(choices=PRESET_CHOICES, initial="mt-bench")
    model_id = forms.CharField(
        max_length=300, help_text="Model name at the endpoint, or a local model directory."
    )
    model_revision = forms.CharField(
        max_length=200,
        required=False,
        help_text="Snapshot or commit; local models are pinned to a digest of their files.",
    )
    # A CharField: service names without a dot ("http://vllm:8000/v1") are valid here,
    # and the judge configuration checks the scheme itself.
    base_url = forms.CharField(
        max_length=500,
        required=False,
        help_text="e.g. http://127.0.0.1:8000/v1; empty for the installation's default.",
    )
    api_key_env = forms.CharField(
        max_length=128,
        required=False,
        help_text="NAME of the environment variable holding the key, never the key itself.",
    )
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0)
    seed = forms.IntegerField(required=False)
    max_tokens = forms.IntegerField(min_value=1, initial=1024)
    top_logprobs = forms.IntegerField(
        min_value=0,
        max_value=MAX_TOP_LOGPROBS,
        initial=0,
        help_text="Alternatives per token for a log-probability margin; 0 for none.",
    )
    tie_policy = forms.ChoiceField(choices=Judge.TiePolicy.choices)
    swap_policy = forms.ChoiceField(choices=Judge.SwapPolicy.choices)
    rubric = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    system_in_user = forms.BooleanField(
        required=False, label="Put the system prompt in the user turn (models without one)"
    )
    tie_epsilon = forms.FloatField(
        min_value=0, required=False, help_text="Reward models: |score gap| below this is a tie."
    )
    reference_field = forms.CharField(
        max_length=100,
        required=False,
        label="Reference answer field",
        help_text="Key of the pair's meta (else the prompt's) holding a reference answer to "
        "show the judge: {reference} in the template, or appended. Makes a new version.",
    )

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
