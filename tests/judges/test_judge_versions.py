"""Judge versions: a pinned configuration, its fingerprint, and `judge_create`."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from judges import services
from judges.core.config import JudgeConfig
from judges.core.templates import MT_BENCH_PAIR_V2, SOS_BENCH_FIVE_CRITERIA
from judges.models import Judge

BASE = "http://127.0.0.1:9/v1"


def build(**fields: Any) -> JudgeConfig:
    fields.setdefault("preset_id", "mt-bench")
    fields.setdefault("model_id", "gpt-4o-2024-08-06")
    fields.setdefault("base_url", BASE)
    return services.judge_config_build(**fields)


def create(*args: str) -> dict[str, str]:
    out = StringIO()
    call_command("judge_create", *args, stdout=out)
    return dict(line.split(": ", 1) for line in out.getvalue().splitlines())


def test_it_pins_the_whole_configuration_on_the_version(db: None) -> None:
    config = build(seed=7, temperature=0.0, max_tokens=256, rubric="Prefer correct answers.")

    judge = services.judge_version_for(config, "gpt4o")

    assert (judge.name, judge.version) == ("gpt4o", 1)
    assert judge.fingerprint == config.fingerprint()
    assert judge.config == config.to_dict()
    assert JudgeConfig.from_dict(judge.config) == config
    assert (judge.provider, judge.model_id, judge.seed, judge.max_tokens) == (
        "openai_compatible",
        "gpt-4o-2024-08-06",
        7,
        256,
    )
    assert judge.prompt_template == MT_BENCH_PAIR_V2.system
    assert judge.rubric == "Prefer correct answers."
    assert (judge.tie_policy, judge.swap_policy) == ("allow_tie", "both")


def test_it_returns_the_same_version_for_the_same_config_and_the_next_for_any_change(
    db: None,
) -> None:
    first = services.judge_version_for(build(seed=7), "gpt4o")
    again = services.judge_version_for(build(seed=7), "gpt4o")
    changes = [
        {"seed": 8},
        {"temperature": 0.7},
        {"preset_id": "sos-bench"},
        {"rubric": "Be strict."},
        {"tie_policy": "force_choice"},
        {"swap_policy": "ab_only"},
        {"max_tokens": 64},
        {"model_revision": "2024-08-06"},
        {"top_logprobs": 5},
    ]
    versions = [services.judge_version_for(build(**{"seed": 7, **c}), "gpt4o") for c in changes]

    assert again.pk == first.pk
    assert [v.version for v in versions] == list(range(2, 2 + len(changes)))
    assert len({v.fingerprint for v in [first, *versions]}) == 1 + len(changes)
    first.refresh_from_db()
    assert first.config["seed"] == 7  # never edited by a later version


def test_it_moves_a_server_without_making_a_new_version(db: None) -> None:
    judge = services.judge_version_for(build(), "gpt4o")

    moved = services.judge_version_get_or_create(
        config=build(base_url="http://10.0.0.5:8000/v1", timeout_s=30.0), name="gpt4o"
    )

    assert (moved.judge.pk, moved.created) == (judge.pk, False)
    assert set(moved.settings_updated) == {"base_url", "timeout_s"}
    judge.refresh_from_db()
    assert judge.config["base_url"] == "http://10.0.0.5:8000/v1"
    assert Judge.objects.count() == 1


def test_it_ships_the_mt_bench_and_sos_bench_presets(db: None) -> None:
    mt = build()
    sos = build(preset_id="sos-bench")

    assert (mt.template_name, mt.template_system, mt.template_user) == (
        "mt_bench_pair_v2",
        MT_BENCH_PAIR_V2.system,
        MT_BENCH_PAIR_V2.user,
    )
    assert sos.template_name == "sos_bench_five_criteria"
    assert sos.template_system == SOS_BENCH_FIVE_CRITERIA.system
    for criterion in ("Correctness", "Completeness", "Safety", "Conciseness", "Style"):
        assert criterion in sos.template_system


def test_it_folds_the_system_prompt_into_the_user_turn_when_asked(db: None) -> None:
    config = build(system_in_user=True)

    assert config.template_system == ""
    assert config.template_user == MT_BENCH_PAIR_V2.system + "\n\n" + MT_BENCH_PAIR_V2.user
    assert config.fingerprint() != build().fingerprint()


def test_it_takes_the_default_base_url_from_settings_or_asks_for_one(
    db: None, settings: Any
) -> None:
    settings.JUDGE_DEFAULT_BASE_URL = "http://vllm.internal:8000/v1"
    assert build(base_url=None).base_url == "http://vllm.internal:8000/v1"

    settings.JUDGE_DEFAULT_BASE_URL = ""
    with pytest.raises(ValidationError) as caught:
        build(base_url=None)
    assert "JUDGE_BASE_URL" in str(caught.value.message_dict["base_url"])


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"temperature": 3.0}, "temperature", "at most 2"),
        ({"api_key_env": "sk-live-abc123"}, "api_key_env", "NAME of an environment variable"),
        ({"preset_id": "arena"}, "preset", "unknown prompt template"),
        ({"base_url": "ftp://x"}, "base_url", "http://"),
        ({"top_logprobs": 50}, "top_logprobs", "at most 20"),
    ],
)
def test_it_refuses_a_bad_setting_naming_the_field(
    db: None, fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        build(**fields)

    assert message in " ".join(caught.value.message_dict[field])
    assert Judge.objects.count() == 0


def test_it_refuses_a_name_with_a_colon(db: None) -> None:
    with pytest.raises(ValidationError, match="separates a name from its version"):
        services.judge_version_for(build(), "gpt4o:2")


def test_the_command_prints_the_version_and_fingerprint_and_is_idempotent(db: None) -> None:
    args = ["--preset", "mt-bench", "--name", "local", "--model-id", "m", "--base-url", BASE]

    first = create(*args, "--seed", "7")
    same = create(*args, "--seed", "7")
    changed = create(*args, "--seed", "7", "--temperature", "0.5")

    judge = Judge.objects.get(name="local", version=1)
    assert first == {
        "judge": "local",
        "version": "1",
        "fingerprint": judge.fingerprint,
        "status": "created",
    }
    assert same["version"] == "1" and same["status"] == "existing (same configuration)"
    assert (changed["version"], changed["status"]) == ("2", "created")
    assert changed["fingerprint"] != first["fingerprint"]


def test_the_command_reads_a_json_file_and_lets_options_override_it(
    db: None, tmp_path: Path
) -> None:
    path = tmp_path / "judge.json"
    path.write_text(
        json.dumps(
            {
                "name": "from-file",
                "preset": "sos-bench",
                "model_id": "qwen2.5-72b",
                "base_url": BASE,
                "tie_policy": "force_choice",
                "seed": 1,
            }
        )
    )

    printed = create("--from-json", str(path), "--seed", "2")

    judge = Judge.objects.get(name="from-file")
    assert printed["fingerprint"] == judge.fingerprint
    assert (judge.template_name, judge.tie_policy, judge.seed) == (
        "sos_bench_five_criteria",
        "force_choice",
        2,
    )


def test_the_command_reads_back_a_stored_config(db: None, tmp_path: Path) -> None:
    judge = services.judge_version_for(build(seed=3), "original")
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(judge.config))

    printed = create("--from-json", str(path), "--name", "copy")

    assert printed["fingerprint"] == judge.fingerprint
    assert printed["status"] == "existing (this configuration is already judge 'original')"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model_id": "m",\n "seed": }', "judge.json:2:10: invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"model_id": "m", "name": "x", "colour": "red"}', "unknown key(s) colour"),
        (
            json.dumps(
                {
                    "model_id": "m",
                    "name": "x",
                    "base_url": BASE,
                    "preset": "mt-bench",
                    "temperature": -1,
                }
            ),
            "temperature: must be at least 0",
        ),
    ],
)
def test_the_command_explains_a_bad_file(
    db: None, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "judge.json"
    path.write_text(content)

    with pytest.raises(CommandError) as caught:
        create("--from-json", str(path))

    assert message in str(caught.value)
    assert Judge.objects.count() == 0
