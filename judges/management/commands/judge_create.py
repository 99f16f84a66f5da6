"""Create (or find) a judge version from a prompt preset and options, or from a JSON file.

    python manage.py judge_create --preset mt-bench --name gpt4o-judge \\
        --model-id gpt-4o-2024-08-06 --base-url https://api.openai.com/v1 \\
        --api-key-env OPENAI_API_KEY --seed 7
    python manage.py judge_create --from-json judge.json --name my-judge

The same configuration twice gives the same version; any change to what is fingerprinted
gives the next version under the name. Options override the file's values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from judges import services
from judges.core.config import (
    PARSE_MODES,
    PROVIDERS,
    SWAP_POLICIES,
    TIE_POLICIES,
    VERDICT_MODES,
)

# option dest -> JudgeConfig field
_FIELDS = {
    "provider": "provider",
    "model_id": "model_id",
    "model_revision": "model_revision",
    "base_url": "base_url",
    "api_key_env": "api_key_env",
    "rubric": "rubric",
    "tie_policy": "tie_policy",
    "swap_policy": "swap_policy",
    "parse_mode": "parse_mode",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_tokens": "max_tokens",
    "top_logprobs": "top_logprobs",
    "verdict_mode": "verdict_mode",
    "reference_field": "reference_field",
    "timeout": "timeout_s",
    "max_retries": "max_retries",
    "rpm": "requests_per_minute",
    "concurrency": "max_concurrency",
}
_EXTRA_KEYS = ("name", "preset", "system_in_user", "tie_epsilon")


def _error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(m for e in errors for m in e.messages)}"
            for field, errors in exc.error_dict.items()
        )
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create a judge version from a preset and options (or a JSON file); print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", help="judge name (versions are numbered under it)")
        parser.add_argument(
            "--preset",
            help="prompt preset: mt-bench (MT-Bench pair-v2) or sos-bench (five criteria)",
        )
        parser.add_argument("--from-json", type=Path, help="a JSON object of config fields")
        parser.add_argument("--provider", choices=PROVIDERS)
        parser.add_argument("--model-id", help="model name, or a local model directory")
        parser.add_argument("--model-revision", help="snapshot, commit or weights digest")
        parser.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. …/v1")
        parser.add_argument("--api-key-env", help="NAME of the variable holding the key")
        parser.add_argument("--rubric", help="rubric text added to the prompt")
        parser.add_argument("--rubric-file", type=Path, help="read the rubric from a file")
        parser.add_argument("--tie-policy", choices=TIE_POLICIES)
        parser.add_argument("--swap-policy", choices=SWAP_POLICIES)
        parser.add_argument("--parse-mode", choices=PARSE_MODES)
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument("--top-logprobs", type=int, help="0 (default) for no margin")
        parser.add_argument(
            "--verdict-mode",
            choices=VERDICT_MODES,
            help="generate (default): parse the written answer; next_token: the most probable "
            "of [[A]]/[[B]]/[[C]] after a prefilled [[ (judges.core.next_token)",
        )
        parser.add_argument(
            "--reference-field",
            metavar="KEY",
            help="show the judge the reference answer in the pair's meta KEY (else the "
            "prompt's): {reference} in the template, or appended; a new version",
        )
        parser.add_argument("--timeout", type=float, help="seconds per call")
        parser.add_argument("--max-retries", type=int)
        parser.add_argument("--rpm", type=float, help="requests per minute")
        parser.add_argument("--concurrency", type=int, help="calls in flight at most")
        parser.add_argument(
            "--tie-epsilon", type=float, help="reward models: |margin| < ε is a tie"
        )
        parser.add_argument(
            "--system-in-user",
            action="store_true",
            default=None,
            help="fold the system prompt into the user turn (models without a system role)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        values = self._from_file(options["from_json"]) if options["from_json"] else {}
        for dest, name in _FIELDS.items():
            if options[dest] is not None:
                values[name] = options[dest]
        for key in ("name", "preset", "system_in_user", "tie_epsilon"):
            if options[key] is not None:
                values[key] = options[key]
        if options["rubric_file"] is not None:
            try:
                values["rubric"] = options["rubric_file"].read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"{options['rubric_file']}: {exc.strerror}") from None
        name = values.pop("name", None)
        if not name:
            raise CommandError("--name is required (or a 'name' in the JSON file)")
        if not values.get("model_id"):
            raise CommandError("--model-id is required (or a 'model_id' in the JSON file)")
        try:
            config = services.judge_config_build(
                preset_id=values.pop("preset", None),
                system_in_user=bool(values.pop("system_in_user", False)),
                tie_epsilon=values.pop("tie_epsilon", None),
                **values,
            )
            result = services.judge_version_get_or_create(config=config, name=name)
        except ValidationError as exc:
            raise CommandError(_error_text(exc)) from None
        judge = result.judge
        if result.created:
            status = "created"
        elif judge.name != name:
            status = f"existing (this configuration is already judge {judge.name!r})"
        else:
            status = "existing (same configuration)"
        self.stdout.write(f"judge: {judge.name}")
        self.stdout.write(f"version: {judge.version}")
        self.stdout.write(f"fingerprint: {judge.fingerprint}")
        self.stdout.write(f"status: {status}")
        if result.settings_updated:
            self.stdout.write(f"updated (not fingerprinted): {', '.join(result.settings_updated)}")

    def _from_file(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except UnicodeDecodeError:
            raise CommandError(f"{path}: not UTF-8 text") from None
        if not isinstance(data, dict):
            raise CommandError(f"{path}: expected a JSON object of judge settings")
        allowed = (
            set(_FIELDS.values())
            | set(_EXTRA_KEYS)
            | {
                "template_name",
                "template_system",
                "template_user",
            }
        )
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise CommandError(f"{path}: unknown key(s) {', '.join(unknown)}")
        return dict(data)
