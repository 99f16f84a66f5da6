"""One schema for a judge's configuration: the form and the API take its bounds from it.

Every case is read off the schema (`field_spec`), so a bound changed in `JudgeConfig` moves
what the form, the serializer and the config itself refuse, together."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django import forms
from pydantic import Field
from rest_framework import serializers

from judges.core.config import (
    CONFIG_FIELDS,
    JudgeConfig,
    JudgeConfigError,
    JudgeOptions,
    field_spec,
)
from judges.fields import api_field, form_field
from judges.forms import JudgeCreateForm
from judges.serializers import JudgeCreateInput

FORM_DATA = {
    "name": "schema-judge",
    "provider": "openai_compatible",
    "preset": "mt-bench",
    "model_id": "gpt-4o",
    "base_url": "http://127.0.0.1:8000/v1",
    "temperature": "0",
    "max_tokens": "1024",
    "top_logprobs": "0",
    "tie_policy": "allow_tie",
    "swap_policy": "both",
}
API_DATA = {"name": "schema-judge", "model_id": "gpt-4o"}
CONFIG_DATA = {
    "provider": "openai_compatible",
    "model_id": "gpt-4o",
    "base_url": "http://127.0.0.1:8000/v1",
    "template_user": "{question} {answer_a} {answer_b}",
}


def _text(name: str, length: int) -> str:
    """A text of ``length`` characters that the field's other checks accept."""
    if name == "base_url":
        return "http://" + "h" * (length - 7)
    return ("A" if name == "api_key_env" else "a") * length


def _bound_cases() -> list[Any]:
    """(model, field, refused value, accepted value at the bound) for every bound in the
    schema: numbers just past each end, texts one character too long."""
    cases = []
    for model, names in ((JudgeConfig, CONFIG_FIELDS), (JudgeOptions, ("tie_epsilon",))):
        for name in names:
            spec = field_spec(model, name)
            step = 1 if spec.kind is int else None

            def past(bound: float, way: float, step: int | None = step) -> float:
                return bound + way * step if step else math.nextafter(bound, way * math.inf)

            if spec.minimum is not None:
                cases.append((model, name, "minimum", past(spec.minimum, -1), spec.minimum))
            if spec.maximum is not None:
                cases.append((model, name, "maximum", past(spec.maximum, 1), spec.maximum))
            if spec.above is not None:
                cases.append((model, name, "above", spec.above, past(spec.above, 1)))
            if spec.max_length is not None:
                too_long, longest = _text(name, spec.max_length + 1), _text(name, spec.max_length)
                cases.append((model, name, "max_length", too_long, longest))
    return [pytest.param(*case, id=f"{case[1]}-{case[2]}") for case in cases]


BOUND_CASES = _bound_cases()


def test_every_bound_of_the_schema_is_a_case() -> None:
    ids = {case.id for case in BOUND_CASES}
    assert {"temperature-maximum", "timeout_s-above", "top_logprobs-maximum"} <= ids
    assert {"model_id-max_length", "max_retries-minimum", "tie_epsilon-minimum"} <= ids


def _form_errors(name: str, value: Any) -> dict[str, Any]:
    form = JudgeCreateForm(data=FORM_DATA | {name: str(value)})
    form.is_valid()
    return dict(form.errors)


def _api_errors(name: str, value: Any) -> dict[str, Any]:
    data_in = JudgeCreateInput(data=API_DATA | {name: value})
    data_in.is_valid()
    return dict(data_in.errors)


def test_the_valid_inputs_of_these_tests_are_valid() -> None:
    assert _form_errors("name", "schema-judge") == {}
    assert _api_errors("name", "schema-judge") == {}
    assert JudgeConfig(**CONFIG_DATA).model_id == "gpt-4o"


@pytest.mark.parametrize(("model", "name", "bound", "refused", "accepted"), BOUND_CASES)
def test_the_form_the_api_and_the_config_refuse_a_value_past_each_bound(
    model: type, name: str, bound: str, refused: Any, accepted: Any
) -> None:
    api_refused, api_accepted = _api_errors(name, refused), _api_errors(name, accepted)
    assert list(api_refused) == [name]
    assert name not in api_accepted
    if name in JudgeCreateForm.base_fields:
        assert list(_form_errors(name, refused)) == [name]
        assert name not in _form_errors(name, accepted)
    if model is JudgeConfig:
        with pytest.raises(JudgeConfigError) as error:
            JudgeConfig(**CONFIG_DATA | {name: refused})
        assert error.value.field == name
        assert JudgeConfig(**CONFIG_DATA | {name: accepted}).to_dict()[name] == accepted


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("api_key_env", "sk-proj-abc123", "NAME of an environment variable"),
        ("base_url", "localhost:8000", "must start with http:// or https://"),
        ("reference_field", "a key", "a key of the pair's meta"),
    ],
)
def test_a_check_no_bound_can_say_is_the_schemas_own_under_the_field(
    name: str, value: str, message: str
) -> None:
    """Patterns are refused with the schema's message, on the field."""
    form_errors = _form_errors(name, value)[name]
    api_errors = _api_errors(name, value)[name]

    assert any(message in e for e in form_errors), form_errors
    assert any(message in e for e in api_errors), api_errors


class _NarrowConfig(JudgeConfig):
    """The schema with one bound changed, as a later edit of `JudgeConfig` would change it."""

    temperature: float = Field(0.0, ge=0.0, le=1.0, description="Sampling temperature.")


def test_a_bound_changed_in_the_schema_moves_the_form_and_the_api_with_it() -> None:
    class Form(forms.Form):
        temperature = form_field("temperature", _NarrowConfig)

    class Input(serializers.Serializer):
        temperature = api_field("temperature", _NarrowConfig)

    for value, refused in ((1.0, False), (1.5, True)):
        form, data_in = Form(data={"temperature": str(value)}), Input(data={"temperature": value})
        assert (not form.is_valid(), not data_in.is_valid()) == (refused, refused)
        assert ("temperature" in form.errors, "temperature" in data_in.errors) == (refused,) * 2
    with pytest.raises(JudgeConfigError, match=r"temperature: must be at most 1, got 1\.5"):
        _NarrowConfig(**CONFIG_DATA | {"temperature": 1.5})
    # ...while the real schema still allows it.
    assert _form_errors("temperature", 1.5) == _api_errors("temperature", 1.5) == {}


def test_the_form_and_the_api_show_the_schemas_defaults_and_help() -> None:
    form_fields, api_fields = JudgeCreateForm.base_fields, JudgeCreateInput().fields
    for name in CONFIG_FIELDS:
        spec = field_spec(JudgeConfig, name)
        assert api_fields[name].help_text == spec.help
        if name in form_fields and name != "base_url":  # the page names its own default
            assert form_fields[name].help_text == spec.help
        if name in form_fields and spec.default not in (None, ""):
            assert form_fields[name].initial == spec.default
