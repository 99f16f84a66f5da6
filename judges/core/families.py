"""Model families: which maker's line a model name (or a judge's model) belongs to.

A judge may favour responses of its own family (Zheng et al. 2023, section 3.3; Panickssery et
al. 2024, "LLM evaluators recognize and favor their own generations"). To measure that, every
response's model name and every judge maps to a family. This module gives the default, read
from the name; a lead overrides it per name or per judge (``judges.models.ModelFamily``,
``JudgeFamily``), and the override wins.

Decisions worth knowing (docs/judge-lifecycle.md (Self-family preference) lists them all):

- **Fine-tunes belong to their base model's family.** Alpaca, Vicuna, Koala, Guanaco,
  WizardLM, Tulu and PandaLM-7B are LLaMA fine-tunes: family ``llama``. Zephyr is a Mistral
  fine-tune: ``mistral``. Dolly v2 is a Pythia fine-tune: ``eleutherai``.
- **A "gpt" in a name is not always OpenAI's.** Cerebras-GPT, GPT-J, GPT-Neo(X) and GPT4All are
  matched first (``cerebras``, ``eleutherai``, ``nomic``); only then do ``gpt-3``, ``gpt-4``,
  ``chatgpt``, ``o1``/``o3``/``o4``, ``davinci`` and the other ``text-*`` models map to
  ``openai``.
- Gemma, Gemini, PaLM, Bard and (Flan-)T5 are ``google``; Claude ``anthropic``; Mistral and
  Mixtral ``mistral``; Command and Aya ``cohere``; BLOOM ``bigscience``; OPT ``opt`` (Meta's,
  but not the LLaMA line).
- A name no rule knows has no family (None): it is left out of the figure until a lead names
  its family.

Pure: no Django.
"""

from __future__ import annotations

import re
from typing import Final

# (family, pattern) in the order they are tried; the first match wins. Patterns run on the
# lower-cased name, which may be a path or a hub id ("meta-llama/Llama-3-8B").
_B: Final = r"(?<![a-z0-9])"  # start of a word: not after a letter or digit
_RULES: Final[tuple[tuple[str, str], ...]] = (
    ("cerebras", r"cerebras"),
    ("nomic", r"gpt4all"),
    ("eleutherai", _B + r"(gpt-?j|gpt-?neo(x)?|pythia|dolly)"),
    ("llama", r"llama|alpaca|vicuna|pandalm|koala|guanaco|wizardlm|" + _B + r"tulu"),
    ("mistral", r"mistral|mixtral|codestral|zephyr"),
    ("google", r"gemma|gemini|" + _B + r"(palm|bard|flan|t5)(?![a-z])"),
    ("anthropic", r"claude|anthropic"),
    ("qwen", r"qwen|" + _B + r"qwq"),
    ("deepseek", r"deepseek"),
    ("phi", _B + r"phi-?\d"),
    ("falcon", r"falcon"),
    ("cohere", r"cohere|" + _B + r"(command|aya)(?![a-z])"),
    ("yi", _B + r"(yi-|01-ai)"),
    ("bigscience", r"bloom"),
    ("opt", _B + r"opt-\d"),
    ("stability", r"stablelm"),
    ("mosaicml", _B + r"mpt-"),
    ("glm", r"chatglm|" + _B + r"glm-"),
    ("xai", _B + r"grok"),
    (
        "openai",
        r"openai|chatgpt|" + _B + r"(gpt-?[345]|gpt-?4o|o[134](?![a-z0-9])|"
        r"text-[a-z]+|davinci|curie|babbage|ada-)",
    ),
)
_COMPILED: Final = tuple((family, re.compile(pattern)) for family, pattern in _RULES)
FAMILIES: Final = tuple(dict.fromkeys(family for family, _ in _RULES))
_FAMILY_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def family_of(name: str | None) -> str | None:
    """The default family of a model name, or None when no rule knows it."""
    if not name:
        return None
    lowered = name.strip().lower()
    for family, pattern in _COMPILED:
        if pattern.search(lowered):
            return family
    return None


def family_clean(value: str) -> str:
    """A family name as stored: trimmed, lower case, letters, digits, ``.``, ``_``, ``-``.

    Raises ValueError with the reason for anything else (a blank is not a family: callers
    treat it as "back to the default" before they get here).
    """
    cleaned = value.strip().lower()
    if not _FAMILY_NAME.match(cleaned):
        raise ValueError(
            f"{value!r} is not a family name: use up to 64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. llama, openai)"
        )
    return cleaned
