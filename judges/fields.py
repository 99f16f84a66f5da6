"""Form and API fields built from the judge configuration schema (`judges.core.config`).

A field's kind, bounds, default and help text are the schema's, and each field also runs the
schema's own check of its value, so what a form or a serializer field cannot say (an open
interval, a pattern, "not blank") is still refused with the schema's message, under the
field's name. The judge forms and serializers declare which fields they take; this is how.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from pydantic import BaseModel
from rest_framework import serializers

from judges.core.config import FieldSpec, JudgeConfig, JudgeConfigError, field_spec


def _validator(spec: FieldSpec) -> Callable[[Any], None]:
    """The schema's check as a Django validator (DRF's fields run those too)."""

    def check(value: Any) -> None:
        try:
            spec.check(value)
        except JudgeConfigError as exc:
            raise ValidationError(exc.message, code="invalid") from None

    return check


def form_field(name: str, model: type[BaseModel] = JudgeConfig, **options: Any) -> forms.Field:
    """The form field for a schema field; ``options`` override (a label, labelled choices).

    Required unless the schema lets it be empty: None, a text whose default is "", a box
    unticked."""
    spec = field_spec(model, name)
    may_be_empty = spec.nullable or spec.default == "" or spec.default is False
    kwargs: dict[str, Any] = {
        "required": spec.required or not may_be_empty,
        "help_text": spec.help,
        "validators": [_validator(spec)],
    }
    if spec.default not in (None, ""):
        kwargs["initial"] = spec.default
    field: type[forms.Field]
    if spec.choices:
        field, kwargs["choices"] = forms.ChoiceField, [(c, c) for c in spec.choices]
    elif spec.kind is bool:
        field = forms.BooleanField
    elif spec.kind in (int, float):
        field = forms.IntegerField if spec.kind is int else forms.FloatField
        kwargs.update(min_value=spec.minimum, max_value=spec.maximum)
    else:
        field, kwargs["max_length"] = forms.CharField, spec.max_length
        if spec.max_length is None:  # prompt text, not a name
            kwargs["widget"] = forms.Textarea(attrs={"rows": 3})
    kwargs.update(options)
    return field(**kwargs)


def api_field(name: str, model: type[BaseModel] = JudgeConfig, **options: Any) -> serializers.Field:
    """The serializer field for a schema field, optional (the service applies the defaults).

    Text without a length bound is prompt text, kept exactly as sent (it is fingerprinted)."""
    spec = field_spec(model, name)
    kwargs: dict[str, Any] = {
        "required": False,
        "help_text": spec.help,
        "validators": [_validator(spec)],
    }
    if spec.nullable:
        kwargs["allow_null"] = True
    field: type[serializers.Field]
    if spec.choices:
        field, kwargs["choices"] = serializers.ChoiceField, list(spec.choices)
    elif spec.kind is bool:
        field, kwargs["default"] = serializers.BooleanField, spec.default
    elif spec.kind in (int, float):
        field = serializers.IntegerField if spec.kind is int else serializers.FloatField
        kwargs.update(min_value=spec.minimum, max_value=spec.maximum)
    else:
        field, kwargs["max_length"] = serializers.CharField, spec.max_length
        kwargs["allow_blank"] = spec.default == ""
        kwargs["trim_whitespace"] = spec.max_length is not None
    kwargs.update(options)
    return field(**kwargs)
