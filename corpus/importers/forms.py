"""The upload form: a dataset (existing or new), a format, files."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_slug

from corpus.importers.formats import FORMATS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (Django's FileField takes one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        if isinstance(data, list | tuple):
            files = [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        else:
            files = [super().clean(data, initial)] if data else []
        if self.required and not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return files


class ImportUploadForm(forms.Form):
    dataset = forms.CharField(
        max_length=100,
        validators=[validate_slug],
        help_text="An existing dataset joins the new rows on their pair keys; a new name "
        "creates the dataset. Letters, numbers, hyphens and underscores.",
    )
    format = forms.ChoiceField(choices=[(name, name) for name in FORMATS])
    data_files = MultipleFileField(
        label="Files",
        help_text="One or more files. Each is imported whole or not at all; files that "
        "create pairs go first.",
    )
    answers = MultipleFileField(
        required=False,
        help_text="MT-Bench and Arena-Hard-Auto: model answer files (model_answer/*.jsonl).",
    )
    questions = MultipleFileField(
        required=False,
        help_text="MT-Bench and Arena-Hard-Auto: the questions file (question.jsonl).",
    )
    baseline = forms.CharField(
        required=False,
        max_length=200,
        help_text="Arena-Hard-Auto: the baseline model, for judgments that do not name it "
        "(default gpt-4-0314).",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spec = FORMATS.get(data.get("format") or "")
        if (
            spec is not None
            and not spec.side_files
            and (data.get("answers") or data.get("questions"))
        ):
            self.add_error(
                "answers", f"The {spec.name} format takes no answers or questions files."
            )
        if data.get("baseline") and data.get("format") != "arena-hard":
            self.add_error("baseline", "A baseline is for the arena-hard format.")
        return data
