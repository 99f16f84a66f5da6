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

The schema
----------
`JudgeConfig` is a pydantic model: every field's type, bounds, default and help text are
written here once. The judge forms and the API's serializer build their fields from it
(`judges.fields`), so a bound changes in one place; `field_spec` is the view of one field they
read. Every error is a `JudgeConfigError` naming the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

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
        self.message = message


# Checks a bound cannot say; each raises ValueError with the message shown under the field.


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _env_name(value: str) -> str:
    # Upper case only: real keys are mixed-case or contain hyphens ("sk-..."), so a key
    # pasted into the field by mistake is refused instead of being stored in clear.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the NAME of an environment variable (upper-case letters, digits, "
            "underscores), such as OPENAI_API_KEY, not the key itself"
        )
    return value


def _reference_key(value: str) -> str:
    if not _REFERENCE_FIELD.match(value):
        raise ValueError(
            f"{value!r}: a key of the pair's meta, up to 100 letters, digits, '_', '-' or '.', "
            "or empty for no reference"
        )
    return value


# Strict: no "1" for 1 nor True for 1, as a hand-edited JSON config might carry; an integer
# is taken where a number is (and stored as a float).
_STRICT: Final = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class JudgeConfig(BaseModel):
    """Everything needed to run one judge, validated on construction.

    ``template_system`` and ``template_user`` are the prompt text; the user template must
    contain ``{question}``, ``{answer_a}`` and ``{answer_b}`` (see `judges.core.templates`).
    Construction raises `JudgeConfigError` naming the first field at fault.
    """

    model_config = _STRICT

    provider: Provider = Field(
        description="Where verdicts come from: an OpenAI-compatible endpoint, a local "
        "transformers model (reward or causal), or imported files."
    )
    model_id: Annotated[str, AfterValidator(_nonblank)] = Field(
        max_length=300, description="Model name at the endpoint, or a local model directory."
    )
    model_revision: str = Field(
        "",
        max_length=200,
        description="Snapshot or commit; local models are pinned to a digest of their files.",
    )
    base_url: Annotated[str, AfterValidator(_url)] | None = Field(
        None,
        max_length=500,
        description="The OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.",
    )
    api_key_env: Annotated[str, AfterValidator(_env_name)] | None = Field(
        None,
        max_length=128,
        description="NAME of the environment variable holding the key, never the key itself.",
    )
    template_name: str = Field(
        "", max_length=100, description="The prompt's name, a label (not fingerprinted)."
    )
    template_system: str = Field("", description="The system prompt.")
    template_user: str = Field(
        "", description="The user prompt, with {question}, {answer_a} and {answer_b}."
    )
    rubric: str = Field("", description="Rubric text added to the prompt.")
    tie_policy: TiePolicy = Field(
        "allow_tie", description="Whether a tie is an answer or the judge must choose a side."
    )
    swap_policy: SwapPolicy = Field(
        "both", description="Judge each pair in both orders (position bias), or A first only."
    )
    parse_mode: ParseMode = Field(
        "tolerant", description="How the verdict is read out of the answer."
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float | None = Field(
        None, ge=0.0, le=1.0, description="Nucleus sampling; empty for the server's default."
    )
    seed: int | None = Field(None, description="Sampling seed, where the server honours one.")
    max_tokens: int = Field(1024, ge=1, description="Longest answer, in tokens.")
    top_logprobs: int = Field(
        0,
        ge=0,
        le=MAX_TOP_LOGPROBS,
        description="Alternatives per token for a log-probability margin; 0 for none.",
    )
    verdict_mode: VerdictMode = Field(
        DEFAULT_VERDICT_MODE,
        description="generate: read the verdict in the written answer; next_token: the most "
        "probable of A/B/C after a prefilled [[ (a completion server's log-probabilities).",
    )
    # The key of the pair's meta (else its prompt's meta) that holds a reference answer the
    # judge sees (`{reference}` in the template, or appended to the user turn); "" for none.
    reference_field: Annotated[str, AfterValidator(_reference_key)] = Field(
        "",
        max_length=100,
        description="Key of the pair's meta (else the prompt's) holding a reference answer to "
        "show the judge: {reference} in the template, or appended. Makes a new version.",
    )
    timeout_s: float = Field(120.0, gt=0.0, description="Seconds per call.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries of a call that failed.")
    requests_per_minute: float | None = Field(
        None, gt=0.0, description="Calls per minute at most; empty for no limit."
    )
    max_concurrency: int = Field(4, ge=1, le=256, description="Calls in flight at most.")

    if not TYPE_CHECKING:  # type checkers keep the fields' signature

        def __init__(self, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise _config_error(exc, type(self)) from None

    @model_validator(mode="after")
    def _consistent(self) -> JudgeConfig:
        """The rules between fields (each field's own bounds have been checked)."""
        if self.verdict_mode == "next_token" and self.provider != "openai_compatible":
            raise JudgeConfigError(
                "verdict_mode",
                "next_token reads a completion server's log-probabilities: "
                "it needs an openai_compatible judge",
            )
        if self.reference_field and self.provider not in PAIRWISE_PROMPT_PROVIDERS:
            raise JudgeConfigError(
                "reference_field", "only a judge with a prompt template can be given a reference"
            )
        if self.provider in PAIRWISE_PROMPT_PROVIDERS:
            missing = [
                p for p in ("{question}", "{answer_a}", "{answer_b}") if p not in self.template_user
            ]
            if missing:
                raise JudgeConfigError(
                    "template_user", f"must contain the placeholders {', '.join(missing)}"
                )
        if self.provider == "openai_compatible" and not self.base_url:
            raise JudgeConfigError("base_url", "is required for an openai_compatible judge")
        return self

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
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeConfig:
        """Build from `to_dict` output; unknown keys are refused with their names."""
        unknown = sorted(set(data) - set(CONFIG_FIELDS))
        if unknown:
            raise JudgeConfigError(unknown[0], f"unknown field(s): {', '.join(unknown)}")
        missing = [k for k in ("provider", "model_id") if k not in data]
        if missing:
            raise JudgeConfigError(missing[0], "is required")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> JudgeConfig:
        """A new, re-validated config with some fields changed."""
        return type(self)(**(self.to_dict() | changes))


CONFIG_FIELDS: Final = tuple(JudgeConfig.model_fields)


class JudgeOptions(BaseModel):
    """How `judges.services.judge_config_build` makes a config, beside its fields: what the
    judge forms and the API take with them."""

    model_config = _STRICT

    system_in_user: bool = Field(
        False, description="Put the system prompt in the user turn (models without one)."
    )
    tie_epsilon: float | None = Field(
        None, ge=0.0, description="Reward models: |score gap| below this is a tie."
    )


# --- one field, as forms and serializers are built from it ------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One field of a schema model: its kind, bounds, default and help text.

    ``minimum``/``maximum`` are inclusive bounds, ``above`` an exclusive lower one. ``check``
    is the schema's own validation of a value alone, cross-field rules aside.
    """

    model: type[BaseModel]
    name: str
    kind: type
    choices: tuple[str, ...]
    required: bool
    nullable: bool
    default: Any
    minimum: float | None
    maximum: float | None
    above: float | None
    max_length: int | None
    help: str

    def check(self, value: Any) -> None:
        """Raise `JudgeConfigError` naming this field if the schema refuses ``value``."""
        try:
            _adapter(self.model, self.name).validate_python(value)
        except ValidationError as exc:
            raise _config_error(exc, self.model, self.name) from None


@functools.cache
def field_spec(model: type[BaseModel], name: str) -> FieldSpec:
    info = model.model_fields[name]
    annotation, nullable = _unwrap(info.annotation)
    bounds: dict[str, Any] = {}
    for item in info.metadata:  # annotated_types' Ge(ge=0), Le(le=2), Gt(gt=0), MaxLen(...)
        for attr in ("ge", "le", "gt", "max_length"):
            if hasattr(item, attr):
                bounds[attr] = getattr(item, attr)
    literal = get_origin(annotation) is Literal
    return FieldSpec(
        model=model,
        name=name,
        kind=str if literal else annotation,
        choices=tuple(get_args(annotation)) if literal else (),
        required=info.is_required(),
        nullable=nullable,
        default=None if info.is_required() else info.default,
        minimum=bounds.get("ge"),
        maximum=bounds.get("le"),
        above=bounds.get("gt"),
        max_length=bounds.get("max_length"),
        help=info.description or "",
    )


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The plain type of a field's annotation (no Annotated, no None) and whether None is."""
    nullable = False
    if get_origin(annotation) in (Union, type(int | None)):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(parts) < len(get_args(annotation))
        annotation = parts[0]
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation, nullable


@functools.cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotated: Any = info.annotation  # the field alone, with its bounds
    if info.metadata:
        annotated = Annotated[(annotated, *info.metadata)]
    return TypeAdapter(annotated, config=ConfigDict(strict=True, allow_inf_nan=False))


def _config_error(
    exc: ValidationError, model: type[BaseModel], field: str = "config"
) -> JudgeConfigError:
    """The first error pydantic found, as a `JudgeConfigError` in this module's words."""
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, JudgeConfigError):
        return cause
    name = str(error["loc"][0]) if error["loc"] else field
    value = error.get("input")
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if isinstance(cause, ValueError):
        message = str(cause)
    elif kind == "literal_error" and name in model.model_fields:
        message = f"{value!r} is not one of {', '.join(field_spec(model, name).choices)}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind].format(value=value, **ctx)
    else:
        message = error["msg"]
    return JudgeConfigError(name, message)


_MESSAGES: Final = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "float_type": "must be a finite number, got {value!r}",
    "finite_number": "must be a finite number, got {value!r}",
    "int_type": "must be an integer, got {value!r}",
    "string_type": "must be a string, got {value!r}",
    "bool_type": "must be true or false, got {value!r}",
    "greater_than_equal": "must be at least {ge:g}, got {value!r}",
    "greater_than": "must be greater than {gt:g}, got {value!r}",
    "less_than_equal": "must be at most {le:g}, got {value!r}",
    "string_too_long": "at most {max_length} characters",
    "too_long": "at most {max_length} characters",
}
