from __future__ import annotations

import json
from typing import Any

import pytest

from judges.core.config import (
    CONFIG_FIELDS,
    HASHED_FIELDS,
    UNHASHED_FIELDS,
    JudgeConfig,
    JudgeConfigError,
)
from judges.core.templates import MT_BENCH_PAIR_V2, SOS_BENCH_FIVE_CRITERIA


def make_config(**changes: Any) -> JudgeConfig:
    fields: dict[str, Any] = {
        "provider": "openai_compatible",
        "model_id": "llama-3-70b-instruct",
        "model_revision": "2024-07-23",
        "base_url": "http://127.0.0.1:8000/v1",
        "api_key_env": "JUDGE_API_KEY",
        "template_name": MT_BENCH_PAIR_V2.name,
        "template_system": MT_BENCH_PAIR_V2.system,
        "template_user": MT_BENCH_PAIR_V2.user,
    }
    fields.update(changes)
    return JudgeConfig(**fields)


# A different, valid value for every field.
CHANGED: dict[str, Any] = {
    "provider": "transformers_causal",
    "model_id": "gpt-4o",
    "model_revision": "2024-08-06",
    "template_system": SOS_BENCH_FIVE_CRITERIA.system,
    "template_user": SOS_BENCH_FIVE_CRITERIA.user,
    "rubric": "Prefer answers that cite sources.",
    "tie_policy": "force_choice",
    "swap_policy": "ab_only",
    "parse_mode": "strict",
    "temperature": 0.7,
    "top_p": 0.9,
    "seed": 1234,
    "max_tokens": 2048,
    "top_logprobs": 5,
    "verdict_mode": "next_token",
    "reference_field": "reference",
    "template_name": "my_copy_of_pair_v2",
    "base_url": "http://judge-gpu-2:8000/v1",
    "api_key_env": "OTHER_KEY",
    "timeout_s": 5.0,
    "max_retries": 0,
    "requests_per_minute": 30.0,
    "max_concurrency": 16,
}


def test_every_config_field_is_classified_as_hashed_or_not() -> None:
    names = set(CONFIG_FIELDS)
    assert set(HASHED_FIELDS) | set(UNHASHED_FIELDS) == names
    assert not set(HASHED_FIELDS) & set(UNHASHED_FIELDS)
    assert set(CHANGED) == names


@pytest.mark.parametrize("field", HASHED_FIELDS)
def test_it_changes_the_fingerprint_when_a_verdict_affecting_field_changes(field: str) -> None:
    base = make_config()
    changed = make_config(**{field: CHANGED[field]})
    assert getattr(changed, field) != getattr(base, field)
    assert changed.fingerprint() != base.fingerprint()


@pytest.mark.parametrize("field", UNHASHED_FIELDS)
def test_it_keeps_the_fingerprint_when_only_pacing_address_or_label_changes(field: str) -> None:
    base = make_config()
    changed = make_config(**{field: CHANGED[field]})
    assert getattr(changed, field) != getattr(base, field)
    assert changed.fingerprint() == base.fingerprint()


def test_it_fingerprints_as_sha256_of_canonical_json() -> None:
    import hashlib

    config = make_config()
    canonical = json.dumps(
        config.fingerprint_payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert config.fingerprint() == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(config.fingerprint()) == 64


def test_it_hashes_an_integer_and_a_float_temperature_alike() -> None:
    assert make_config(temperature=0).fingerprint() == make_config(temperature=0.0).fingerprint()


def test_it_changes_the_fingerprint_for_a_one_character_prompt_edit() -> None:
    edited = MT_BENCH_PAIR_V2.system.replace("impartial", "impartial,")
    assert make_config(template_system=edited).fingerprint() != make_config().fingerprint()


def test_it_round_trips_through_a_plain_dict_without_the_key() -> None:
    config = make_config(seed=7, top_logprobs=3)
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["api_key_env"] == "JUDGE_API_KEY"
    again = JudgeConfig.from_dict(data)
    assert again == config
    assert again.fingerprint() == config.fingerprint()


def test_it_refuses_unknown_fields_by_name() -> None:
    data = make_config().to_dict() | {"temprature": 0.3}
    with pytest.raises(JudgeConfigError, match="temprature"):
        JudgeConfig.from_dict(data)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "anthropic"}, "provider"),
        ({"model_id": " "}, "model_id"),
        ({"tie_policy": "maybe"}, "tie_policy"),
        ({"swap_policy": "ba_only"}, "swap_policy"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_logprobs": 100}, "top_logprobs"),
        ({"top_logprobs": True}, "top_logprobs"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"base_url": "localhost:8000"}, "base_url"),
        ({"base_url": None}, "base_url"),
        ({"api_key_env": "sk-proj-abc123-secret"}, "api_key_env"),
        ({"api_key_env": "sk_live_4eC39HqLyjWDarjtT1zdp7dc"}, "api_key_env"),
        ({"template_user": "Which is better: {answer_a} or {answer_b}?"}, "template_user"),
    ],
)
def test_it_refuses_bad_values_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(JudgeConfigError) as error:
        make_config(**changes)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}:")


def test_it_does_not_require_a_prompt_for_imported_or_reward_judges() -> None:
    for provider in ("imported", "transformers_reward"):
        config = JudgeConfig(provider=provider, model_id="OpenAssistant/reward-model-deberta")
        assert len(config.fingerprint()) == 64


def test_it_reads_the_key_from_the_named_variable_at_call_time() -> None:
    config = make_config()
    assert config.api_key({"JUDGE_API_KEY": "sk-test"}) == "sk-test"
    with pytest.raises(JudgeConfigError, match="JUDGE_API_KEY is not set"):
        config.api_key({})
    assert make_config(api_key_env=None).api_key({}) is None
