"""Local `transformers` judges behind the runner's chat-completions protocol. No Django here.

Two kinds of local judge, both loaded from a directory with ``local_files_only=True`` (no
download is ever attempted):

- `RewardModelJudge`: a sequence-classification reward model. Each response is scored on its
  own, ``score(prompt, response)``; the margin is ``score(first) - score(second)`` and the
  outcome its sign, a tie when ``|margin| < tie_epsilon`` (under the ``allow_tie`` policy).
- `CausalLMJudge`: a causal LM prompted with the judge's template (the tokenizer's chat
  template when it has one), greedy unless the temperature says otherwise, and read with the
  very same parser as an HTTP judge. Log-probabilities of the generated tokens come from the
  model's own logits, so the margin works as it does for an endpoint that returns them.

Both are a `judges.core.client.ChatCompleter` (``answer(messages, sampling) -> ChatResult``),
so runs, the cache, both orders, counts and failed parses are exactly those of HTTP judges.
A reward model needs the question and the two answers rather than a prompt: `run_config`
gives the configuration to run it with, whose user template carries them between per-process
random markers that no answer can contain.

Pinning: ``model_id`` is the directory and ``model_revision`` a digest of its files
(`model_dir_digest`, ``sha256:...``); `check_revision` refuses to run a directory whose files
changed since the judge was pinned, because a new set of weights is a new judge.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from judges.core.client import ChatCompleter, ChatResult, Sampling
from judges.core.config import JudgeConfig, JudgeConfigError
from judges.core.parsing import TokenLogprob
from judges.core.templates import ChatMessage

DIGEST_PREFIX: Final = "sha256:"
TIE_EPSILON_KEY: Final = "tie_epsilon"
_TIE_EPSILON_LINE: Final = re.compile(r"^\s*tie_epsilon\s*[:=]\s*(?P<value>\S+)\s*$")
_SCORE_CACHE_SIZE: Final = 4096
_CHUNK: Final = 1 << 20


class LocalModelError(Exception):
    """A local model directory that cannot be used; the message says which and why."""


# --- pinning -----------------------------------------------------------------------------------


def model_dir_digest(directory: str | Path) -> str:
    """``sha256:<hex>`` over every file's relative path and contents, in sorted order."""
    root = Path(directory)
    if not root.is_dir():
        raise LocalModelError(f"{root}: model directory does not exist")
    outer = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise LocalModelError(f"{root}: model directory is empty")
    for path in files:
        inner = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                inner.update(chunk)
        outer.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        outer.update(inner.digest())
    return DIGEST_PREFIX + outer.hexdigest()


def check_revision(config: JudgeConfig) -> None:
    """Refuse a model directory whose files no longer match the pinned digest."""
    if not config.model_revision.startswith(DIGEST_PREFIX):
        return  # pinned by a name the user chose (a commit, a tag): nothing to verify here
    actual = model_dir_digest(config.model_id)
    if actual != config.model_revision:
        raise LocalModelError(
            f"{config.model_id}: files changed since this judge was pinned "
            f"(pinned {config.model_revision[:19]}..., now {actual[:19]}...); "
            "create a new judge version for the new weights"
        )


def reward_tie_epsilon(rubric: str) -> float:
    """The tie threshold of a reward judge, read from its rubric (``tie_epsilon: 0.05``).

    A reward model has no prompt, so its rubric holds its one setting; being part of the
    rubric, it is part of the fingerprint. An empty rubric means 0 (a tie only on equal
    scores). Any other text is refused rather than ignored.
    """
    value = 0.0
    for number, line in enumerate(rubric.splitlines(), start=1):
        if not line.strip():
            continue
        match = _TIE_EPSILON_LINE.match(line)
        if match is None:
            raise JudgeConfigError(
                "rubric",
                f"line {number}: a reward judge's rubric holds only 'tie_epsilon: <number>', "
                f"got {line.strip()[:60]!r}",
            )
        try:
            value = float(match.group("value"))
        except ValueError:
            raise JudgeConfigError(
                "rubric", f"line {number}: tie_epsilon {match.group('value')!r} is not a number"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise JudgeConfigError("rubric", f"line {number}: tie_epsilon must be >= 0")
    return value


def reward_rubric(tie_epsilon: float) -> str:
    """The rubric text that sets a reward judge's tie threshold."""
    if not math.isfinite(tie_epsilon) or tie_epsilon < 0:
        raise JudgeConfigError("tie_epsilon", "must be a number >= 0")
    return "" if tie_epsilon == 0 else f"{TIE_EPSILON_KEY}: {tie_epsilon:g}"


def _load_tokenizer(directory: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, local_files_only=True)


def _require_dir(directory: str) -> None:
    path = Path(directory)
    if not path.is_dir():
        raise LocalModelError(f"{directory}: model directory does not exist")
    if not (path / "config.json").is_file():
        raise LocalModelError(f"{directory}: no config.json; not a transformers model directory")


# --- reward model ------------------------------------------------------------------------------


class RewardModelJudge(ChatCompleter):
    """Scores each response with a sequence-classification model; see the module docstring."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        tie_epsilon: float = 0.0,
        allow_tie: bool = True,
        max_length: int | None = None,
    ) -> None:
        labels = int(getattr(model.config, "num_labels", 1))
        if labels not in (1, 2):
            raise LocalModelError(
                f"a reward model has 1 output (a score) or 2 (negative, positive); "
                f"this one has {labels}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.tie_epsilon = tie_epsilon
        self.allow_tie = allow_tie
        self.max_length = max_length or _max_positions(model, tokenizer)
        nonce = secrets.token_hex(8)
        self._marks = (f"\n\x1e{nonce}:answer_a\x1e\n", f"\n\x1e{nonce}:answer_b\x1e\n")
        self._lock = threading.Lock()
        self._scores: OrderedDict[tuple[str, str], float] = OrderedDict()

    @classmethod
    def load(cls, config: JudgeConfig) -> RewardModelJudge:
        _require_dir(config.model_id)
        check_revision(config)
        from transformers import AutoModelForSequenceClassification

        tokenizer = _load_tokenizer(config.model_id)
        model = AutoModelForSequenceClassification.from_pretrained(
            config.model_id, local_files_only=True
        )
        model.eval()
        return cls(
            model,
            tokenizer,
            tie_epsilon=reward_tie_epsilon(config.rubric),
            allow_tie=config.tie_policy == "allow_tie",
        )

    def run_config(self, config: JudgeConfig) -> JudgeConfig:
        """The judge's config with a template carrying the raw texts to `complete`.

        The margin travels as the "log-probabilities" of the verdict letter (the two scores),
        so `top_logprobs` is set; one worker, since the model computes on all cores anyway.
        """
        first, second = self._marks
        return config.replace(
            template_system="",
            template_user="{question}" + first + "{answer_a}" + second + "{answer_b}",
            rubric="",
            top_logprobs=2,
            max_concurrency=1,
        )

    def score(self, question: str, response: str) -> float:
        """The model's score for one response (cached: both orders score the same texts)."""
        key = (question, response)
        with self._lock:
            if key in self._scores:
                self._scores.move_to_end(key)
                return self._scores[key]
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}, {"role": "assistant", "content": response}],
                tokenize=False,
            )
            inputs = self.tokenizer(
                text,
                add_special_tokens=False,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        else:
            inputs = self.tokenizer(
                question,
                response,
                truncation="longest_first",
                max_length=self.max_length,
                return_tensors="pt",
            )
        with self._lock, torch.no_grad():
            logits = self.model(**inputs).logits[0].float()
            value = float(logits[0]) if logits.numel() == 1 else float(logits[1] - logits[0])
            self._scores[key] = value
            if len(self._scores) > _SCORE_CACHE_SIZE:
                self._scores.popitem(last=False)
        return value

    def answer(self, messages: Sequence[ChatMessage], sampling: Sampling) -> ChatResult:
        """A verdict from the two scores; of ``sampling`` only the model name is used."""
        started = time.perf_counter()
        question, first, second = self._split(messages)
        score_1 = self.score(question, first)
        score_2 = self.score(question, second)
        margin = score_1 - score_2
        if self.allow_tie and abs(margin) < self.tie_epsilon:
            letter = "C"
        elif margin > 0:
            letter = "A"
        elif margin < 0:
            letter = "B"
        else:
            letter = "C"  # equal scores: a tie, and a failed parse under force_choice
        prefix = f"Reward scores: first {score_1:.6g}, second {score_2:.6g}. Verdict: "
        tokens = (
            TokenLogprob(prefix, 0.0),
            TokenLogprob("[[", 0.0),
            # The letter's own "log-probability" is its score, so that the margin reader,
            # which also looks at the chosen token, sees exactly the two scores.
            TokenLogprob(
                letter,
                {"A": score_1, "B": score_2}.get(letter, min(score_1, score_2)),
                top=(("A", score_1), ("B", score_2)),
            ),
            TokenLogprob("]]", 0.0),
        )
        return ChatResult(
            content="".join(t.token for t in tokens),
            logprobs=tokens,
            latency_s=time.perf_counter() - started,
            model=sampling.model_id,
            finish_reason="stop",
        )

    def _split(self, messages: Sequence[ChatMessage]) -> tuple[str, str, str]:
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        first_mark, second_mark = self._marks
        head, sep_1, rest = user.partition(first_mark)
        first, sep_2, second = rest.partition(second_mark)
        if not sep_1 or not sep_2:
            raise LocalModelError("reward judge called without its run_config template")
        return head, first, second


# --- causal LM judge ---------------------------------------------------------------------------


class CausalLMJudge(ChatCompleter):
    """A local causal LM answering the judge prompt; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_positions = _max_positions(model, tokenizer)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, config: JudgeConfig) -> CausalLMJudge:
        _require_dir(config.model_id)
        check_revision(config)
        from transformers import AutoModelForCausalLM

        tokenizer = _load_tokenizer(config.model_id)
        model = AutoModelForCausalLM.from_pretrained(config.model_id, local_files_only=True)
        model.eval()
        return cls(model, tokenizer)

    def run_config(self, config: JudgeConfig) -> JudgeConfig:
        """One worker: generation already uses every core, and the model is not re-entrant."""
        return config.replace(max_concurrency=1)

    def prompt_ids(self, messages: Sequence[ChatMessage]) -> Any:
        """Token ids of the prompt: the chat template if the tokenizer has one, else plain
        ``Role: text`` paragraphs ending with ``Assistant:``."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(
                [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
            )
            return tok(text, add_special_tokens=False, return_tensors="pt")
        text = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)
        return tok(text + "\n\nAssistant:", return_tensors="pt")

    def answer(self, messages: Sequence[ChatMessage], sampling: Sampling) -> ChatResult:
        import torch

        inputs = self.prompt_ids(messages)
        prompt_len = int(inputs["input_ids"].shape[1])
        if self.max_positions and prompt_len + sampling.max_tokens > self.max_positions:
            raise LocalModelError(
                f"the prompt is {prompt_len} tokens and max_tokens {sampling.max_tokens}; "
                f"this model reads at most {self.max_positions}"
            )
        sample = sampling.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "do_sample": sample,
            "return_dict_in_generate": True,
            "output_logits": sampling.top_logprobs > 0,
        }
        if sample:
            options["temperature"] = sampling.temperature
            if sampling.top_p is not None:
                options["top_p"] = sampling.top_p
        else:  # greedy: clear any sampling defaults shipped in generation_config.json
            options.update(temperature=None, top_p=None, top_k=None)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        if pad is not None:
            options["pad_token_id"] = pad
        started = time.perf_counter()
        with self._lock, torch.no_grad():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            out = self.model.generate(**inputs, **options)
        latency = time.perf_counter() - started
        new_ids = out.sequences[0, prompt_len:].tolist()
        content = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        logprobs = None
        if sampling.top_logprobs > 0 and getattr(out, "logits", None):
            logprobs = self._token_logprobs(new_ids, out.logits, sampling.top_logprobs)
        finish = "length" if len(new_ids) >= sampling.max_tokens else "stop"
        return ChatResult(
            content=content,
            logprobs=logprobs,
            usage={
                "prompt_tokens": prompt_len,
                "completion_tokens": len(new_ids),
                "total_tokens": prompt_len + len(new_ids),
            },
            latency_s=latency,
            model=sampling.model_id,
            finish_reason=finish,
        )

    def _token_logprobs(
        self, ids: Sequence[int], logits: Sequence[Any], k: int
    ) -> tuple[TokenLogprob, ...]:
        import torch

        special = set(self.tokenizer.all_special_ids)
        tokens: list[TokenLogprob] = []
        for token_id, step in zip(ids, logits, strict=False):
            if token_id in special:
                continue
            logp = torch.log_softmax(step[0].float(), dim=-1)
            values, indices = torch.topk(logp, k=min(k, logp.shape[-1]))
            top = tuple(
                (self.tokenizer.decode([int(i)]), float(v))
                for v, i in zip(values.tolist(), indices.tolist(), strict=True)
            )
            tokens.append(
                TokenLogprob(self.tokenizer.decode([token_id]), float(logp[token_id]), top=top)
            )
        return tuple(tokens)


def _max_positions(model: Any, tokenizer: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(model.config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def load_local_judge(config: JudgeConfig) -> RewardModelJudge | CausalLMJudge:
    """The adapter for a ``transformers_reward`` or ``transformers_causal`` config."""
    if config.provider == "transformers_reward":
        return RewardModelJudge.load(config)
    if config.provider == "transformers_causal":
        return CausalLMJudge.load(config)
    raise JudgeConfigError("provider", f"{config.provider} is not a local transformers judge")
