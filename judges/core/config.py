"""A judge's pinned configuration and its fingerprint.

A `JudgeConfig` is what makes two verdicts comparable: the same fingerprint means the same
model, prompt, rubric, sampling and parsing rules. It is frozen; a change is a new config with
a new fingerprint (and, in the database, a new Judge version), never an edit.

What the fingerprint covers
---------------------------
Hashed (anything that can change what the judge answers or how its answer is read):
provider, model_id, model_revision, template_system, template_user, rubric, tie_policy,
swap_policy, parse_mode, temperature, top_p, seed, max_tokens, top_logprobs, verdict_mode,
reference_field.

``reference_field`` names the key of the pair's ``meta`` (else the prompt's) holding a
reference answer the judge is shown (docs/judges.md, *Reference answers*). Hashed only when
set, so judges from before the field keep their fingerprints, and a judge that reads a
reference is a new version of the same judge without one: the two compare as versions.

``verdict_mode`` is how a verdict is obtained: ``generate`` (the default: the judge writes an
answer and `judges.core.parsing` reads the verdict out of it) or ``next_token`` (the prompt is
followed by a prefilled ``[[`` and the verdict is the most probable of the next tokens
``A``/``B``/``C``, see `judges.core.next_token`). It is hashed only when it is not the
default, so the fingerprints of judges made before the field existed did not change; a
``next_token`` judge always has a different fingerprint from the same judge generating text.

Not hashed (where and how fast the calls are made, not what they return):

- ``template_name``: a label. Two configs with the same template text are the same judge,
  whatever the preset is called; a renamed preset must not invalidate cached verdicts.
- ``base_url``: the address of the server. The model is pinned by ``model_id`` +
  ``model_revision``; moving a vLLM server to another host or port does not change its
  answers. The flip side: if two servers serve *different* weights under one model id, the
  revision is what tells them apart, so set ``model_revision`` (a Hugging Face commit, a GGUF
  sha256, an API snapshot name such as ``gpt-4o-2024-08-06``).
- ``api_key_env``: the *name* of an environment variable. Rotating a key, or reading it from
  another variable, changes who pays, not what the model says. The key itself is never stored.
- ``timeout_s``, ``max_retries``, ``requests_per_minute``, ``max_concurrency``: pacing.
  A call that times out is recorded as an error and retried on the next run, so these change
  how many verdicts exist, never what a verdict says.

``top_logprobs`` *is* hashed although it does not change the sampled text: it decides whether
a verdict carries a log-probability margin, and the margin is part of the recorded verdict.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

Provider = Literal["openai_compatible", "transformers_reward", "transformers_causal", "imported"]
TiePolicy = Literal["allow_tie", "force_choice"]
SwapPolicy = Literal["both", "ab_only"]
ParseMode = Literal["tolerant", "strict"]
VerdictMode = Literal["generate", "next_token"]

PROVIDERS: Final = get_args(Provider)
TIE_POLICIES: Final = get_args(TiePolicy)
SWAP_POLICIES: Final = get_args(SwapPolicy)
PARSE_MODES: Final = get_args(ParseMode)
VERDICT_MODES: Final = get_args(VerdictMode)
DEFAULT_VERDICT_MODE: Final = "generate"
_REFERENCE_FIELD: Final = re.compile(r"^([A-Za-z0-9_.-]{1,100})?$")

# Bumped when the meaning of a hashed field changes, so old fingerprints never collide with
# new ones that would be computed differently.
FINGERPRINT_SCHEMA: Final = 1

# OpenAI caps top_logprobs at 20. Larger values are also what made a local llama.cpp judge
# take 35 s per call, so the cap protects throughput as well as compatibility.
MAX_TOP_LOGPROBS: Final = 20

# Providers that send the pairwise prompt to a generative model. A reward model scores each
# side on its own and an imported judge has no prompt, so neither needs the placeholders.
PAIRWISE_PROMPT_PROVIDERS: Final = ("openai_compatible", "transformers_causal")

_ENV_NAME: Final = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")

HASHED_FIELDS: Final = (
    "provider",
    "model_id",
    "model_revision",
    "template_system",
    "template_user",
    "rubric",
    "tie_policy",
    "swap_policy",
    "parse_mode",
    "temperature",
    "top_p",
    "seed",
    "max_tokens",
    "top_logprobs",
    "verdict_mode",
    "reference_field",
)
UNHASHED_FIELDS: Final = (
    "template_name",
    "base_url",
    "api_key_env",
    "timeout_s",
    "max_retries",
    "requests_per_minute",
    "max_concurrency",
)


class JudgeConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, kw_only=True)
class JudgeConfig:
    """Everything needed to run one judge, validated on construction.

    ``template_system`` and ``template_user`` are the prompt text; the user template must
    contain ``{question}``, ``{answer_a}`` and ``{answer_b}`` (see `judges.core.templates`).
    """

    provider: Provider
    model_id: str
    model_revision: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    template_name: str = ""
    template_system: str = ""
    template_user: str = ""
    rubric: str = ""
    tie_policy: TiePolicy = "allow_tie"
    swap_policy: SwapPolicy = "both"
    parse_mode: ParseMode = "tolerant"
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int = 1024
    top_logprobs: int = 0
    verdict_mode: VerdictMode = "generate"
    # The key of the pair's meta (else its prompt's meta) that holds a reference answer the
    # judge sees (`{reference}` in the template, or appended to the user turn); "" for none.
    reference_field: str = ""
    timeout_s: float = 120.0
    max_retries: int = 4
    requests_per_minute: float | None = None
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        _check_choice("provider", self.provider, PROVIDERS)
        _check_choice("tie_policy", self.tie_policy, TIE_POLICIES)
        _check_choice("swap_policy", self.swap_policy, SWAP_POLICIES)
        _check_choice("parse_mode", self.parse_mode, PARSE_MODES)
        _check_choice("verdict_mode", self.verdict_mode, VERDICT_MODES)
        if self.verdict_mode == "next_token" and self.provider != "openai_compatible":
            raise JudgeConfigError(
                "verdict_mode",
                "next_token reads a completion server's log-probabilities: "
                "it needs an openai_compatible judge",
            )
        if not isinstance(self.model_id, str) or not self.model_id.strip():
            raise JudgeConfigError("model_id", "must be a non-empty string")
        for name in ("model_revision", "template_name", "template_system", "rubric"):
            if not isinstance(getattr(self, name), str):
                raise JudgeConfigError(name, "must be a string")
        if not isinstance(self.reference_field, str) or not _REFERENCE_FIELD.match(
            self.reference_field
        ):
            raise JudgeConfigError(
                "reference_field",
                f"{self.reference_field!r}: a key of the pair's meta, up to 100 letters, digits, "
                "'_', '-' or '.', or empty for no reference",
            )
        if self.reference_field and self.provider not in PAIRWISE_PROMPT_PROVIDERS:
            raise JudgeConfigError(
                "reference_field", "only a judge with a prompt template can be given a reference"
            )
        if not isinstance(self.template_user, str):
            raise JudgeConfigError("template_user", "must be a string")
        if self.provider in PAIRWISE_PROMPT_PROVIDERS:
            missing = [
                p for p in ("{question}", "{answer_a}", "{answer_b}") if p not in self.template_user
            ]
            if missing:
                raise JudgeConfigError(
                    "template_user", f"must contain the placeholders {', '.join(missing)}"
                )
        _check_number("temperature", self.temperature, low=0.0, high=2.0)
        if self.top_p is not None:
            _check_number("top_p", self.top_p, low=0.0, high=1.0)
        if self.seed is not None:
            _check_int("seed", self.seed, low=None)
        _check_int("max_tokens", self.max_tokens, low=1)
        _check_int("top_logprobs", self.top_logprobs, low=0, high=MAX_TOP_LOGPROBS)
        _check_number("timeout_s", self.timeout_s, low=0.0, low_open=True)
        _check_int("max_retries", self.max_retries, low=0, high=20)
        if self.requests_per_minute is not None:
            _check_number("requests_per_minute", self.requests_per_minute, low=0.0, low_open=True)
        _check_int("max_concurrency", self.max_concurrency, low=1, high=256)
        if self.base_url is not None and not (
            isinstance(self.base_url, str) and self.base_url.startswith(("http://", "https://"))
        ):
            raise JudgeConfigError("base_url", "must start with http:// or https://")
        if self.provider == "openai_compatible" and not self.base_url:
            raise JudgeConfigError("base_url", "is required for an openai_compatible judge")
        # Upper case only: real keys are mixed-case or contain hyphens ("sk-..."), so a key
        # pasted into the field by mistake is refused instead of being stored in clear.
        if self.api_key_env is not None and not (
            isinstance(self.api_key_env, str) and _ENV_NAME.fullmatch(self.api_key_env)
        ):
            raise JudgeConfigError(
                "api_key_env",
                "must be the NAME of an environment variable (upper-case letters, digits, "
                "underscores), such as OPENAI_API_KEY, not the key itself",
            )

    def fingerprint_payload(self) -> dict[str, Any]:
        """The canonical, hashed view of this config (see the module docstring)."""
        payload: dict[str, Any] = {"schema": FINGERPRINT_SCHEMA}
        for name in HASHED_FIELDS:
            value = getattr(self, name)
            # Added after fingerprints were in use: left out at its default so every judge
            # that existed before keeps its fingerprint; any other mode is hashed.
            if name == "verdict_mode" and value == DEFAULT_VERDICT_MODE:
                continue
            # Likewise added later: no reference, nothing hashed; a reference field is.
            if name == "reference_field" and not value:
                continue
            # 0 and 0.0 must hash alike: a config read back from JSON may carry either.
            if name in ("temperature", "top_p") and value is not None:
                value = float(value)
            payload[name] = value
        return payload

    def fingerprint(self) -> str:
        """sha256 hex digest of the canonical JSON of the hashed fields."""
        canonical = json.dumps(
            self.fingerprint_payload(),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Read the key from the named environment variable at call time; never stored."""
        if self.api_key_env is None:
            return None
        env = os.environ if environ is None else environ
        key = env.get(self.api_key_env)
        if not key:
            raise JudgeConfigError(
                "api_key_env", f"environment variable {self.api_key_env} is not set or empty"
            )
        return key

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-ready values (for `Judge.config`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeConfig:
        """Build from `to_dict` output; unknown keys are refused with their names."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise JudgeConfigError(unknown[0], f"unknown field(s): {', '.join(unknown)}")
        missing = [k for k in ("provider", "model_id") if k not in data]
        if missing:
            raise JudgeConfigError(missing[0], "is required")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> JudgeConfig:
        """A new, re-validated config with some fields changed."""
        return dataclasses.replace(self, **changes)


def _check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise JudgeConfigError(field, f"{value!r} is not one of {', '.join(choices)}")


def _check_number(
    field: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JudgeConfigError(field, f"must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        bound = "greater than" if low_open else "at least"
        raise JudgeConfigError(field, f"must be {bound} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise JudgeConfigError(field, f"must be at most {high:g}, got {value!r}")


def _check_int(field: str, value: object, *, low: int | None, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JudgeConfigError(field, f"must be an integer, got {value!r}")
    if low is not None and value < low:
        raise JudgeConfigError(field, f"must be at least {low}, got {value}")
    if high is not None and value > high:
        raise JudgeConfigError(field, f"must be at most {high}, got {value}")
